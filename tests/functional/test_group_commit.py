"""Group commit on SQLite: the writes of one turn of the event loop share one transaction.

What a caller must be able to rely on: each call's answer is its own, a call that fails
leaves nothing behind, a commit that fails leaves nothing of anyone behind, and nobody is
answered before the commit that keeps their write.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError

from execdb.db import Database
from execdb.services import database as open_database
from tests.conftest import settings_for


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_database(settings_for(f"sqlite:///{tmp_path / 'group.sqlite'}"))
    with database.write() as conn:
        conn.exec_driver_sql("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        # A deferred foreign key is checked at COMMIT: the way to make a commit fail.
        conn.exec_driver_sql(
            "CREATE TABLE note (id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE, parent_id "
            "INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"
        )
    yield database
    database.close()


def add(
    db: Database,
    text: str,
    *,
    parent: int | None = None,
    fail: bool = False,
    on_conflict: str = "ABORT",
) -> str:
    with db.write() as conn:
        conn.exec_driver_sql(
            f"INSERT OR {on_conflict} INTO note (text, parent_id) VALUES (?, ?)", (text, parent)
        )
        if fail:
            raise RuntimeError(f"{text} failed after writing")
    return text


def notes(db: Database) -> list[str]:
    with db.read() as conn:
        return [row[0] for row in conn.exec_driver_sql("SELECT text FROM note ORDER BY id")]


def count_commits(db: Database) -> list[int]:
    commits = [0]

    @event.listens_for(db.engine, "commit")
    def _count(conn: Connection) -> None:
        commits[0] += 1

    return commits


def test_the_writes_of_one_turn_share_a_commit(db: Database) -> None:
    commits = count_commits(db)

    async def main() -> list[str]:
        return await asyncio.gather(*(db.run_write(add, db, f"n{i}") for i in range(20)))

    answers = asyncio.run(main())
    assert commits[0] == 1
    assert answers == [f"n{i}" for i in range(20)]
    assert notes(db) == answers


def test_a_failing_call_undoes_only_its_own_writes(db: Database) -> None:
    async def main() -> list[str | BaseException]:
        return await asyncio.gather(
            db.run_write(add, db, "a"),
            db.run_write(add, db, "b", fail=True),
            db.run_write(add, db, "c"),
            return_exceptions=True,
        )

    a, b, c = asyncio.run(main())
    assert (a, c) == ("a", "c")
    assert isinstance(b, RuntimeError)
    assert str(b) == "b failed after writing"
    assert notes(db) == ["a", "c"]


def test_a_failed_commit_fails_every_call_and_keeps_nothing(db: Database) -> None:
    async def main() -> list[str | BaseException]:
        return await asyncio.gather(
            db.run_write(add, db, "fine"),
            db.run_write(add, db, "orphan", parent=42),  # no parent 42: COMMIT refuses
            return_exceptions=True,
        )

    answers = asyncio.run(main())
    assert all(isinstance(a, IntegrityError) for a in answers), answers
    assert notes(db) == []

    # The connection and the writer's turn are free again.
    assert asyncio.run(db.run_write(add, db, "after")) == "after"
    assert notes(db) == ["after"]


def test_a_read_in_the_group_sees_the_writes_before_it(db: Database) -> None:
    async def main() -> list[object]:
        return await asyncio.gather(
            db.run_write(add, db, "first"), db.run_write(notes, db), db.run_write(add, db, "x")
        )

    _, seen, _ = asyncio.run(main())
    assert seen == ["first"]


def test_a_call_whose_request_is_gone_is_not_run(db: Database) -> None:
    async def main() -> None:
        gone = asyncio.ensure_future(db.run_write(add, db, "gone"))
        kept = asyncio.ensure_future(db.run_write(add, db, "kept"))
        await asyncio.sleep(0)  # both are queued now
        gone.cancel()
        await kept
        with pytest.raises(asyncio.CancelledError):
            await gone

    asyncio.run(main())
    assert notes(db) == ["kept"]


def test_event_loops_in_two_threads_keep_their_own_groups(db: Database) -> None:
    # A server's loop and, say, a command's loop in one process share the Database.
    def loop_writes(prefix: str) -> list[str]:
        async def main() -> list[str]:
            return await asyncio.gather(*(db.run_write(add, db, f"{prefix}{i}") for i in range(50)))

        return asyncio.run(main())

    with ThreadPoolExecutor(2) as threads:
        answers = list(threads.map(loop_writes, ["a", "b"]))

    assert answers == [[f"a{i}" for i in range(50)], [f"b{i}" for i in range(50)]]
    assert sorted(notes(db)) == sorted(answers[0] + answers[1])


def test_a_database_that_cannot_be_opened_fails_the_calls(tmp_path: Path) -> None:
    unreachable = open_database(settings_for(f"sqlite:///{tmp_path / 'missing' / 'x.sqlite'}"))

    async def main() -> None:
        await asyncio.wait_for(unreachable.run_write(add, unreachable, "lost"), timeout=10)

    try:
        with pytest.raises(OperationalError, match="unable to open database file"):
            asyncio.run(main())
    finally:
        unreachable.close()


def test_a_call_that_ends_the_whole_transaction_fails_every_call(db: Database) -> None:
    # Some failures (a full disk, an I/O error, here OR ROLLBACK) make SQLite roll back the
    # whole transaction, the writes of the calls before included: none may be answered as kept.
    asyncio.run(db.run_write(add, db, "taken"))

    async def main() -> list[str | BaseException]:
        return await asyncio.gather(
            db.run_write(add, db, "a"),
            db.run_write(add, db, "taken", on_conflict="ROLLBACK"),
            db.run_write(add, db, "c"),
            return_exceptions=True,
        )

    answers = asyncio.run(main())
    assert all(isinstance(a, IntegrityError) for a in answers), answers
    assert notes(db) == ["taken"]
    assert asyncio.run(db.run_write(add, db, "after")) == "after"
    assert notes(db) == ["taken", "after"]


def test_a_loop_stopped_before_its_commit_leaves_nothing_behind(db: Database) -> None:
    loop = asyncio.new_event_loop()
    abandoned = loop.create_task(db.run_write(add, db, "abandoned"))
    loop.call_soon(loop.stop)  # stops in the turn that queued the write
    loop.run_forever()
    abandoned.cancel()
    loop.close()

    async def main() -> str:
        return await asyncio.wait_for(db.run_write(add, db, "next"), timeout=10)

    assert asyncio.run(main()) == "next"
    assert notes(db) == ["next"]


REQUEST: contextvars.ContextVar[str] = contextvars.ContextVar("request")


def test_each_call_runs_in_its_own_callers_context(db: Database) -> None:
    def whose(db: Database) -> str:
        add(db, REQUEST.get())
        return REQUEST.get()

    async def caller(name: str) -> str:
        REQUEST.set(name)
        return await db.run_write(whose, db)

    async def main() -> list[str]:
        return await asyncio.gather(caller("first"), caller("second"))

    assert asyncio.run(main()) == ["first", "second"]
    assert notes(db) == ["first", "second"]
