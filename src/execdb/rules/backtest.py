"""A draft rule tried over the stored data before it is saved (POST /api/v1/rules/try).

Over the kept logs of the last `days` days, newest first, at most `max_logs` of them, read in
batches (keyset by job id) so that memory stays flat: which stored crashes the draft fires on,
what would change for them (the merged rules with the draft in them decide, as after saving;
a reporter's specific cause and a person's classification are never changed), which kept logs
of FINISHED runs it fires on (a rule that matches passing runs is too loose), and which rules
in use fire on the same logs.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from execdb.classify import Engine, Rule, RuleSet
from execdb.db import Database
from execdb.jobs.models import Job, JobLog
from execdb.vocabulary import State

BATCH = 200
# Each list of the answer shows at most this many jobs; the counts are of all of them.
SHOWN_MAX = 100
# Classifications no rule may overwrite.
PROTECTED = frozenset({"reporter", "person"})

_LOGS = (
    select(
        Job.id,
        Job.uuid,
        Job.task,
        Job.state,
        Job.blame,
        Job.cause,
        Job.classified_by,
        JobLog.text,
    )
    .join(Job, Job.id == JobLog.job_id)
    .order_by(JobLog.job_id.desc())
)


@dataclass
class Backtest:
    since: datetime
    max_logs: int
    scanned: int = 0
    scanned_crashed: int = 0
    scanned_finished: int = 0
    matched_crashed: int = 0
    matched_finished: int = 0
    changed: int = 0
    unchanged: int = 0
    protected: int = 0
    wins: int = 0
    truncated: bool = False
    changes: list[dict[str, Any]] = field(default_factory=list)
    finished: list[dict[str, Any]] = field(default_factory=list)
    kept: list[dict[str, Any]] = field(default_factory=list)
    overlaps: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "scanned": {
                "logs": self.scanned,
                "crashed": self.scanned_crashed,
                "finished": self.scanned_finished,
                "since": self.since.isoformat(),
                "max_logs": self.max_logs,
                "truncated": self.truncated,
            },
            "crashed": {
                "matched": self.matched_crashed,
                "decides": self.wins,
                "would_change": self.changed,
                "unchanged": self.unchanged,
                "protected": self.protected,
                "changes": self.changes,
                "protected_jobs": self.kept,
            },
            "finished": {"matched": self.matched_finished, "jobs": self.finished},
            "overlaps": [{"rule": r, "logs": n} for r, n in self.overlaps.most_common()],
        }


def _first_line(rule_engine: Engine, text: str) -> dict[str, Any] | None:
    findings = rule_engine.findings(text)
    if not findings:
        return None
    first = findings[0].evidence[0]
    return {"line": first.line, "text": first.text}


def _batches(conn: Connection, since: datetime, max_logs: int) -> Any:
    last: int | None = None
    left = max_logs
    while left > 0:
        stmt = _LOGS.where(JobLog.created_at >= since).limit(min(BATCH, left))
        if last is not None:
            stmt = stmt.where(JobLog.job_id < last)
        rows = conn.execute(stmt).mappings().all()
        if not rows:
            return
        yield rows
        left -= len(rows)
        last = rows[-1]["id"]


def backtest(
    db: Database,
    draft: Rule,
    current: RuleSet,
    now: datetime,
    *,
    days: int,
    max_logs: int,
) -> Backtest:
    alone = Engine(RuleSet((draft,), "draft"))
    before = Engine(current)
    others = tuple(r for r in current.rules if r.id != draft.id)
    after = Engine(RuleSet((*others, draft), "draft"))
    result = Backtest(since=now - timedelta(days=days), max_logs=max_logs)
    with db.read() as conn:
        for rows in _batches(conn, result.since, max_logs + 1):
            for row in rows:
                if result.scanned == max_logs:
                    result.truncated = True
                    break
                _one(result, row, alone, before, after, draft.id)
    return result


def _one(
    result: Backtest,
    row: Any,
    alone: Engine,
    before: Engine,
    after: Engine,
    draft_id: str,
) -> None:
    result.scanned += 1
    crashed = row["state"] == State.CRASHED
    if crashed:
        result.scanned_crashed += 1
    elif row["state"] == State.FINISHED:
        result.scanned_finished += 1
    text = row["text"]
    hit = _first_line(alone, text)
    if hit is None:
        return
    job = {"uuid": str(row["uuid"]), "task": row["task"], **hit}
    result.overlaps.update(f.rule.id for f in before.findings(text) if f.rule.id != draft_id)
    if not crashed:
        result.matched_finished += 1
        if len(result.finished) < SHOWN_MAX:
            result.finished.append(job)
        return
    result.matched_crashed += 1
    verdict = after.classify(text)
    if verdict.rule == draft_id:
        result.wins += 1
    if row["classified_by"] in PROTECTED:
        result.protected += 1
        if len(result.kept) < SHOWN_MAX:
            result.kept.append({**job, "classified_by": row["classified_by"]})
        return
    old = (row["blame"], row["cause"])
    if verdict.cause is None or (verdict.blame, verdict.cause) == old:
        result.unchanged += 1
        return
    result.changed += 1
    if len(result.changes) < SHOWN_MAX:
        result.changes.append(
            {
                **job,
                "from": {"blame": old[0], "cause": old[1], "classified_by": row["classified_by"]},
                "to": {"blame": str(verdict.blame), "cause": verdict.cause, "rule": verdict.rule},
            }
        )
