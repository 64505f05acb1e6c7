"""When causes and rules were seen, over all stored jobs.

    services.stats.seen(causes: Iterable[str]) -> dict[str, Seen]

gives each cause's oldest and newest crash (causes never seen are left out), and
`services.stats.rule_hits()` how many jobs each rule fired on and the newest one's time.

Each cause costs two seeks of the partial index ix_jobs_crashes_cause_created_at (cause,
created_at of crashes): a min() and a max() alone in their SELECT, which both databases
answer from one end of the cause's range. The state is a literal so that SQLite may use the
partial index. Causes come from the task code's reports, so the caller bounds how many.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import NamedTuple

from sqlalchemy import Select, String, func, literal, literal_column, select, union_all
from sqlalchemy.engine import Connection

from execdb.jobs.models import Job

# Statements of one UNION ALL: SQLite allows 500 parts to a compound SELECT.
CHUNK = 100


class Seen(NamedTuple):
    first: datetime
    last: datetime


def seen(conn: Connection, causes: Iterable[str]) -> dict[str, Seen]:
    wanted = sorted(set(causes))
    found: dict[str, Seen] = {}
    for at in range(0, len(wanted), CHUNK):
        parts = [_seen(cause) for cause in wanted[at : at + CHUNK]]
        for cause, first, last in conn.execute(union_all(*parts)):
            if first is not None and last is not None:
                found[cause] = Seen(_utc(first), _utc(last))
    return found


def _seen(cause: str) -> Select[str, datetime, datetime]:
    crashes = [Job.state == literal_column("'CRASHED'"), Job.cause == cause]
    first = select(func.min(Job.created_at)).where(*crashes).scalar_subquery()
    last = select(func.max(Job.created_at)).where(*crashes).scalar_subquery()
    return select(literal(cause, String()).label("cause"), first, last)


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
