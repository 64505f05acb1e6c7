"""What a report's transaction costs the client on PostgreSQL, without HTTP and without a loop.

One connection, one thread, one job locked, updated and given an event over and over (the
statements of a report: SELECT ... FOR UPDATE, UPDATE, INSERT of the event), on a throwaway
PostgreSQL server (tests/pgcluster.py), in three ways side by side:

  cursors    the same statements through psycopg's cursors, as on any connection that is
             not kept: BEGIN, each statement and COMMIT a round trip of its own,
  pipelined  execdb.pipelined: the server's kept connections (two round trips),
  libpq      the floor: two round trips of prepared statements straight through libpq, with
             parameters already dumped and no row loaded.

The table gives, for each, the client's CPU and the wall time a transaction (medians over
the K rounds, which alternate the ways so that all see the same machine).

    .venv/bin/python bench/pgclient.py [--transactions 2000] [--repeat 5]
        [--json bench/results/pgclient.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import select
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lifecycle  # bench/lifecycle.py: the throwaway PostgreSQL server
import psycopg
from psycopg import pq
from sqlalchemy import Connection

from execdb.db import make_engine, utcnow
from execdb.jobs import store
from execdb.jobs.states import Event
from execdb.migrations import upgrade
from execdb.pipelined import Pipelines
from execdb.vocabulary import Outcome, State

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_JSON = BENCH_DIR / "results" / "pgclient.json"
WAYS = ("cursors", "pipelined", "libpq")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _report(conn: Connection, job_uuid: Any) -> None:
    job = store.lock(conn, job_uuid)
    now = utcnow()
    store.update_job(conn, job["id"], {"state": State.RUNNING, "updated_at": now})
    event = Event(now, "bench", False, State.RUNNING, State.RUNNING, Outcome.ACCEPTED, {}, None)
    store.record(conn, job["id"], event)


class Ways:
    """The three ways of running a report's transaction, on one database."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url, pool_size=2)
        upgrade(self.engine)
        self.pipelines = Pipelines(self.engine)
        self.plain = self.engine.connect()
        self.kept = self.engine.connect()
        with self.plain.begin():
            job = store.insert_job(
                self.plain, store.new_job(utcnow(), task="t", item="i", item_type="x")
            )
        self.job_uuid = job["uuid"]
        self.raw = psycopg.connect(url.replace("postgresql+psycopg", "postgresql"))
        pgconn = self.raw.pgconn
        pgconn.prepare(b"lock", b"SELECT id, state FROM jobs WHERE uuid = $1 FOR UPDATE")
        pgconn.prepare(b"update", b"UPDATE jobs SET updated_at = now() WHERE id = $1")
        pgconn.prepare(
            b"event",
            b"INSERT INTO job_events (job_id, at, actor, by_system, to_state, outcome, payload)"
            b" VALUES ($1, now(), 'bench', false, 'RUNNING', 'accepted', '{}') RETURNING id",
        )

    def cursors(self) -> None:
        with self.plain.begin():
            _report(self.plain, self.job_uuid)

    def pipelined(self) -> None:
        with self.kept.begin(), self.pipelines.transaction(self.kept):
            _report(self.kept, self.job_uuid)

    @contextmanager
    def libpq(self) -> Iterator[Callable[[], None]]:
        pgconn = self.raw.pgconn
        job_uuid = str(self.job_uuid).encode()
        pgconn.enter_pipeline_mode()

        def sync() -> None:
            pgconn.pipeline_sync()
            while pgconn.flush():
                select.select([pgconn.socket], [pgconn.socket], [])
                pgconn.consume_input()
            while True:
                while pgconn.is_busy():
                    select.select([pgconn.socket], [], [])
                    pgconn.consume_input()
                result = pgconn.get_result()
                if result is not None and result.status == pq.ExecStatus.PIPELINE_SYNC:
                    return

        def transaction() -> None:
            pgconn.send_query_params(b"BEGIN", None)
            pgconn.send_query_prepared(b"lock", [job_uuid])
            sync()
            pgconn.send_query_prepared(b"update", [b"1"])
            pgconn.send_query_prepared(b"event", [b"1"])
            pgconn.send_query_params(b"COMMIT", None)
            sync()

        try:
            yield transaction
        finally:
            pgconn.exit_pipeline_mode()

    def close(self) -> None:
        self.raw.close()
        self.plain.close()
        self.kept.close()
        self.engine.dispose()


def measure(fn: Callable[[], None], n: int) -> dict[str, float]:
    cpu, wall = _cpu(), time.perf_counter()
    for _ in range(n):
        fn()
    return {
        "cpu_us": 1e6 * (_cpu() - cpu) / n,
        "wall_us": 1e6 * (time.perf_counter() - wall) / n,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    pgcluster = lifecycle._load_pgcluster()
    with (
        tempfile.TemporaryDirectory(prefix="execdb-pgclient-") as tmp,
        pgcluster.PostgresCluster(Path(tmp)) as cluster,
    ):
        url = cluster.create_database("execdb_pgclient")
        ways = Ways(url)
        try:
            runs: dict[str, list[dict[str, float]]] = {way: [] for way in WAYS}
            for k in range(args.repeat):
                for way in WAYS[k % 3 :] + WAYS[: k % 3]:  # rotated: none always warmer
                    if way == "libpq":
                        with ways.libpq() as fn:
                            result = measure(fn, args.transactions)
                    else:
                        result = measure(getattr(ways, way), args.transactions)
                    runs[way].append(result)
        finally:
            ways.close()
    summary = {
        way: {key: statistics.median(r[key] for r in results) for key in ("cpu_us", "wall_us")}
        for way, results in runs.items()
    }
    return {
        "transactions": args.transactions,
        "repeat": args.repeat,
        "runs": runs,
        "summary": summary,
    }


def format_table(summary: dict[str, dict[str, float]]) -> str:
    lines = [f"{'way':<10}  {'client CPU µs/tx':>16}  {'wall µs/tx':>10}", "-" * 40]
    for way, figures in summary.items():
        lines.append(f"{way:<10}  {figures['cpu_us']:>16.1f}  {figures['wall_us']:>10.1f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--transactions", type=int, default=2000, help="transactions a run")
    p.add_argument("--repeat", type=int, default=5, help="runs of each way (medians)")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the results")
    args = p.parse_args(argv)
    results = run(args)
    print(format_table(results["summary"]))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
