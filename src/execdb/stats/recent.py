"""The recent crashes as the dashboard shows them: by task, and by cause and UTC day, with
each cause's first and last crash of all stored jobs.

    services.stats.recent(since: datetime, *, causes_max: int) -> Recent

Four statements in one read transaction, each cheap at any size of history, all but the
last reading a range of `ix_jobs_stats` (state, created_at, ... cause, task): the crashes
since `since` by task, and by cause and day, the FINISHED jobs since then by task, and the
first and last crash of the `causes_max` causes with the most crashes (`execdb.stats.seen`).
A summary grouped by task and by day would read the same window several times over.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Date, String, func, literal_column, select
from sqlalchemy.engine import Connection

from execdb.jobs.models import Job
from execdb.stats.seen import Seen, seen


@dataclass
class Recent:
    crashed: Counter[str] = field(default_factory=Counter)  # crashes by task
    finished: Counter[str] = field(default_factory=Counter)  # FINISHED jobs by task
    by_day: dict[str | None, Counter[date]] = field(default_factory=lambda: defaultdict(Counter))
    seen: dict[str, Seen] = field(default_factory=dict)


def recent(conn: Connection, since: datetime, causes_max: int) -> Recent:
    found = Recent()
    day = _day(conn)
    crashed = [Job.state == literal_column("'CRASHED'"), Job.created_at >= since]
    # Two GROUP BYs of the same few thousand crashes rather than one by (task, cause, day):
    # that one's rows, many times more, cost more to fetch than the reads behind them.
    by_task = select(Job.task, func.count()).where(*crashed).group_by(Job.task)
    for task, n in conn.execute(by_task):
        found.crashed[task] = n
    by_day = select(Job.cause, day.label("day"), func.count()).where(*crashed)
    by_cause: Counter[str | None] = Counter()
    for cause, on, n in conn.execute(by_day.group_by(Job.cause, day)):
        found.by_day[cause][_date(on)] += n
        by_cause[cause] += n
    finished = (
        select(Job.task, func.count())
        .where(Job.state == literal_column("'FINISHED'"), Job.created_at >= since)
        .group_by(Job.task)
    )
    for task, n in conn.execute(finished):
        found.finished[task] = n
    named = sorted((c for c in by_cause if c is not None), key=lambda c: (-by_cause[c], c))
    found.seen = seen(conn, named[:causes_max])
    return found


def _day(conn: Connection) -> ColumnElement[Any]:
    if conn.dialect.name == "postgresql":
        return func.date(func.timezone("UTC", Job.created_at), type_=Date())
    # SQLite stores datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff' text in UTC.
    return func.substr(Job.created_at, 1, 10, type_=String())


def _date(value: date | str) -> date:
    if isinstance(value, datetime):
        return value.astimezone(UTC).date()
    return value if isinstance(value, date) else date.fromisoformat(value)
