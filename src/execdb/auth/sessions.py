"""Sign-in sessions of the web pages: a browser holds a random secret in a cookie, the
database the SHA-256 of it (as for tokens), and the session acts as the token it was opened
with: the same name, the same scopes.

A session ends at a fixed time after sign-in (`lifetime`, the session_lifetime setting),
when it is signed out or revoked, and when its token is revoked: every look-up joins the
token and wants it active, so revoking a token ends its sessions at once, in every process.

Forms carry a CSRF token derived from the session's secret (an HMAC of it): a page of
another site can neither read the cookie nor compute the token, and nothing more is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, insert, select, update

from execdb.auth.models import ApiToken, WebSession
from execdb.auth.service import Token, digest, token_of
from execdb.db import Database
from execdb.errors import NotFound

_ACTIVE = (
    select(ApiToken.__table__, WebSession.expires_at)
    .join(WebSession, WebSession.token_id == ApiToken.id)
    .where(
        WebSession.secret_hash == bindparam("hash"),
        WebSession.ended_at.is_(None),
        WebSession.expires_at > bindparam("now"),
        ApiToken.revoked_at.is_(None),
    )
)


@dataclass(frozen=True, slots=True)
class Session:
    token: Token
    expires_at: datetime
    csrf: str


def csrf_token(secret: str) -> str:
    """The CSRF token of the session whose cookie holds `secret`."""
    return hmac.new(secret.encode(), b"execdb-csrf", hashlib.sha256).hexdigest()


def same(sent: str | None, expected: str) -> bool:
    return sent is not None and hmac.compare_digest(sent.encode(), expected.encode())


class SessionService:
    def __init__(self, db: Database, *, lifetime: timedelta) -> None:
        self.db = db
        self.lifetime = lifetime

    def start(self, token_secret: str, now: datetime) -> tuple[str, Session] | None:
        """A new session for the active token with this secret: the cookie's secret and the
        session; None for an unknown or revoked token."""
        with self.db.write() as conn:
            token = conn.execute(
                select(ApiToken.__table__).where(
                    ApiToken.secret_hash == digest(token_secret), ApiToken.revoked_at.is_(None)
                )
            ).one_or_none()
            if token is None:
                return None
            secret = secrets.token_urlsafe(32)
            expires_at = now + self.lifetime
            conn.execute(
                insert(WebSession),
                {
                    "token_id": token.id,
                    "secret_hash": digest(secret),
                    "created_at": now,
                    "expires_at": expires_at,
                },
            )
        session = Session(token_of(token), expires_at, csrf_token(secret))
        return secret, session

    def recognise(self, secret: str, now: datetime) -> Session | None:
        """The session whose cookie holds `secret`, if it has not ended."""
        with self.db.read() as conn:
            row = conn.execute(_ACTIVE, {"hash": digest(secret), "now": now}).one_or_none()
        if row is None:
            return None
        return Session(token_of(row), row.expires_at, csrf_token(secret))

    def end(self, secret: str, now: datetime) -> None:
        """Sign out: the session ends (nothing happens if it had already)."""
        with self.db.write() as conn:
            conn.execute(
                update(WebSession)
                .where(WebSession.secret_hash == digest(secret), WebSession.ended_at.is_(None))
                .values(ended_at=now)
            )

    def revoke(self, name: str, now: datetime) -> int:
        """End every open session of the active token named `name`; how many there were."""
        with self.db.write() as conn:
            token_id = conn.execute(
                select(ApiToken.id).where(ApiToken.name == name, ApiToken.revoked_at.is_(None))
            ).scalar()
            if token_id is None:
                raise NotFound(f"no active token named {name!r}")
            done = conn.execute(
                update(WebSession)
                .where(
                    WebSession.token_id == token_id,
                    WebSession.ended_at.is_(None),
                    WebSession.expires_at > now,
                )
                .values(ended_at=now)
            )
        return done.rowcount
