"""A slow statement on PostgreSQL does not stall the process: reports go on meanwhile.

The server runs each service call on the event loop in a greenlet of its own, whose waits
for PostgreSQL are the loop's (execdb.loopcalls), and the long reads on threads (execdb.db):
either way, a call waiting on PostgreSQL holds only itself. Here some requests are made slow
in the database itself: a hook that only this test adds to the server's engine runs
`pg_sleep` before their statement, on their own connection. While they sleep, other clients
walk jobs through their lives, and each of their requests must be answered in a fraction of
the sleep. The slow requests are statistics (a long read, on a thread) or searches (a call on
the loop).
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import greenlet
import pytest
from sqlalchemy import event

from tests.helpers import INTO, create_job
from tests.live import LiveServer

SLOW_SECONDS = 2.0
SLOW_REQUESTS = 2
REPORTERS = 4
# A report normally takes milliseconds; one that waited behind a slow statement takes the
# whole sleep.
MAX_REPORT_SECONDS = SLOW_SECONDS / 2


# What a slow request asks, and a word of the statement that is made to sleep. No statement
# of a job's life has it.
SLOW = {"stats": ("/api/v1/stats", "GROUP BY"), "search": ("/api/v1/jobs?limit=5", "ORDER BY")}


class SlowStatements:
    """Makes the first statement with `marker` of each of the next `count` calls (a call on
    the loop's greenlet, or a reader thread) sleep first."""

    def __init__(self, count: int, marker: str) -> None:
        self.left = count
        self.marker = marker
        self.sleeping = threading.Event()
        self._lock = threading.Lock()
        self._calls: set[int] = set()

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if self.marker not in statement:
            return
        with self._lock:
            me = id(greenlet.getcurrent())  # a thread's own greenlet on a thread
            if self.left == 0 or me in self._calls:
                return
            self.left -= 1
            self._calls.add(me)
        self.sleeping.set()
        cursor.execute("SELECT pg_sleep(%s)", (SLOW_SECONDS,))


@pytest.fixture(params=sorted(SLOW))
def slow_path(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def slow(server: LiveServer, slow_path: str) -> Iterator[SlowStatements]:
    engine = server.services.db.engine
    hook = SlowStatements(SLOW_REQUESTS, SLOW[slow_path][1])
    event.listen(engine, "before_cursor_execute", hook)
    try:
        yield hook
    finally:
        event.remove(engine, "before_cursor_execute", hook)


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_reports_are_answered_while_slow_statements_run(
    server: LiveServer, slow: SlowStatements, slow_path: str
) -> None:
    done = threading.Event()
    latencies: list[float] = []
    statuses: list[int] = []

    def report_lives() -> None:
        with server.client("both") as client:
            while not done.is_set():
                started = time.perf_counter()
                job = create_job(client)
                took = [time.perf_counter() - started]
                for state in ("RUNNING", "FINISHED"):
                    started = time.perf_counter()
                    answer = client.patch(f"/api/v1/jobs/{job['uuid']}", json=INTO[state])
                    took.append(time.perf_counter() - started)
                    statuses.append(answer.status_code)
                if slow.sleeping.is_set() and not done.is_set():
                    latencies.extend(took)

    def read_slowly() -> tuple[int, float]:
        with server.client("admin") as client:
            started = time.perf_counter()
            answer = client.get(SLOW[slow_path][0])
            return answer.status_code, time.perf_counter() - started

    with ThreadPoolExecutor(REPORTERS + SLOW_REQUESTS) as pool:
        reporting = [pool.submit(report_lives) for _ in range(REPORTERS)]
        time.sleep(0.3)  # the reporters are under way
        reads = [pool.submit(read_slowly) for _ in range(SLOW_REQUESTS)]
        answers = [read.result() for read in reads]
        done.set()
        for reporter in reporting:
            reporter.result()

    # The slow requests really were slow, in the database, and still answered.
    assert slow.left == 0
    assert [status for status, _ in answers] == [200] * SLOW_REQUESTS
    assert all(took >= SLOW_SECONDS for _, took in answers), answers
    assert set(statuses) == {200}
    assert len(latencies) >= 30, f"only {len(latencies)} requests while the statements slept"
    p99 = statistics.quantiles(latencies, n=100)[98]
    assert max(latencies) < MAX_REPORT_SECONDS, f"p99 {p99:.3f} s, max {max(latencies):.3f} s"
