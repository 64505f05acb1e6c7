"""Recognised tokens are remembered briefly; revocation still takes effect."""

from __future__ import annotations

from pathlib import Path

from execdb.auth.service import TokenService
from execdb.config import Settings
from execdb.db import utcnow
from tests.live import prepare


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def services(tmp_path: Path) -> tuple[TokenService, TokenService, Clock]:
    db = prepare(Settings(database_url=f"sqlite:///{tmp_path}/t.sqlite")).db
    clock = Clock()
    # Two services on one database: this server, and another process (the command line).
    return TokenService(db, cache_seconds=10, clock=clock), TokenService(db), clock


def test_a_revocation_elsewhere_takes_effect_within_the_cache_time(tmp_path: Path) -> None:
    server, elsewhere, clock = services(tmp_path)
    _, secret = elsewhere.create("executor", ["report"], utcnow())
    assert server.authenticate(secret) is not None
    elsewhere.revoke("executor", utcnow())
    clock.now += 9
    assert server.authenticate(secret) is not None, "still remembered"
    clock.now += 2
    assert server.authenticate(secret) is None, "looked up again, and refused"


def test_a_revocation_here_takes_effect_at_once(tmp_path: Path) -> None:
    server, _, _ = services(tmp_path)
    _, secret = server.create("executor", ["report"], utcnow())
    assert server.authenticate(secret) is not None
    server.revoke("executor", utcnow())
    assert server.authenticate(secret) is None


def test_unknown_secrets_are_not_remembered(tmp_path: Path) -> None:
    server, elsewhere, _ = services(tmp_path)
    assert server.authenticate("execdb_nope") is None
    _, secret = elsewhere.create("trigger", ["create"], utcnow())
    assert server.authenticate(secret) is not None, "a new token works at once"


def test_no_cache_when_disabled(tmp_path: Path) -> None:
    _, elsewhere, _ = services(tmp_path)
    server = TokenService(elsewhere.db, cache_seconds=0)
    _, secret = elsewhere.create("executor", ["report"], utcnow())
    assert server.authenticate(secret) is not None
    elsewhere.revoke("executor", utcnow())
    assert server.authenticate(secret) is None


def test_recognised_answers_from_memory_only(tmp_path: Path) -> None:
    # What the server asks first, before it makes a database call for a look-up.
    server, elsewhere, clock = services(tmp_path)
    _, secret = elsewhere.create("executor", ["report"], utcnow())
    assert server.recognised(secret) is None, "never looked up: the database must be asked"
    token = server.authenticate(secret)
    assert token is not None
    elsewhere.revoke("executor", utcnow())
    assert server.recognised(secret) == token, "remembered, without reading the revocation"
    clock.now += 11
    assert server.recognised(secret) is None, "expired: the database must be asked again"
    assert server.authenticate(secret) is None
