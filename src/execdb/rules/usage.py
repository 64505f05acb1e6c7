"""How often each rule decided: hits in the last 7 and 30 days and the last hit, read from the
stored classifications (jobs.rule_id, indexed with created_at), and which rules are stale."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, func, select

from execdb.db import Database
from execdb.jobs.models import Job


@dataclass(frozen=True, slots=True)
class Usage:
    hits_7d: int = 0
    hits_30d: int = 0
    last_hit: datetime | None = None


def usage(db: Database, now: datetime) -> dict[str, Usage]:
    week, month = now - timedelta(days=7), now - timedelta(days=30)
    recent = (
        select(
            Job.rule_id,
            func.sum(case((Job.created_at >= week, 1), else_=0)),
            func.count(),
        )
        .where(Job.rule_id.is_not(None), Job.created_at >= month)
        .group_by(Job.rule_id)
    )
    last = select(Job.rule_id, func.max(Job.created_at)).group_by(Job.rule_id)
    last = last.where(Job.rule_id.is_not(None))
    with db.read() as conn:
        counts = {r: (int(w or 0), int(m)) for r, w, m in conn.execute(recent)}
        lasts = {r: at for r, at in conn.execute(last) if r is not None}
    return {rule: Usage(*counts.get(rule, (0, 0)), _aware(at)) for rule, at in lasts.items()}


def _aware(at: object) -> datetime | None:
    if not isinstance(at, datetime):
        # SQLite's max() of a datetime column answers the stored text.
        return datetime.fromisoformat(str(at)).replace(tzinfo=UTC) if at is not None else None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def is_stale(found: Usage | None, now: datetime, stale_days: int, since: datetime | None) -> bool:
    """No hit in `stale_days`; a rule saved less than that long ago (`since`) is not stale."""
    horizon = now - timedelta(days=stale_days)
    if since is not None and since > horizon:
        return False
    return found is None or found.last_hit is None or found.last_hit < horizon
