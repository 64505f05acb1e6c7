"""People classify crashes, one at a time or a whole group of one signature, and the groups
of crashes that nobody has classified yet (the triage page).

A person's classification is final (`vocabulary.kept_by_person`): `classified_by` becomes
person, and neither the rules of a later report nor a reclassification of stored crashes
changes it. It is recorded in the job's history as a `classified` event with what it changed.
What it does to the retry policy is decided here with the policy's own rule
(`Reactions.retry_for`, docs/policies.md): a retry becomes due, is cancelled, or stays; no
notification is sent, since the person who classifies is the one who was to be told.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, desc, func, literal_column, or_, select
from sqlalchemy.engine import Connection

from execdb.causes.catalogue import Catalogue
from execdb.db import Database
from execdb.errors import JobNotFound, TransitionRefused
from execdb.jobs import store
from execdb.jobs.interfaces import Reactions
from execdb.jobs.models import Job, JobLog
from execdb.jobs.schemas import ClassificationIn
from execdb.jobs.states import Event, JobRow
from execdb.vocabulary import Actor, Blame, ClassifiedBy, Outcome, State

# A group classified at once holds at most this many crashes (the rest stay on the page).
GROUP_MAX = 500
GROUPS_SHOWN = 50
TASKS_SHOWN = 5
CHAIN_MAX = 20


@dataclass(frozen=True, slots=True)
class RetryEffect:
    """What a classification does to a crash's retry: its time before and after."""

    before: datetime | None
    after: datetime | None

    def describe(self) -> str:
        if self.before is None and self.after is None:
            return "no retry is due, and none will be"
        if self.before is None:
            return f"this will schedule a retry at {_minute(self.after)}"
        if self.after is None:
            return f"this will cancel the retry due at {_minute(self.before)}"
        return f"the retry due at {_minute(self.before)} stays"


def _minute(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "-"


@dataclass(frozen=True, slots=True)
class GroupEffect:
    """What classifying a group would do: how many crashes, retries scheduled and cancelled."""

    count: int
    scheduled: int
    cancelled: int

    def describe(self) -> str:
        parts = [f"this will classify {self.count} crash{'es' if self.count != 1 else ''}"]
        if self.scheduled:
            parts.append(f"schedule {self.scheduled} retr{'ies' if self.scheduled > 1 else 'y'}")
        if self.cancelled:
            parts.append(f"cancel {self.cancelled} retr{'ies' if self.cancelled > 1 else 'y'}")
        if not (self.scheduled or self.cancelled):
            parts.append("no retry changes")
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class Group:
    signature: str | None
    text: str | None
    count: int
    first: datetime
    last: datetime
    tasks: list[tuple[str, int]] = field(default_factory=list)
    arches: list[tuple[str, int]] = field(default_factory=list)
    example: JobRow | None = None


@dataclass(frozen=True, slots=True)
class Kind:
    """The crashes of one signature, for a rule made from them: the unclassified ones when
    there are any, else all of them; the newest few as examples, with their kept logs."""

    signature: str
    text: str | None
    count: int
    unclassified: bool  # whether count, tasks and examples are of the unclassified ones
    first: datetime
    last: datetime
    tasks: list[tuple[str, int]]
    examples: Sequence[tuple[JobRow, str | None]]


@dataclass(frozen=True, slots=True)
class Triage:
    groups: list[Group]
    crashes: int  # unclassified crashes in the window, all groups
    total_groups: int


def unclassified(catalogue: Catalogue) -> list[ColumnElement[bool]]:
    """Crashes nobody has classified: no cause, UNKNOWN blame, or a cause not in the
    catalogue; never one a person classified. The state is a literal, so that SQLite may use
    the partial index ix_jobs_crashes."""
    return [
        Job.state == literal_column("'CRASHED'"),
        or_(Job.classified_by.is_(None), Job.classified_by != ClassifiedBy.PERSON),
        or_(Job.cause.is_(None), Job.blame == Blame.UNKNOWN, Job.cause.not_in(list(catalogue))),
    ]


def _of_signature(signature: str | None) -> ColumnElement[bool]:
    return Job.signature.is_(None) if signature is None else Job.signature == signature


class TriageService:
    def __init__(
        self, db: Database, catalogue: Catalogue, *, reactions: Reactions | None = None
    ) -> None:
        self.db = db
        self.catalogue = catalogue
        self.reactions = reactions

    def preview(self, job_uuid: uuid.UUID, change: ClassificationIn, now: datetime) -> RetryEffect:
        """What classifying the crash as `change` says would do to its retry."""
        with self.db.read() as conn:
            job = store.JOB_BY_UUID.one_or_none(conn, {"uuid": job_uuid})
        if job is None:
            raise JobNotFound(job_uuid)
        _check_crashed(job)
        return self._effect(job, self._values(job, change), now)

    def classify(
        self, job_uuid: uuid.UUID, change: ClassificationIn, actor: Actor, now: datetime
    ) -> tuple[JobRow, RetryEffect]:
        """Classify one crash (TransitionRefused, changing nothing, if it is not CRASHED)."""
        with self.db.write() as conn:
            job = store.lock(conn, job_uuid)
            _check_crashed(job)
            return self._classify(conn, job, change, actor, now)

    def _values(self, job: JobRow, change: ClassificationIn) -> dict[str, Any]:
        blame = change.blame or self.catalogue.default_blame(change.cause)
        return {"blame": blame, "cause": change.cause, "classified_by": ClassifiedBy.PERSON}

    def _effect(self, job: JobRow, values: dict[str, Any], now: datetime) -> RetryEffect:
        before = job["retry_at"]
        if self.reactions is None:
            return RetryEffect(before, before)
        return RetryEffect(before, self.reactions.retry_for({**job, **values}, now))

    def _classify(
        self, conn: Connection, job: JobRow, change: ClassificationIn, actor: Actor, now: datetime
    ) -> tuple[JobRow, RetryEffect]:
        values = self._values(job, change)
        effect = self._effect(job, values, now)
        values.update(retry_at=effect.after, updated_at=now)
        store.update_job(conn, job["id"], values)
        old = {k: job[k] for k in ("blame", "cause", "classified_by")}
        payload = {
            "old": old,
            "new": {"blame": values["blame"], "cause": change.cause},
            "note": change.note,
            "retry": effect.describe(),
        }
        if change.cause not in self.catalogue:
            payload["warning"] = f"cause: {change.cause!r} is not in the cause catalogue"
        message = f"classified as {values['blame']} {change.cause} by {actor.name}"
        if change.note:
            message += f": {change.note}"
        event = Event(
            now, actor.name, actor.by_system, State.CRASHED, State.CRASHED,
            Outcome.CLASSIFIED, payload, message,
        )  # fmt: skip
        store.record(conn, job["id"], event)
        return {**job, **values}, effect

    def _group_ids(self, conn: Connection, signature: str | None, since: datetime) -> list[Any]:
        stmt = (
            select(Job.uuid)
            .where(*unclassified(self.catalogue), _of_signature(signature), Job.created_at >= since)
            .order_by(Job.id)
            .limit(GROUP_MAX)
        )
        return list(conn.execute(stmt).scalars())

    def preview_group(
        self, signature: str | None, since: datetime, change: ClassificationIn, now: datetime
    ) -> GroupEffect:
        with self.db.read() as conn:
            wanted = self._group_ids(conn, signature, since)
            jobs = list(conn.execute(store.JOB.where(Job.uuid.in_(wanted))).mappings())
        effects = [self._effect(j, self._values(j, change), now) for j in jobs]
        return GroupEffect(
            len(effects),
            sum(1 for e in effects if e.before is None and e.after is not None),
            sum(1 for e in effects if e.before is not None and e.after is None),
        )

    def classify_group(
        self,
        signature: str | None,
        since: datetime,
        change: ClassificationIn,
        actor: Actor,
        now: datetime,
    ) -> list[uuid.UUID]:
        """Classify every unclassified crash of the signature since `since` (at most
        GROUP_MAX), each as `classify` does, in one transaction; their uuids."""
        done = []
        with self.db.write() as conn:
            for job_uuid in self._group_ids(conn, signature, since):
                job = store.lock(conn, job_uuid)
                if job["state"] != State.CRASHED or job["classified_by"] == ClassifiedBy.PERSON:
                    continue
                self._classify(conn, job, change, actor, now)
                done.append(job_uuid)
        return done

    def fixed_by_retry(self, crashes: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        """Which of these crashes a later attempt FINISHED (see `fixed_by_retry`)."""
        with self.db.read() as conn:
            return fixed_by_retry(conn, crashes)

    def groups(self, since: datetime, limit: int = GROUPS_SHOWN) -> Triage:
        """The unclassified crashes since `since`, by signature, biggest and newest first."""
        window = [*unclassified(self.catalogue), Job.created_at >= since]
        count = func.count().label("n")
        last = func.max(Job.created_at).label("last")
        # The newest crash of a group is its example: ids grow with time, and the id is in
        # every index, so the examples come with the groups and are read in one query.
        newest = func.max(Job.id).label("example")
        grouped = (
            select(Job.signature, count, func.min(Job.created_at).label("first"), last, newest)
            .where(*window)
            .group_by(Job.signature)
        )
        each = grouped.subquery()
        totals = select(func.count(), func.coalesce(func.sum(each.c.n), 0))
        with self.db.read() as conn:
            groups_count, crashes = conn.execute(totals).one()
            shown = list(conn.execute(grouped.order_by(desc(count), desc(last)).limit(limit)))
            spread = self._spread(conn, window, [r.signature for r in shown])
            ids = [r.example for r in shown]
            found = conn.execute(store.JOB.where(Job.id.in_(ids))).mappings()
            examples = {e["id"]: e for e in found}
            groups = [_group(row, spread, examples.get(row.example)) for row in shown]
        return Triage(groups, int(crashes), int(groups_count))

    def kind(self, signature: str, examples: int = 3) -> Kind | None:
        """The crashes of `signature` (None: there are none)."""
        mine = [Job.state == literal_column("'CRASHED'"), Job.signature == signature]
        open_ = and_(*unclassified(self.catalogue))
        with self.db.read() as conn:
            total, left = conn.execute(
                select(func.count(), func.coalesce(func.sum(case((open_, 1), else_=0)), 0)).where(
                    *mine
                )
            ).one()
            if not total:
                return None
            if left:
                mine.append(open_)
            count, first, last = conn.execute(
                select(func.count(), func.min(Job.created_at), func.max(Job.created_at)).where(
                    *mine
                )
            ).one()
            tasks = conn.execute(
                select(Job.task, func.count()).where(*mine).group_by(Job.task)
            ).all()
            newest = (
                select(Job.__table__, JobLog.text.label("kept_log"))
                .outerjoin(JobLog, JobLog.job_id == Job.id)
                .where(*mine)
                .order_by(Job.id.desc())
                .limit(examples)
            )
            rows = [(dict(r), r["kept_log"]) for r in conn.execute(newest).mappings()]
        return Kind(
            signature=signature,
            text=rows[0][0]["signature_text"],
            count=int(count),
            unclassified=bool(left),
            first=first,
            last=last,
            tasks=_top({t: int(n) for t, n in tasks}),
            examples=rows,
        )

    def _spread(
        self, conn: Connection, window: list[ColumnElement[bool]], signatures: Iterable[str | None]
    ) -> dict[str | None, list[Any]]:
        wanted = list(signatures)
        if not wanted:
            return {}
        named = [s for s in wanted if s is not None]
        which = or_(
            Job.signature.in_(named), *([Job.signature.is_(None)] if None in wanted else [])
        )
        stmt = (
            select(Job.signature, Job.task, Job.arch, func.count().label("n"))
            .where(*window, which)
            .group_by(Job.signature, Job.task, Job.arch)
        )
        found: dict[str | None, list[Any]] = {}
        for row in conn.execute(stmt):
            found.setdefault(row.signature, []).append(row)
        return found


def _group(row: Any, spread: dict[str | None, list[Any]], example: JobRow | None) -> Group:
    tasks: dict[str, int] = {}
    arches: dict[str, int] = {}
    for part in spread.get(row.signature, []):
        tasks[part.task] = tasks.get(part.task, 0) + part.n
        arches[part.arch or "-"] = arches.get(part.arch or "-", 0) + part.n
    return Group(
        signature=row.signature,
        text=example["signature_text"] if example else None,
        count=row.n,
        first=row.first,
        last=row.last,
        tasks=_top(tasks),
        arches=_top(arches),
        example=example,
    )


def fixed_by_retry(conn: Connection, crashes: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these crashes a later attempt of theirs FINISHED: "fixed by a retry".

    Attempts link forward by uuid (`rescheduled_as`); each round reads the next attempts of
    every chain still open at once, and chains are short (CHAIN_MAX rounds at most).
    """
    wanted = list(crashes)
    if not wanted:
        return set()
    first = select(Job.uuid, Job.state, Job.rescheduled_as).where(Job.uuid.in_(wanted))
    rows = list(conn.execute(first))
    pending: dict[Any, set[uuid.UUID]] = {}
    for row in rows:
        if row.state == State.CRASHED and row.rescheduled_as is not None:
            pending.setdefault(row.rescheduled_as, set()).add(row.uuid)
    fixed: set[uuid.UUID] = set()
    for _ in range(CHAIN_MAX):
        if not pending:
            break
        later = select(Job.uuid, Job.state, Job.rescheduled_as).where(Job.uuid.in_(list(pending)))
        following: dict[Any, set[uuid.UUID]] = {}
        for row in conn.execute(later):
            origins = pending[row.uuid]
            if row.state == State.FINISHED:
                fixed |= origins
            elif row.rescheduled_as is not None:
                following.setdefault(row.rescheduled_as, set()).update(origins)
        pending = following
    return fixed


def _top(counts: dict[str, int]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TASKS_SHOWN]


def _check_crashed(job: JobRow) -> None:
    if job["state"] != State.CRASHED:
        raise TransitionRefused(
            f"job {job['uuid']} is {job['state']}; only a CRASHED job can be classified",
            uuid=str(job["uuid"]),
            state=job["state"],
        )
