"""The figures read from the database at scrape time, so that every server process answers
the same: jobs by state, the outbox's backlog, the worker's last round; and the exposition
that puts them beside the process's own counters (`instruments`).

A scrape must stay cheap at a million jobs. SCHEDULED and RUNNING jobs are few, and counted
on every scrape from `ix_jobs_state_id`. The terminal states hold nearly every job, so each
process counts them at most once every `terminal_cache_seconds`, and even then not FINISHED
itself (nearly all of them: its range of the index is most of the index): CRASHED and
CANCELLED are counted, and FINISHED is what remains of a count of all the jobs, which SQLite
answers from the b-tree's cells without decoding them and PostgreSQL with a parallel scan of
a small index. That takes about a sixth of the time of a grouped count on SQLite and half on
PostgreSQL (figures in docs/benchmarks.md). The outbox's pending and failed deliveries are
few (delivered ones are not counted) and read from its status index.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import Select, delete, func, insert, null, select, union_all, update
from sqlalchemy.engine import Connection

from execdb.automation.models import Delivery, Kind, Status
from execdb.db import Database
from execdb.jobs.models import Job
from execdb.metrics.instruments import Metrics, multiprocess_dir
from execdb.metrics.models import WorkerRound
from execdb.vocabulary import TERMINAL, State

ACTIVE = tuple(s for s in State if s not in TERMINAL)
# The state nearly every job is in: what remains once the others are counted.
MOST = State.FINISHED
FEW = tuple(s for s in State if s is not MOST)
# A worker that has not finished a round for this long is gone (restarted under a new name).
FORGET_WORKERS_AFTER = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Figures:
    jobs: dict[State, int]
    pending: dict[Kind, int]
    oldest_pending: dict[Kind, datetime]
    failed: dict[Kind, int]
    last_round: datetime | None
    now: datetime


@dataclass
class DatabaseFigures:
    """Reads `Figures`; one per process, keeping the terminal states' counts for a while."""

    db: Database
    terminal_cache_seconds: float = 30.0
    clock: Callable[[], float] = time.monotonic
    _terminal: tuple[float, dict[State, int]] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def read(self, now: datetime) -> Figures:
        with self.db.read() as conn:
            jobs = _count_states(conn, ACTIVE) | self._terminal_counts(conn)
            pending: dict[Kind, int] = {}
            failed: dict[Kind, int] = {}
            oldest: dict[Kind, datetime] = {}
            backlog = (
                select(Delivery.kind, Delivery.status, func.count(), func.min(Delivery.created_at))
                .where(Delivery.status.in_((Status.PENDING, Status.FAILED)))
                .group_by(Delivery.kind, Delivery.status)
            )
            for kind, status, count, first in conn.execute(backlog):
                if status == Status.PENDING:
                    pending[kind], oldest[kind] = count, first
                else:
                    failed[kind] = count
            last = conn.execute(select(func.max(WorkerRound.finished_at))).scalar()
        return Figures(jobs, pending, oldest, failed, last, now)

    def _terminal_counts(self, conn: Connection) -> dict[State, int]:
        with self._lock:
            cached = self._terminal
            if cached is not None and self.clock() - cached[0] < self.terminal_cache_seconds:
                return cached[1]
            counts = _count_terminal(conn)
            self._terminal = (self.clock(), counts)
            return counts


def _by_state(states: tuple[State, ...]) -> Select[State, int]:
    return select(Job.state, func.count()).where(Job.state.in_(states)).group_by(Job.state)


def _count_states(conn: Connection, states: tuple[State, ...]) -> dict[State, int]:
    found = {State(state): count for state, count in conn.execute(_by_state(states))}
    return {state: found.get(state, 0) for state in states}


def _count_terminal(conn: Connection) -> dict[State, int]:
    """The terminal states' counts, FINISHED as all jobs less the others, of one snapshot."""
    if conn.dialect.name == "sqlite":
        # Apart: SQLite counts all rows quickly only in a statement that is `count(*)` and
        # nothing else; one read transaction is one snapshot.
        rows = list(conn.execute(_by_state(FEW)))
        total = conn.execute(select(func.count()).select_from(Job)).scalar_one()
    else:  # one statement, one snapshot, also at READ COMMITTED
        everything = select(null(), func.count()).select_from(Job)
        rows = list(conn.execute(union_all(_by_state(FEW), everything)))
        total = next(count for state, count in rows if state is None)
    found = {State(state): count for state, count in rows if state is not None}
    found[MOST] = total - sum(found.values())
    return {state: found.get(state, 0) for state in TERMINAL}


def round_finished(db: Database, worker: str, now: datetime) -> None:
    """Note that `worker` finished a round at `now`, and forget workers long gone."""
    with db.write() as conn:
        changed = conn.execute(
            update(WorkerRound).where(WorkerRound.worker == worker).values(finished_at=now)
        ).rowcount
        if not changed:
            conn.execute(insert(WorkerRound).values(worker=worker, finished_at=now))
        conn.execute(
            delete(WorkerRound).where(WorkerRound.finished_at < now - FORGET_WORKERS_AFTER)
        )


class FiguresCollector:
    """The figures and the build's version as Prometheus metric families."""

    def __init__(self, figures: Figures, version: str) -> None:
        self.figures = figures
        self.version = version

    def collect(self) -> Iterator[Metric]:
        f = self.figures
        info = GaugeMetricFamily(
            "execdb_build_info", "The running ExecDB's version (always 1).", labels=["version"]
        )
        info.add_metric([self.version], 1)
        yield info
        jobs = GaugeMetricFamily("execdb_jobs", "Jobs in the database, by state.", labels=["state"])
        for state, count in f.jobs.items():
            jobs.add_metric([state.value], count)
        yield jobs
        yield _by_kind(
            "execdb_outbox_pending", "Deliveries waiting to be made, by kind.", f.pending
        )
        ages = {k: max(0.0, (f.now - at).total_seconds()) for k, at in f.oldest_pending.items()}
        yield _by_kind(
            "execdb_outbox_oldest_pending_age_seconds",
            "Age of the oldest delivery still waiting to be made, by kind (0: none waits).",
            ages,
        )
        yield _by_kind(
            "execdb_outbox_failed",
            "Deliveries given up after their last attempt, waiting for `execdb deliveries "
            "retry`, by kind.",
            f.failed,
        )
        if f.last_round is not None:
            last = GaugeMetricFamily(
                "execdb_worker_last_round_timestamp_seconds",
                "When a worker last finished a round of background work (Unix time).",
            )
            last.add_metric([], f.last_round.timestamp())
            yield last


def _by_kind(name: str, documentation: str, values: dict[Kind, float] | dict[Kind, int]) -> Metric:
    family = GaugeMetricFamily(name, documentation, labels=["kind"])
    for kind in Kind:
        family.add_metric([kind.value], values.get(kind, 0))
    return family


def exposition(metrics: Metrics, figures: Figures, version: str) -> bytes:
    """The Prometheus text of one scrape: every process's counters (multiprocess mode) or
    this one's, then the figures."""
    registry = CollectorRegistry()
    directory = multiprocess_dir()
    if directory is not None:
        MultiProcessCollector(registry, directory)  # type: ignore[no-untyped-call]
    else:
        registry.register(metrics.registry)
    registry.register(FiguresCollector(figures, version))
    return generate_latest(registry)
