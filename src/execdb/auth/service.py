"""API tokens: creating, listing, revoking, and recognising them.

A token's secret is 256 random bits, so a plain SHA-256 is enough to store it safely (a slow
password hash buys nothing against a secret nobody can guess) and lets a request be
authenticated with one indexed look-up.

That look-up was a large share of the cost of a report (docs/benchmarks.md), so a process
remembers the tokens it has recognised for `cache_seconds` (10 s by default). Revoking
through this process takes effect at once; a revocation made elsewhere (the command line,
another server) within that time.
Unknown secrets are never remembered, so a new token works at once everywhere.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from execdb.auth.models import ApiToken
from execdb.db import Database
from execdb.errors import InvalidInput, NotFound

SCOPES = ("create", "report", "triage", "admin")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}\Z")  # \Z: no final newline
RESERVED_NAMES = frozenset({"execdb"})  # the actor name of ExecDB's own reports
PREFIX = "execdb_"


_ACTIVE_BY_HASH = select(ApiToken.__table__).where(
    ApiToken.secret_hash == bindparam("hash"), ApiToken.revoked_at.is_(None)
)


@dataclass(frozen=True, slots=True)
class Token:
    name: str
    scopes: frozenset[str]
    created_at: datetime
    revoked_at: datetime | None

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def token_of(row: Row[Any]) -> Token:
    return Token(row.name, frozenset(row.scopes.split()), row.created_at, row.revoked_at)


class TokenService:
    CACHE_LIMIT = 1024

    def __init__(
        self,
        db: Database,
        *,
        cache_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._recognised: dict[str, tuple[Token, float]] = {}

    def create(self, name: str, scopes: Iterable[str], now: datetime) -> tuple[Token, str]:
        """A new token and its secret; the secret is shown once and never stored."""
        if not NAME_RE.fullmatch(name) or name in RESERVED_NAMES:
            raise InvalidInput(
                f"name: {name!r} is not a usable token name (letters, digits and ._@+-, "
                "at most 100; 'execdb' is reserved)"
            )
        wanted = frozenset(scopes)
        if not wanted or not wanted <= set(SCOPES):
            raise InvalidInput(f"scope: choose one or more of {', '.join(SCOPES)}")
        secret = PREFIX + secrets.token_urlsafe(32)
        values = {
            "name": name,
            "scopes": " ".join(sorted(wanted)),
            "secret_hash": digest(secret),
            "created_at": now,
        }
        try:
            with self.db.write() as conn:
                conn.execute(insert(ApiToken), values)
        except IntegrityError:
            raise InvalidInput(
                f"name: a token named {name!r} exists; revoke it first or choose another name"
            ) from None
        return Token(name, wanted, now, None), secret

    def list(self, *, include_revoked: bool = False) -> list[Token]:
        stmt = select(ApiToken.__table__).order_by(ApiToken.name, ApiToken.id)
        if not include_revoked:
            stmt = stmt.where(ApiToken.revoked_at.is_(None))
        with self.db.read() as conn:
            return [token_of(row) for row in conn.execute(stmt)]

    def revoke(self, name: str, now: datetime) -> None:
        with self.db.write() as conn:
            done = conn.execute(
                update(ApiToken)
                .where(ApiToken.name == name, ApiToken.revoked_at.is_(None))
                .values(revoked_at=now)
            )
        self._recognised.clear()
        if done.rowcount == 0:
            raise NotFound(f"no active token named {name!r}")

    def recognised(self, secret: str) -> Token | None:
        """The token with this secret if it was recognised less than `cache_seconds` ago, or
        None (then ask `authenticate`). It reads no database, so the server calls it first
        and makes a database call only on a miss."""
        known = self._recognised.get(digest(secret))
        return known[0] if known is not None and known[1] > self.clock() else None

    def authenticate(self, secret: str) -> Token | None:
        """The active token with this secret, or None."""
        known = self.recognised(secret)
        if known is not None:
            return known
        key = digest(secret)
        now = self.clock()
        with self.db.read() as conn:
            row = conn.execute(_ACTIVE_BY_HASH, {"hash": key}).one_or_none()
        if row is None:
            self._recognised.pop(key, None)
            return None
        token = token_of(row)
        if self.cache_seconds > 0:
            if len(self._recognised) >= self.CACHE_LIMIT:
                self._recognised.clear()
            self._recognised[key] = (token, now + self.cache_seconds)
        return token
