"""Request authentication: `Authorization: Bearer <token>` and the scope a route needs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from execdb.auth.service import Token
from execdb.errors import Forbidden, Unauthenticated
from execdb.http import get_services
from execdb.jobs.service import Actor

# Declares the scheme in the OpenAPI document; the header itself is checked below so that
# each failure gets its own message.
_bearer = HTTPBearer(auto_error=False, description="An ExecDB API token.")


async def _token(request: Request) -> Token:
    header = request.headers.get("authorization")
    if not header:
        raise Unauthenticated("this request needs a token: send 'Authorization: Bearer <token>'")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
    services = get_services(request)
    token = await services.db.run(services.tokens.authenticate, secret.strip())
    if token is None:
        raise Unauthenticated("the token is not valid (unknown or revoked)")
    return token


def require(scope: str) -> Callable[..., Awaitable[Actor]]:
    async def dependency(
        request: Request,
        _: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    ) -> Actor:
        token = await _token(request)
        if not token.allows(scope):
            raise Forbidden(
                f"token {token.name!r} lacks the scope {scope!r} "
                f"(it has: {', '.join(sorted(token.scopes))})"
            )
        return Actor(token.name)

    return dependency


async def _read_access(request: Request) -> None:
    if get_services(request).settings.require_token_for_reads:
        await _token(request)


CreateActor = Annotated[Actor, Depends(require("create"))]
ReportActor = Annotated[Actor, Depends(require("report"))]
ReadAccess = Depends(_read_access)
