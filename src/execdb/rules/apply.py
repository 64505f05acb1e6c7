"""A saved rule applied to the stored crashes it fires on (POST /api/v1/rules/<id>/apply).

Each crash is decided again by the rules in use (the saved rule among them), as the report
path decides: only crashes whose answer came from the rules or from nobody are touched, never
a reporter's specific cause nor a person's classification. Each change is one short
transaction with the job locked, checked again once locked, and a history event naming the
rule and the new rules version: the reclassification `execdb reclassify` makes, so it sends no
notification again and withdraws a pending retry the policy would no longer make
(docs/classification.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from execdb.classify import Engine, Rule, RuleSet
from execdb.db import Database
from execdb.jobs.reclassify import Reclassifier
from execdb.rules.backtest import PROTECTED, _batches
from execdb.vocabulary import Actor, State


@dataclass
class Applied:
    scanned: int = 0
    changed: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"scanned": self.scanned, "changed": len(self.changed), "jobs": self.changed[:100]}


def apply_rule(
    db: Database,
    rule: Rule,
    reclassifier: Reclassifier,
    actor: Actor,
    now: datetime,
    *,
    since: datetime,
    max_logs: int,
) -> Applied:
    """Reclassify the stored crashes `rule` fires on; each is decided again, once locked, by
    the rules in use (the reclassification of execdb.jobs.reclassify: the same eligibility,
    history event, retry withdrawal and bus message)."""
    alone = Engine(RuleSet((rule,), "one"))
    done = Applied()
    candidates: list[Any] = []
    with db.read() as conn:
        for rows in _batches(conn, since, max_logs):
            for row in rows:
                done.scanned += 1
                if row["state"] != State.CRASHED or row["classified_by"] in PROTECTED:
                    continue
                if alone.findings(row["text"]):
                    candidates.append(row["uuid"])
    for job_uuid in candidates:
        change = reclassifier.apply(job_uuid, actor, now)
        if change is not None:
            done.changed.append(
                {
                    "uuid": str(change.uuid),
                    "from": change.old.as_dict(),
                    "to": change.new.as_dict(),
                    "rules_version": change.rules_version,
                    "retry_withdrawn": change.retry_withdrawn,
                }
            )
    return done
