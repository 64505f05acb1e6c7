"""When causes and rules were seen, over all stored jobs.

    seen(conn, causes: Iterable[str]) -> dict[str, Seen]

gives each cause's oldest and newest crash (causes never seen are left out; the dashboard's
`services.stats.recent` asks it), and `rule_hits(conn)` (`services.stats.rule_hits()`) how
many jobs each rule fired on and the newest one's time.

Each cause costs two seeks of the partial index ix_jobs_crashes_cause_created_at (cause,
created_at of crashes): a min() and a max() alone in their SELECT, which both databases
answer from one end of the cause's range. SQLite's planner, which has no statistics, would
rather scan every crash in ix_jobs_stats (state, ...): there the statement names the index
(`INDEXED BY`, which SQLAlchemy cannot write, so the statement is text). Causes come from
the task code's reports, so the caller bounds how many.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    Select,
    String,
    TextClause,
    func,
    literal,
    literal_column,
    select,
    text,
    union_all,
)
from sqlalchemy.engine import Connection

from execdb.jobs.models import Job

# Statements of one UNION ALL: SQLite allows 500 parts to a compound SELECT.
CHUNK = 100
INDEX = "ix_jobs_crashes_cause_created_at"


class Seen(NamedTuple):
    first: datetime
    last: datetime


def seen(conn: Connection, causes: Iterable[str]) -> dict[str, Seen]:
    wanted = sorted(set(causes))
    found: dict[str, Seen] = {}
    for at in range(0, len(wanted), CHUNK):
        chunk = wanted[at : at + CHUNK]
        if conn.dialect.name == "sqlite":
            stmt: Any = _seen_sqlite(len(chunk))
            rows = conn.execute(stmt, {f"c{n}": cause for n, cause in enumerate(chunk)})
        else:
            rows = conn.execute(union_all(*(_seen(cause) for cause in chunk)))
        for cause, first, last in rows:
            if first is not None and last is not None:
                found[cause] = Seen(_utc(first), _utc(last))
    return found


def _seen(cause: str) -> Select[str, datetime, datetime]:
    crashes = [Job.state == literal_column("'CRASHED'"), Job.cause == cause]
    first = select(func.min(Job.created_at)).where(*crashes).scalar_subquery()
    last = select(func.max(Job.created_at)).where(*crashes).scalar_subquery()
    return select(literal(cause, String()).label("cause"), first, last)


def _seen_sqlite(count: int) -> TextClause:
    crashes = f"FROM jobs INDEXED BY {INDEX} WHERE state = 'CRASHED' AND cause = :c"
    return text(
        " UNION ALL ".join(
            f"SELECT :c{n}, (SELECT min(created_at) {crashes}{n}), "
            f"(SELECT max(created_at) {crashes}{n})"
            for n in range(count)
        )
    )


def _utc(moment: datetime | str) -> datetime:
    # min() and max() lose the column's type on SQLite: the stored text comes back.
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def rule_hits(conn: Connection) -> dict[str, tuple[int, datetime]]:
    """Read from the index on rule_id, created_at."""
    stmt = (
        select(Job.rule_id, func.count(), func.max(Job.created_at))
        .where(Job.rule_id.is_not(None))
        .group_by(Job.rule_id)
    )
    return {str(rule): (n, last) for rule, n, last in conn.execute(stmt)}
