"""HTTP plumbing shared by every router: error answers, the body size limit, links.

Every error is JSON `{"message": ...}` naming what was wrong; nothing answers with a stack
trace. A database that cannot be reached is a 503 the client may retry; what the database
refused because of the request itself is a 400 (execdb.dbfaults tells them apart).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from execdb.dbfaults import Fault, classify
from execdb.errors import ExecDBError, InvalidInput, PayloadTooLarge

log = logging.getLogger("execdb")


def _field(loc: tuple[int | str, ...]) -> str:
    # Query lists ("state=A,B") are one parameter to the user: drop their item index.
    drop = {"body", "query", "path", "header"}
    parts = [
        str(p) for p in loc if p not in drop and not (loc[0] == "query" and isinstance(p, int))
    ]
    return ".".join(parts) or "body"


def _errors_message(errors: Sequence[Mapping[str, Any]]) -> str:
    problems = []
    for error in errors:
        msg = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        loc = tuple(error.get("loc", ()))
        kind = error.get("type")
        if kind in ("model_attributes_type", "model_type") or (
            loc == ("body",) and kind == "dict_type"
        ):
            problems.append(NOT_A_JSON_OBJECT)
            continue
        if kind == "json_invalid":
            problems.append(f"the body is not valid JSON: {error.get('ctx', {}).get('error', msg)}")
            continue
        if kind == "extra_forbidden":
            msg = "unknown field" if loc and loc[0] == "body" else "unknown parameter"
        given = error.get("input")
        # An unknown parameter's value is not repeated: it may be a secret (`?token=...`).
        if (
            kind != "extra_forbidden"
            and isinstance(given, str | int | float)
            and len(str(given)) <= 80
        ):
            msg = f"{msg} (got {given!r})"
        field = _field(loc)
        # Model-level checks name their field themselves ("blame: only a CRASHED ...").
        problems.append(
            msg if field == "body" or msg.startswith(f"{field}:") else f"{field}: {msg}"
        )
    return "; ".join(dict.fromkeys(problems)) or "invalid request"


def validation_message(exc: RequestValidationError) -> str:
    """One line naming each invalid field or parameter, as the API's 400 answers say it."""
    return _errors_message(exc.errors())


NOT_A_JSON_OBJECT = "the body must be a JSON object, sent with Content-Type: application/json"
_JSON_MEDIA_TYPE = re.compile(r"\s*application/(?:[\w.-]+\+)?json\s*(?:;|$)", re.IGNORECASE)

Model = TypeVar("Model", bound=BaseModel)


async def json_body(request: Request, model: type[Model]) -> Model:
    """The request's body as `model`, decoded and checked in one pass by pydantic (with the
    standard library's parser as a fallback, below).

    For the routes that take nearly all the traffic: creating jobs and reporting. A FastAPI
    body parameter decodes the JSON with the standard library, parses the Content-Type header
    with the email package, then validates the decoded objects; this and answering with
    `json_answer` took a good share off a report's CPU time (docs/benchmarks.md). The
    errors are the API's usual 400s naming the field. Such a route declares its body for the
    OpenAPI document through `OwnBodyRoutes.body(model)`.
    """
    if not _JSON_MEDIA_TYPE.match(request.headers.get("content-type", "")):
        raise InvalidInput(NOT_A_JSON_OBJECT)
    try:
        body = await request.body()
    except ClientDisconnect:
        raise InvalidInput("the client went away before sending the whole body") from None
    if not body.strip():
        raise InvalidInput(NOT_A_JSON_OBJECT)
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
    if any(e["type"] == "json_invalid" for e in errors):
        # Pydantic's parser refuses some JSON that the standard library takes: escaped lone
        # surrogates (log text decoded with surrogateescape, say; ExecDB keeps such text
        # with U+FFFD in their place), a byte order mark, UTF-16. Those are not refused.
        try:
            decoded = json.loads(body)
        except (ValueError, RecursionError):  # not JSON to either: pydantic's error says why
            pass
        else:
            try:
                return model.model_validate(decoded)
            except ValidationError as exc:
                errors = exc.errors(include_url=False)
    raise InvalidInput(_errors_message([{**e, "loc": ("body", *e["loc"])} for e in errors]))


async def optional_json_body(request: Request, model: type[Model]) -> Model:
    """`json_body` for a body that may be left out: none, or JSON null, means the model's
    defaults (as when FastAPI reads an optional body)."""
    sent = (await request.body()).strip()
    return model() if sent in (b"", b"null") else await json_body(request, model)


class OwnBodyRoutes:
    """Routes that read their bodies with `json_body` (the hot ones), and what the OpenAPI
    document must say of them.

    FastAPI documents a body it parses itself; for these, `body(model)` gives the route's
    `openapi_extra` and remembers the model, and `add_to(app)` puts the routes on the app's
    own router (where matching one is a single look: an included router is matched route by
    route twice over) and their bodies' schemas into the app's document.
    """

    def __init__(self, router: APIRouter) -> None:
        self.router = router
        self._bodies: dict[str, type[BaseModel]] = {}

    def body(self, model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
        """The OpenAPI requestBody of a route that reads its body with `json_body(model)`."""
        self._bodies[model.__name__] = model
        ref = {"$ref": f"#/components/schemas/{model.__name__}"}
        content = {"application/json": {"schema": ref}}
        return {"requestBody": {"required": required, "content": content}}

    def components(self) -> dict[str, Any]:
        """The component schemas of the bodies declared with `body`."""
        components: dict[str, Any] = {}
        for name, model in self._bodies.items():
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(schema.pop("$defs", {}))
            components[name] = schema
        return components

    def add_to(self, app: FastAPI) -> None:
        # Not being included, the routes do not see `app.dependency_overrides`.
        app.router.routes.extend(self.router.routes)
        own: list[OwnBodyRoutes] = getattr(app.state, "own_body_routes", [])
        app.state.own_body_routes = [*own, self]


def own_body_components(app: FastAPI) -> dict[str, Any]:
    """The component schemas of every OwnBodyRoutes added to `app`."""
    components: dict[str, Any] = {}
    for routes in getattr(app.state, "own_body_routes", []):
        components.update(routes.components())
    return components


def json_answer(model: BaseModel, status_code: int = 200) -> Response:
    """`model` as a JSON answer, serialized once. (Given the model itself, FastAPI would first
    validate it again against the route's response_model, which then only documents it.)"""
    return Response(model.model_dump_json(), status_code, media_type="application/json")


def error_response(status: int, message: str, **extra: Any) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status == 503:
        headers = {"Retry-After": "1"}
    return JSONResponse({"message": message, **extra}, status_code=status, headers=headers)


def register_handlers(app: FastAPI) -> None:
    @app.exception_handler(ExecDBError)
    async def _domain(request: Request, exc: ExecDBError) -> JSONResponse:
        return error_response(exc.status_code, exc.message, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, validation_message(exc))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such resource: {request.url.path}"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
        response = error_response(exc.status_code, message)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(DBAPIError)
    @app.exception_handler(PoolTimeout)
    async def _database(request: Request, exc: Exception) -> JSONResponse:
        classified = classify(exc)
        if classified.fault is Fault.UNAVAILABLE:
            # One line, without the statement: an outage would otherwise flood the log.
            log.warning("database unavailable: %s: %s", exc.__class__.__name__, classified.reason)
            return error_response(503, "the database is unavailable; try again shortly")
        if classified.fault is Fault.INVALID:
            log.info(
                "database refused %s %s: %s", request.method, request.url.path, classified.reason
            )
            return error_response(400, f"the database refused the request: {classified.reason}")
        return await _unexpected(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal error; it has been logged")


class BodyLimitMiddleware:
    """Refuse request bodies over `max_bytes` with 413 before the app reads them.

    Starlette's own limit (FastAPI's `max_body_size`) answers in plain text, and only once the
    route reads the body; this one answers JSON like every other error, before any work.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if length is not None:
            if not length.isdigit() or int(length) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        # No length given (chunked): read up to the limit, then hand the body on.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        too_large = PayloadTooLarge(
            f"the request body is larger than the {self.max_bytes}-byte limit"
        )
        await error_response(too_large.status_code, too_large.message)(scope, receive, send)
