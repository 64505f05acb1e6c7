"""What every form of the pages shares: reading its body, and the checks before it acts.

Every form is posted with its CSRF token in a hidden field (`csrf`): for a signed-in person
the token derived from their session (execdb.auth.sessions), for the sign-in form a random
value also held in a cookie of its own. A form whose token is missing or wrong is refused
with 403 and changes nothing; a form sent after the session ended is refused with 401.
"""

from __future__ import annotations

import secrets
from urllib.parse import parse_qsl

from fastapi import Request, Response

from execdb.api.auth import session_of
from execdb.auth.sessions import Session, same
from execdb.errors import Forbidden, InvalidInput, Unauthenticated
from execdb.web.pages import root_path

FIELDS_MAX = 20
SIGNIN_COOKIE = "execdb_signin"
FORGED = (
    "this form's CSRF token is missing or does not match your session, so it was not sent "
    "from ExecDB's own page (or you signed in again since): nothing was changed; reload the "
    "page and send the form again"
)


async def form_of(request: Request) -> dict[str, str]:
    """The posted form's fields (the first value of each); 400 for anything else."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise InvalidInput("send the form as application/x-www-form-urlencoded")
    body = await request.body()
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=FIELDS_MAX)
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput(f"the form is not valid (at most {FIELDS_MAX} fields, UTF-8)") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        form.setdefault(name, value)
    return form


async def signed_in(request: Request, form: dict[str, str], scope: str) -> Session:
    """The session that sends `form`, which must carry its CSRF token, and whose token must
    have `scope`."""
    session = await session_of(request)
    if session is None:
        raise Unauthenticated("sign in first: there is no session, or it has ended")
    if not same(form.get("csrf"), session.csrf):
        raise Forbidden(FORGED)
    if not session.token.allows(scope):
        raise Forbidden(
            f"token {session.token.name!r} lacks the scope {scope!r} "
            f"(it has: {', '.join(sorted(session.token.scopes))})"
        )
    return session


def signin_csrf(request: Request) -> str:
    """The sign-in form's CSRF value: the one in its cookie, or a new one."""
    held = request.cookies.get(SIGNIN_COOKIE)
    return held if held and len(held) <= 100 else secrets.token_urlsafe(32)


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    """A cookie scripts cannot read, sent only with ExecDB's own requests (and only over
    https when the request came over https, as the proxy settings tell)."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=root_path(request) or "/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def local_target(request: Request, target: str | None) -> str:
    """Where to go after signing in: a path of this site (never another site), else home."""
    root = root_path(request)
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(c) < 32 for c in target)
    ):
        return f"{root}/"
    return f"{root}{target}"
