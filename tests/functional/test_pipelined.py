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
from execdb.jobs.models import Job, JobEvent
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


def _state(services: Services, job: dict[str, Any]) -> State:
    def read() -> State:
        with services.db.read() as conn:
            return State(conn.execute(select(Job.state).where(Job.id == job["id"])).scalar_one())

    return asyncio.run(services.db.run(read))


def _events(services: Services, job: dict[str, Any]) -> list[State]:
    def read() -> list[State]:
        with services.db.read() as conn:
            rows = conn.execute(select(JobEvent.to_state).where(JobEvent.job_id == job["id"]))
            return [State(state) for state in rows.scalars()]

    return asyncio.run(services.db.run(read))


def test_a_failing_queued_statement_is_named_in_the_error(services: Services) -> None:
    """The error names the statement that failed, not the COMMIT that it went with."""
    job = _new_job(services)

    def fail() -> None:
        with services.db.write() as conn:
            store.update_job(conn, job["id"], {"state": State.RUNNING, "updated_at": utcnow()})
            store.record(conn, job["id"] + 1000, _event())

    with pytest.raises(IntegrityError) as raised:
        asyncio.run(services.db.run_write(fail))
    assert "INSERT INTO job_events" in str(raised.value)
    assert _state(services, job) == State.SCHEDULED


def test_an_error_of_the_code_after_queued_statements_keeps_nothing(services: Services) -> None:
    job = _new_job(services)

    def update_then_break() -> None:
        with services.db.write() as conn:
            store.update_job(conn, job["id"], {"state": State.RUNNING, "updated_at": utcnow()})
            store.record(conn, job["id"], _event())
            raise RuntimeError("the code broke before the commit")

    async def calls() -> None:
        for _ in range(3):  # on the call connections they land on
            with pytest.raises(RuntimeError):
                await services.db.run_write(update_then_break)

    asyncio.run(calls())
    assert _state(services, job) == State.SCHEDULED
    assert _events(services, job) == []


def test_other_statements_see_what_was_queued_before_them(services: Services) -> None:
    """A statement of SQLAlchemy's own inside the transaction runs after what was queued
    before it, and prepared statements after it still belong to the same transaction."""
    job = _new_job(services)

    def mixed() -> tuple[State, State]:
        with services.db.write() as conn:
            store.lock(conn, job["uuid"])
            store.update_job(conn, job["id"], {"state": State.RUNNING, "updated_at": utcnow()})
            seen = State(conn.execute(select(Job.state).where(Job.id == job["id"])).scalar_one())
            store.record(conn, job["id"], _event())
            store.update_job(conn, job["id"], {"state": State.FINISHED, "updated_at": utcnow()})
            again = store.lock(conn, job["uuid"])
            return seen, State(again["state"])

    assert asyncio.run(services.db.run_write(mixed)) == (State.RUNNING, State.FINISHED)
    assert _state(services, job) == State.FINISHED
    assert _events(services, job) == [State.RUNNING]
