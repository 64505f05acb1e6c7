"""Reclassification: the current rules over stored crashes (`execdb reclassify`, and
POST /api/v1/admin/reclassify; docs/classification.md, "Reclassify").

Only crashes with a kept log whose answer came from the rules or from nobody are decided again
(`states.reclassifiable`); a reporter's cause never is. A run also signs the crashes in its
scope that were stored without a signature (`execdb.jobs.signatures`), whatever classified
them, in the same pass: the signed ones leave the set, so a run again finds only the rest.
Jobs are read in batches, oldest first,
by keyset on their id, so that a million stored crashes are never loaded at once; each log is
classified as the report path does it (`execdb.jobs.classification`). A dry run only reads.

Applying writes each change in a transaction of its own, holding the job's row as a report
does (`store.lock`), and decides again from the row as it then is: the job may have been
reported or rescheduled since it was read, and what is written is what holds now. A change
records a history event; it sends no notification, and a pending retry that the retry policy
would no longer make is withdrawn (`Reactions.retry_withdrawn`), never the other way round.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.engine import Connection

from execdb.causes.catalogue import Catalogue
from execdb.db import Database
from execdb.errors import InvalidInput, JobNotFound
from execdb.jobs import signatures, states, store
from execdb.jobs.classification import classified
from execdb.jobs.interfaces import Classifier, Reactions
from execdb.jobs.models import Job, JobLog
from execdb.jobs.states import CLASSIFICATION, RECLASSIFIABLE, Claim, Event, JobRow
from execdb.vocabulary import Actor, Blame, Outcome, State

# Jobs read at once: each brings its log (up to log_max_bytes, 256 KiB), so a batch holds
# at most about 12 MiB of them.
BATCH = 48

_RULES_OR_NOBODY = or_(
    Job.classified_by.is_(None), Job.classified_by.in_([c for c in RECLASSIFIABLE if c])
)
_LOG = select(JobLog.text).where(JobLog.state == State.CRASHED)
_KEPT = and_(JobLog.job_id == Job.id, JobLog.state == State.CRASHED)
# Crashes the rules may decide again, or that lack a signature (`signatures.unsigned`).
_WANTED = or_(and_(_RULES_OR_NOBODY, JobLog.job_id.is_not(None)), signatures.unsigned())


@dataclass(frozen=True, slots=True)
class Answer:
    """Who is to blame for a crash and why, and who said so."""

    blame: Blame | None
    cause: str | None
    rule_id: str | None
    classified_by: str | None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Answer:
        return cls(row["blame"], row["cause"], row["rule_id"], row["classified_by"])

    def describe(self) -> str:
        return f"{self.blame} {self.cause or '(no cause)'}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "blame": self.blame,
            "cause": self.cause,
            "rule_id": self.rule_id,
            "classified_by": self.classified_by,
        }


@dataclass(frozen=True, slots=True)
class Change:
    """What the current rules change of one job: made, or to be made (a dry run)."""

    uuid: uuid.UUID
    old: Answer
    new: Answer
    rules_version: str
    # Why the job's pending retry is (in a dry run: would be) withdrawn; None: none is.
    retry_withdrawn: str | None
    values: Mapping[str, Any]  # the job's columns to write

    def describe(self) -> str:
        rule = f"rule {self.new.rule_id}" if self.new.rule_id else "no rule"
        text = f"{self.uuid}: {self.old.describe()} -> {self.new.describe()}  [{rule}]"
        if self.retry_withdrawn is not None:
            text += f"; pending retry withdrawn: {self.retry_withdrawn}"
        return text


@dataclass(frozen=True, slots=True)
class Scope:
    """Which stored crashes to look at: created within since and until (inclusive), at most
    `limit` of them (None: all), after the job `after` (the `next` of an earlier run)."""

    since: datetime | None = None
    until: datetime | None = None
    limit: int | None = None
    after: uuid.UUID | None = None


@dataclass(slots=True)
class Summary:
    """What a run did: jobs examined (eligible, or without a signature), of them changed,
    unchanged (the rules give the same blame, cause and rule, or may not decide them) and
    skipped (changed meanwhile, found so when applying); `signed`, those given a signature;
    and `next`, the last job examined when `limit` stopped the run (None: it went through)."""

    rules_version: str
    dry_run: bool
    examined: int = 0
    changed: int = 0
    skipped: int = 0
    signed: int = 0
    next: uuid.UUID | None = None

    @property
    def unchanged(self) -> int:
        return self.examined - self.changed - self.skipped


@dataclass(frozen=True, slots=True)
class Batch:
    changes: list[Change]
    unsigned: list[signatures.Unsigned]  # crashes to sign that no change signs
    examined: int
    last: tuple[int, uuid.UUID] | None  # the id and uuid of the last job examined


class Reclassifier:
    def __init__(
        self,
        db: Database,
        catalogue: Catalogue,
        classifier: Classifier,
        *,
        reactions: Reactions | None = None,
    ) -> None:
        self.db = db
        self.catalogue = catalogue
        self.classifier = classifier
        self.reactions = reactions

    async def run(
        self,
        scope: Scope,
        actor: Actor,
        *,
        dry_run: bool,
        clock: Callable[[], datetime],
        each: Callable[[Change], None] | None = None,
    ) -> Summary:
        """Reclassify the crashes in `scope`, calling `each` with every change made (with
        `dry_run`, every change to be made). Reads run on the database's reader threads and
        each change is its own write, so that the event loop goes on serving meanwhile."""
        summary = Summary(self.classifier.version, dry_run)
        after = await self.db.run_read(self.start, scope.after)
        while scope.limit is None or summary.examined < scope.limit:
            size = BATCH if scope.limit is None else min(BATCH, scope.limit - summary.examined)
            batch = await self.db.run_read(self.batch, after, size, scope, clock())
            summary.examined += batch.examined
            for planned in batch.changes:
                change: Change | None = planned
                if not dry_run:
                    change = await self.db.run_write(self.apply, planned.uuid, actor, clock())
                if change is None:
                    summary.skipped += 1
                    continue
                summary.changed += 1
                if each is not None:
                    each(change)
            if batch.unsigned:
                signed = len(batch.unsigned)
                if not dry_run:
                    signed = await self.db.run_write(self.sign, batch.unsigned)
                summary.signed += signed
            if batch.last is None or batch.examined < size:
                break
            after = batch.last[0]
            if summary.examined == scope.limit:
                summary.next = batch.last[1]
        return summary

    def start(self, after: uuid.UUID | None) -> int:
        """The id to go on after: the job `after`'s, or 0 (from the first job)."""
        if after is None:
            return 0
        with self.db.read() as conn:
            found = conn.execute(store.JOB_ID, {"uuid": after}).scalar()
        if found is None:
            raise InvalidInput(f"after: no job with uuid {after}")
        return int(found)

    def batch(self, after: int, size: int, scope: Scope, now: datetime) -> Batch:
        """The next `size` jobs after the id `after` that are eligible or unsigned, what would
        change of them and which to sign."""
        stmt = (
            select(Job.__table__, JobLog.text.label("kept_log"))
            .outerjoin(JobLog, _KEPT)
            .where(Job.state == State.CRASHED, _WANTED)
            .where(Job.id > after)
            .order_by(Job.id)
            .limit(size)
        )
        if scope.since is not None:
            stmt = stmt.where(Job.created_at >= scope.since)
        if scope.until is not None:
            stmt = stmt.where(Job.created_at <= scope.until)
        with self.db.read() as conn:
            rows = list(conn.execute(stmt).mappings())
        changes: list[Change] = []
        unsigned: list[signatures.Unsigned] = []
        for row in rows:
            log = row["kept_log"]
            change = self.change(row, log, now) if _eligible(row, log) else None
            if change is not None:
                changes.append(change)  # it writes the signature of its new answer
            elif row["signature"] is None:
                found = signatures.sign(self.classifier, row, log)
                if found is not None:
                    unsigned.append(found)
        last = (rows[-1]["id"], rows[-1]["uuid"]) if rows else None
        return Batch(changes, unsigned, len(rows), last)

    def sign(self, crashes: list[signatures.Unsigned]) -> int:
        """Sign crashes still unsigned and unchanged since read; how many were signed."""
        with self.db.write() as conn:
            return signatures.fill(conn, crashes)

    def change(self, job: JobRow, log: str, now: datetime) -> Change | None:
        """What the current rules make of an eligible job's log, if it differs from what the
        job holds (blame, cause or rule); None if it does not."""
        claim = Claim(job["reported_blame"], job["reported_cause"], log=log)
        claim = classified(claim, self.catalogue, self.classifier)
        blame = claim.blame or self.catalogue.default_blame(claim.cause)
        values: dict[str, Any] = {
            **dict.fromkeys(CLASSIFICATION),
            **claim.classification,
            "blame": blame,
            "cause": claim.cause,
        }
        old, new = Answer.of(job), Answer.of(values)
        if (old.blame, old.cause, old.rule_id) == (new.blame, new.cause, new.rule_id):
            return None
        withdrawn = None
        waiting = job["retry_at"] is not None and job["rescheduled_as"] is None
        if waiting and self.reactions is not None:
            withdrawn = self.reactions.retry_withdrawn({**job, **values}, now)
            if withdrawn is not None:
                values["retry_at"] = None
        version = self.classifier.version
        return Change(job["uuid"], old, new, version, withdrawn, values)

    def apply(self, job_uuid: uuid.UUID, actor: Actor, now: datetime) -> Change | None:
        """Reclassify one job, deciding from its row as it is once locked: the change made,
        or None if the job is no longer eligible or the rules no longer change it."""
        with self.db.write() as conn:
            try:
                job = store.lock(conn, job_uuid)
            except JobNotFound:
                return None
            log = _kept_log(conn, job) if states.reclassifiable(job) else None
            change = self.change(job, log, now) if log is not None else None
            if change is None:
                return None
            after = {**change.values, "updated_at": now}
            store.update_job(conn, job["id"], after)
            store.record(conn, job["id"], _event(change, actor, now))
            if self.reactions is not None:
                self.reactions.reclassified(conn, job, {**job, **after}, actor, now)
        return change


def _eligible(job: JobRow, log: str | None) -> bool:
    return log is not None and states.reclassifiable(job)


def _kept_log(conn: Connection, job: JobRow) -> str | None:
    text: str | None = conn.execute(_LOG.where(JobLog.job_id == job["id"])).scalar()
    return text


def _event(change: Change, actor: Actor, now: datetime) -> Event:
    """The history's record of a reclassification: the job stays CRASHED."""
    new = change.new
    payload: dict[str, Any] = {
        "blame": new.blame,
        "cause": new.cause,
        "reclassified": {
            "from": change.old.as_dict(),
            "to": new.as_dict(),
            "rules_version": change.rules_version,
            "evidence": change.values["evidence"],
        },
    }
    message = (
        f"reclassified by rules {change.rules_version}: "
        f"{change.old.describe()} -> {new.describe()}"
        + (f" (rule {new.rule_id})" if new.rule_id else " (no rule fired)")
    )
    if change.retry_withdrawn is not None:
        payload["retry"] = {"withdrawn": change.retry_withdrawn}
        message += f"; the pending retry is withdrawn: {change.retry_withdrawn}"
    crashed, accepted = State.CRASHED, Outcome.ACCEPTED
    return Event(now, actor.name, actor.by_system, crashed, crashed, accepted, payload, message)
