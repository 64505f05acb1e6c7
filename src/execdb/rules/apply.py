"""A saved rule applied to the stored crashes it fires on (POST /api/v1/rules/<id>/apply).

Each crash is decided again by the rules in use (the saved rule among them), as the report
path decides: only crashes whose answer came from the rules or from nobody are touched, never
a reporter's specific cause nor a person's classification. Each change is one short
transaction with the job locked, checked again once locked, and a history event naming the
rule and the new rules version. A reclassification sends no notification again and leaves a
pending retry as it is (docs/classification.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from execdb.classify import Engine, Rule, RuleSet, Verdict
from execdb.db import Database
from execdb.jobs import store
from execdb.jobs.states import Event
from execdb.rules.backtest import PROTECTED, _batches
from execdb.vocabulary import Actor, Outcome, State


@dataclass
class Applied:
    scanned: int = 0
    changed: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"scanned": self.scanned, "changed": len(self.changed), "jobs": self.changed[:100]}


def apply_rule(
    db: Database,
    rule: Rule,
    engine: Engine,
    actor: Actor,
    now: datetime,
    *,
    since: datetime,
    max_logs: int,
) -> Applied:
    alone = Engine(RuleSet((rule,), "one"))
    done = Applied()
    candidates: list[tuple[Any, Verdict]] = []
    with db.read() as conn:
        for rows in _batches(conn, since, max_logs):
            for row in rows:
                done.scanned += 1
                if row["state"] != State.CRASHED or row["classified_by"] in PROTECTED:
                    continue
                if not alone.findings(row["text"]):
                    continue
                verdict = engine.classify(row["text"])
                if verdict.cause is not None and (verdict.blame, verdict.cause) != (
                    row["blame"],
                    row["cause"],
                ):
                    candidates.append((row["uuid"], verdict))
    for job_uuid, verdict in candidates:
        changed = _change(db, job_uuid, verdict, actor, now)
        if changed is not None:
            done.changed.append(changed)
    return done


def _change(
    db: Database, job_uuid: Any, verdict: Verdict, actor: Actor, now: datetime
) -> dict[str, Any] | None:
    with db.write() as conn:
        job = store.claim(conn, job_uuid)
        if job is None or job["state"] != State.CRASHED or job["classified_by"] in PROTECTED:
            return None
        old = {"blame": job["blame"], "cause": job["cause"], "classified_by": job["classified_by"]}
        new = {"blame": verdict.blame, "cause": verdict.cause, "rule": verdict.rule}
        store.update_job(
            conn,
            job["id"],
            {
                "blame": verdict.blame,
                "cause": verdict.cause,
                "classified_by": "rules",
                "rule_id": verdict.rule,
                "rules_version": verdict.version,
                "evidence": [e.as_dict() for e in verdict.evidence],
                "rules_blame": None,
                "rules_cause": None,
                "updated_at": now,
            },
        )
        payload = {
            "reclassified": {
                "from": {k: (str(v) if v is not None else None) for k, v in old.items()},
                "to": {k: str(v) for k, v in new.items()},
                "rules_version": verdict.version,
            }
        }
        message = (
            f"reclassified by rule {verdict.rule} (rules {verdict.version}): "
            f"{old['blame']} {old['cause']} -> {verdict.blame} {verdict.cause}"
        )
        store.record(
            conn,
            job["id"],
            Event(
                now,
                actor.name,
                False,
                State.CRASHED,
                State.CRASHED,
                Outcome.ACCEPTED,
                payload,
                message,
            ),
        )
    return {"uuid": str(job_uuid), **payload["reclassified"]}
