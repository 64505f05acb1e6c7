"""Signing in to the pages with a token, and signing out (execdb.auth.sessions)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from execdb.api.auth import SESSION_COOKIE, session_of
from execdb.api.deps import ServicesDep
from execdb.auth.sessions import same
from execdb.db import utcnow
from execdb.errors import Forbidden
from execdb.web.forms import (
    FORGED,
    SIGNIN_COOKIE,
    form_of,
    local_target,
    set_cookie,
    signin_csrf,
)
from execdb.web.pages import PageRoute, render, root_path

router = APIRouter(include_in_schema=False, route_class=PageRoute)

SIGNIN_FORM_SECONDS = 3600


def _signin_page(
    request: Request, target: str, *, message: str | None = None, status_code: int = 200
) -> Response:
    csrf = signin_csrf(request)
    context = {"target": target, "csrf": csrf, "message": message}
    response = render(request, "signin.html", context, status_code=status_code)
    set_cookie(request, response, SIGNIN_COOKIE, csrf, SIGNIN_FORM_SECONDS)
    return response


@router.get("/signin")
async def signin_page(request: Request) -> Response:
    """The sign-in form: a token's secret, kept only as a session cookie's."""
    await session_of(request)
    return _signin_page(request, request.query_params.get("next") or "/")


@router.post("/signin")
async def signin(request: Request, services: ServicesDep) -> Response:
    """Open a session for the token given, then go where the person was going."""
    form = await form_of(request)
    target = form.get("next") or "/"
    held = request.cookies.get(SIGNIN_COOKIE)
    if held is None or not same(form.get("csrf"), held):
        raise Forbidden(FORGED)
    secret = form.get("token", "").strip()
    started = None
    if secret and len(secret) <= 200:
        started = await services.db.run_write(services.sessions.start, secret, utcnow())
    if started is None:
        message = "That token is not valid: it is unknown or revoked. Check it and try again."
        return _signin_page(request, target, message=message, status_code=401)
    cookie, _ = started
    response = RedirectResponse(local_target(request, target), status_code=303)
    lifetime = int(services.settings.session_lifetime.total_seconds())
    set_cookie(request, response, SESSION_COOKIE, cookie, lifetime)
    response.delete_cookie(SIGNIN_COOKIE, path=root_path(request) or "/")
    return response


@router.post("/signout")
async def signout(request: Request, services: ServicesDep) -> Response:
    """End this browser's session."""
    form = await form_of(request)
    session = await session_of(request)
    secret = request.cookies.get(SESSION_COOKIE)
    if session is not None and secret is not None:
        if not same(form.get("csrf"), session.csrf):
            raise Forbidden(FORGED)
        await services.db.run_write(services.sessions.end, secret, utcnow())
    response = RedirectResponse(f"{root_path(request)}/signin?out=1", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=root_path(request) or "/")
    return response
