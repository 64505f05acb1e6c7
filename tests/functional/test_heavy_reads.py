"""Long reads (statistics, the dashboard, the stats page) do not hold up the reports.

A read is held open in the middle of its transaction, after its first GROUP BY has run (on
SQLite: with its WAL snapshot taken), by a hook on the server's engine; meanwhile a report
must be answered and kept, and the read must still answer once let go.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from execdb.services import database as open_database
from tests.conftest import settings_for
from tests.helpers import INTO, create_job
from tests.live import LiveServer

HOLD_SECONDS = 10.0
REPORT_TIMEOUT = 5.0


class Hold:
    """Stops the next statement with a GROUP BY, in whichever thread runs it, until let go."""

    def __init__(self) -> None:
        self.armed = False
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if self.armed and "GROUP BY" in statement:
            self.armed = False
            self.started.set()
            self.release.wait(HOLD_SECONDS)


@pytest.fixture
def hold(server: LiveServer) -> Iterator[Hold]:
    engine = server.services.db.engine
    held = Hold()
    event.listen(engine, "after_cursor_execute", held)
    try:
        yield held
    finally:
        held.release.set()
        event.remove(engine, "after_cursor_execute", held)


@pytest.mark.parametrize("path", ["/api/v1/stats", "/", "/stats"])
def test_a_report_is_answered_while_a_long_read_runs(
    server: LiveServer, hold: Hold, path: str
) -> None:
    with server.client("admin") as trigger, server.client("report") as executor:
        job = create_job(trigger)
        with ThreadPoolExecutor(1) as pool:
            hold.armed = True
            reading = pool.submit(trigger.get, path)
            assert hold.started.wait(REPORT_TIMEOUT), "the read never reached its GROUP BY"
            try:
                answer = executor.patch(
                    f"/api/v1/jobs/{job['uuid']}", json=INTO["RUNNING"], timeout=REPORT_TIMEOUT
                )
            except httpx.TimeoutException:
                pytest.fail(f"a report waited for GET {path} to end")
            assert answer.status_code == 200, answer.text
            assert not reading.done()
            hold.release.set()
            read = reading.result(HOLD_SECONDS)
        assert read.status_code == 200, read.text
        kept = trigger.get(f"/api/v1/jobs/{job['uuid']}").json()
        assert kept["state"] == "RUNNING"


def test_a_read_cannot_write(tmp_path: Path) -> None:
    db = open_database(settings_for(f"sqlite:///{tmp_path / 'ro.sqlite'}"))

    def insert() -> None:
        with db.read() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")

    try:
        with pytest.raises(Exception, match="readonly database"):
            asyncio.run(db.run_read(insert))
    finally:
        db.close()


def test_close_ends_the_readers_and_their_connections(tmp_path: Path) -> None:
    path = tmp_path / "readers.sqlite"
    db = open_database(settings_for(f"sqlite:///{path}"))
    with db.write() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")

    def count() -> int:
        with db.read() as conn:
            return int(conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one())

    async def main() -> list[int]:
        return await asyncio.gather(*(db.run_read(count) for _ in range(8)))

    # Other databases of this process (the suite's shared servers) have readers of their own.
    before = {t for t in threading.enumerate() if t.name.startswith("execdb-reader")}
    assert asyncio.run(main()) == [0] * 8
    mine = {t for t in threading.enumerate() if t.name.startswith("execdb-reader")} - before
    assert mine
    db.close()
    assert not [t for t in mine if t.is_alive()]
    # SQLite removes the WAL file when the last connection to the database closes.
    assert not Path(f"{path}-wal").exists()
