"""What every page shares: the template environment, rendering, and errors shown as pages.

The API answers errors as JSON for programs; a person following a link should read the same
message on a page of the site instead, with the same status code. `PageRoute` does that for
the page routes only, so the API's error handlers stay as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from importlib import resources
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from execdb import __version__
from execdb.db import utcnow
from execdb.errors import ExecDBError, InvalidInput
from execdb.http import validation_message
from execdb.vocabulary import Blame, State
from execdb.web import format
from execdb.web.colours import cause_colour

templates = Jinja2Templates(directory=str(resources.files("execdb.web") / "templates"))
templates.env.trim_blocks = templates.env.lstrip_blocks = True
templates.env.filters.update(
    duration=format.duration,
    timestamp=format.timestamp,
    iso=format.iso,
)
templates.env.globals.update(
    version=__version__,
    STATES=list(State),
    BLAMES=list(Blame),
    executor_log=format.executor_log,
    percent=format.percent,
    job_links=format.job_links,
    pretty_json=format.pretty_json,
)
# Blame colours, also used in the plots (Okabe & Ito's palette, told apart by most people
# with a colour vision deficiency; text always names the blame as well).
BLAME_COLOURS = {
    Blame.TASKOTRON: "#d55e00",
    Blame.TASK: "#0072b2",
    Blame.THIRD_PARTY: "#e69f00",
    Blame.UNKNOWN: "#737373",
}
templates.env.globals["BLAME_COLOURS"] = BLAME_COLOURS
templates.env.globals["cause_colour"] = cause_colour


def render(
    request: Request, name: str, context: dict[str, Any], *, status_code: int = 200
) -> Response:
    now = context.get("now") or utcnow()
    root = root_path(request)
    return templates.TemplateResponse(
        request,
        name,
        {
            **context,
            "root": root,
            "page": request.url.path.removeprefix(root) or "/",
            "now": now,
            "session": getattr(request.state, "session", None),
            "ago": lambda moment: format.ago(moment, now),
            "since": lambda moment, end=None: format.between(moment, end, now),
        },
        status_code=status_code,
    )


def root_path(request: Request) -> str:
    """Where the site is mounted (behind a proxy, say `/execdb`); page links start with it."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def invalid_message(error: ValidationError | InvalidInput) -> str:
    """The API's one-line message for invalid query parameters."""
    if isinstance(error, InvalidInput):
        return error.message
    return validation_message(
        RequestValidationError([{**e, "loc": ("query", *e["loc"])} for e in error.errors()])
    )


def error_page(request: Request, status_code: int, message: str) -> Response:
    titles = {400: "Bad request", 401: "Token needed", 403: "Forbidden", 404: "Not found"}
    return render(
        request,
        "error.html",
        {"status": status_code, "title": titles.get(status_code, "Error"), "message": message},
        status_code=status_code,
    )


class PageRoute(APIRoute):
    """A route whose refusals (400, 401, 403, 404) are answered as pages, not JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return error_page(request, 400, validation_message(exc))
            except ValidationError as exc:
                return error_page(request, 400, invalid_message(exc))
            except ExecDBError as exc:
                if exc.status_code >= 500:
                    raise
                return error_page(request, exc.status_code, exc.message)
            except HTTPException as exc:
                if exc.status_code >= 500 or not isinstance(exc.detail, str):
                    raise
                return error_page(request, exc.status_code, exc.detail)

        return page_handler
