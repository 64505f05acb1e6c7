"""Request authentication: `Authorization: Bearer <token>` and the scope a route needs, and
the pages' sign-in session (a cookie, execdb.auth.sessions), which any read accepts too."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from execdb.api.deps import get_services
from execdb.auth.service import Token
from execdb.auth.sessions import Session
from execdb.db import utcnow
from execdb.errors import Forbidden, Unauthenticated
from execdb.vocabulary import Actor


async def _token(request: Request) -> Token:
    header = request.headers.get("authorization")
    if not header:
        raise Unauthenticated("this request needs a token: send 'Authorization: Bearer <token>'")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
    services = get_services(request)
    secret = secret.strip()
    # A database call costs a greenlet and a task on PostgreSQL: skip it on a hit.
    token = services.tokens.recognised(secret) or await services.db.run(
        services.tokens.authenticate, secret
    )
    if token is None:
        raise Unauthenticated("the token is not valid (unknown or revoked)")
    return token


SCHEME = "token"

# What a route that calls `authorize` itself puts in its `openapi_extra`.
NEEDS_TOKEN: dict[str, Any] = {"security": [{SCHEME: []}]}


async def authorize(request: Request, scope: str) -> Actor:
    """The Actor of the request's token, which must have `scope`: a 401 without a valid
    token, a 403 without the scope."""
    token = await _token(request)
    if not token.allows(scope):
        raise Forbidden(
            f"token {token.name!r} lacks the scope {scope!r} "
            f"(it has: {', '.join(sorted(token.scopes))})"
        )
    return Actor(token.name)


# Who may change the rules: a token with one of these scopes (admin has every scope).
RULES_SCOPES = ("triage",)


async def authorize_rules(request: Request) -> Actor:
    """The Actor of a token that may manage the classification rules (RULES_SCOPES)."""
    token = await _token(request)
    if not any(token.allows(scope) for scope in RULES_SCOPES):
        raise Forbidden(
            f"token {token.name!r} lacks the scope {' or '.join(RULES_SCOPES)} (or admin) that "
            f"changing rules needs (it has: {', '.join(sorted(token.scopes))})"
        )
    return Actor(token.name)


class Require(HTTPBearer):
    """A dependency giving the Actor of a token that has `scope` (see `authorize`).

    Being an HTTPBearer, it declares the scheme in the OpenAPI document; it reads the header
    itself so that each failure gets its own message, in one dependency per request.
    """

    def __init__(self, scope: str) -> None:
        super().__init__(auto_error=False, scheme_name=SCHEME, description="An ExecDB API token.")
        self.scope = scope

    async def __call__(self, request: Request) -> Actor:  # type: ignore[override]
        return await authorize(request, self.scope)


async def require_token(request: Request) -> None:
    """A 401 unless the request carries a valid token (of any scope)."""
    await _token(request)


SESSION_COOKIE = "execdb_session"


async def session_of(request: Request) -> Session | None:
    """The request's sign-in session, if its cookie names one that has not ended (looked up
    once per request)."""
    if hasattr(request.state, "session"):
        found: Session | None = request.state.session
        return found
    secret = request.cookies.get(SESSION_COOKIE)
    session = None
    if secret and len(secret) <= 100:
        services = get_services(request)
        session = await services.db.run(services.sessions.recognise, secret, utcnow())
    request.state.session = session
    return session


async def _read_access(request: Request) -> None:
    session = await session_of(request)
    if get_services(request).settings.require_token_for_reads and session is None:
        await _token(request)


CreateActor = Annotated[Actor, Depends(Require("create"))]
ReportActor = Annotated[Actor, Depends(Require("report"))]
ReadAccess = Depends(_read_access)
