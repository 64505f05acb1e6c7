"""What the server's write transactions keep when a statement fails, on both databases.

On PostgreSQL the server's calls send the statements whose answers nobody reads (a job's
UPDATE, its event's INSERT) in a pipeline with the COMMIT (execdb.pipelined), so such a
statement's failure is seen at the COMMIT: the caller must still get SQLAlchemy's exception,
nothing of the transaction must be kept, and the next call must work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from execdb.db import utcnow
from execdb.jobs import store
from execdb.jobs.models import Job
from execdb.jobs.states import Event
from execdb.services import Services
from execdb.vocabulary import Outcome, State
from tests.conftest import Databases, settings_for
from tests.live import prepare


@pytest.fixture
def services(backend: str, databases: Databases) -> Iterator[Services]:
    built = prepare(settings_for(databases.url(backend)))
    yield built
    built.db.close()


def _new_job(services: Services) -> dict[str, Any]:
    with services.db.write() as conn:
        return store.insert_job(conn, store.new_job(utcnow(), task="t", item="i", item_type="x"))


def _event() -> Event:
    now = utcnow()
    return Event(now, "test", False, State.SCHEDULED, State.RUNNING, Outcome.ACCEPTED, {}, "x")


def test_a_failing_queued_statement_fails_the_call_and_keeps_nothing(services: Services) -> None:
    job = _new_job(services)

    def update_then_fail() -> None:
        with services.db.write() as conn:
            store.update_job(conn, job["id"], {"state": State.RUNNING, "updated_at": utcnow()})
            store.record(conn, job["id"] + 1000, _event())  # no such job: a foreign key

    def state() -> State:
        with services.db.read() as conn:
            return State(conn.execute(select(Job.state).where(Job.id == job["id"])).scalar_one())

    async def calls() -> State:
        with pytest.raises(IntegrityError):
            await services.db.run_write(update_then_fail)
        return await services.db.run(state)

    assert asyncio.run(calls()) == State.SCHEDULED


def test_a_call_after_a_failed_one_is_kept(services: Services) -> None:
    job = _new_job(services)

    def fail() -> None:
        with services.db.write() as conn:
            store.record(conn, job["id"] + 1000, _event())

    def move() -> None:
        with services.db.write() as conn:
            store.update_job(conn, job["id"], {"state": State.RUNNING, "updated_at": utcnow()})
            store.record(conn, job["id"], _event())

    async def calls() -> dict[str, Any]:
        for _ in range(3):  # on the call connections they land on
            with pytest.raises(IntegrityError):
                await services.db.run_write(fail)
            await services.db.run_write(move)
        return await services.db.run(services.jobs.get, job["uuid"])

    assert asyncio.run(calls())["state"] == State.RUNNING
