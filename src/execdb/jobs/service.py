"""The job service: creating jobs, applying reports, rescheduling, reading history, searching.

Every public method is one short transaction and commits on its own; callers on the event loop
run them through `Database.run`. What a report does is decided by the rulebook
(execdb.jobs.states); this module locks, calls it and writes: a report is one locked read, one
UPDATE and one INSERT (docs/architecture.md follows one report through).

The API's methods (`report`, `reschedule`, `heartbeat`) raise when the job cannot take what is
asked; the background work has claim methods of its own (`claim_report`, `claim_retry`) that
skip a job another transaction holds or that no longer needs the work, and say so with None.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from execdb.causes.catalogue import Catalogue
from execdb.db import Database
from execdb.errors import JobNotFound, NotFound, TransitionRefused
from execdb.jobs import fulltext, states, store
from execdb.jobs.bounded import BoundedSelect
from execdb.jobs.classification import classified
from execdb.jobs.interfaces import Classifier, Reactions
from execdb.jobs.limits import Limits, check_size, shortened
from execdb.jobs.models import Job, JobEvent
from execdb.jobs.schemas import JobCreate, JobReport
from execdb.jobs.search import JobSearch, conditions, search_column, unseekable
from execdb.jobs.states import Claim, Decision, JobRow
from execdb.jobs.text import log_tail, shorten
from execdb.paging import Cursor, Page
from execdb.vocabulary import Actor, Outcome, State


@dataclass(frozen=True, slots=True)
class Reported:
    job: JobRow
    outcome: Outcome
    warnings: list[str]


def dedup_key(new: JobCreate) -> str | None:
    if new.msg_id is None:
        return None
    identity = [new.msg_id, new.task, new.item, new.item_type, new.arch]
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()


# Pages of jobs and of history stop at about page_max_bytes of their large values.
_JOBS = BoundedSelect.of(Job.__table__, ("trigger_data", "executor", "details"))
_EVENTS = BoundedSelect.of(JobEvent.__table__, ("payload",))


class JobService:
    def __init__(
        self,
        db: Database,
        catalogue: Catalogue,
        *,
        limits: Limits | None = None,
        reactions: Reactions | None = None,
        classifier: Classifier | None = None,
    ) -> None:
        self.db = db
        self.catalogue = catalogue
        self.limits = limits or Limits()
        self.reactions = reactions
        self.classifier = classifier

    def create(self, new: JobCreate, actor: Actor, now: datetime) -> tuple[JobRow, bool]:
        """The new job and True, or the job already made for this message and False."""
        check_size("trigger_data", new.trigger_data, self.limits.trigger_data_max_bytes)
        key = dedup_key(new)
        if key is not None and (existing := self._by_dedup_key(key)) is not None:
            return existing, False
        try:
            with self.db.write() as conn:
                job = store.insert_job(conn, store.new_job(now, **new.model_dump(), dedup_key=key))
                payload = new.model_dump(exclude={"trigger_data"}, exclude_none=True)
                store.record(conn, job["id"], _created(actor, now, payload, "created"))
                if self.reactions is not None:
                    self.reactions.created(conn, job, actor, now)
            return job, True
        except IntegrityError:
            # Another process created the same job between our look-up and our insert.
            if key is None or (existing := self._by_dedup_key(key)) is None:
                raise
            return existing, False

    def _by_dedup_key(self, key: str) -> JobRow | None:
        with self.db.read() as conn:
            return conn.execute(store.JOB_BY_DEDUP_KEY, {"key": key}).mappings().one_or_none()

    def get(self, job_uuid: uuid.UUID) -> JobRow:
        with self.db.read() as conn:
            job = store.JOB_BY_UUID.one_or_none(conn, {"uuid": job_uuid})
        if job is None:
            raise JobNotFound(job_uuid)
        return job

    def log(self, job_uuid: uuid.UUID) -> JobRow:
        """The log kept of a job (text, original_bytes, state, created_at); NotFound naming
        the job when it has none."""
        log = self.kept_log(job_uuid)
        if log is None:
            with self.db.read() as conn:
                if conn.execute(store.JOB_ID, {"uuid": job_uuid}).scalar() is None:
                    raise JobNotFound(job_uuid)
            raise NotFound(f"job {job_uuid} has no log kept")
        return log

    def kept_log(self, job_uuid: uuid.UUID) -> JobRow | None:
        with self.db.read() as conn:
            return conn.execute(store.LOG_BY_UUID, {"uuid": job_uuid}).mappings().one_or_none()

    def report(
        self, job_uuid: uuid.UUID, report: JobReport, actor: Actor, now: datetime
    ) -> Reported:
        """Apply one report and record it, whatever its outcome.

        Raises TransitionRefused after the refused report has been committed to the history.
        """
        claim = self.refine(report, job_uuid)
        with self.db.write() as conn:
            job, done = self._apply(conn, store.lock(conn, job_uuid), report, claim, actor, now)
        if done.outcome is Outcome.REFUSED:
            assert done.message is not None
            raise TransitionRefused(done.message, uuid=str(job_uuid), state=job["state"])
        return Reported(job, done.outcome, list(done.warnings))

    def claim_report(
        self,
        job_uuid: uuid.UUID,
        report: JobReport,
        actor: Actor,
        now: datetime,
        *,
        still: Callable[[JobRow], bool],
    ) -> JobRow | None:
        """ExecDB's own report (the watchdog's): applied unless another transaction holds the
        job or, once it is locked, `still` is false of it. The job as changed, else None."""
        claim = self.refine(report)
        with self.db.write() as conn:
            job = store.claim(conn, job_uuid)
            if job is None or not still(job):
                return None
            job, _ = self._apply(conn, job, report, claim, actor, now)
            return job

    def refine(self, report: JobReport, job_uuid: uuid.UUID | None = None) -> Claim:
        """What ExecDB takes the report to say about how the job ended: its own claim with long
        details shortened, the log's tail if it is kept and, for a crash, the classification
        (execdb.jobs.classification) and a missing blame taken from the catalogue. An executor
        over its limit is refused (PayloadTooLarge) before anything is written."""
        check_size("executor", report.executor, self.limits.executor_max_bytes)
        claim = Claim.of(report)
        if claim.details is not None:
            max_bytes = self.limits.details_max_bytes
            details, omitted = shorten(claim.details, max_bytes)
            if omitted:
                claim = claim.noting(
                    f"details: {omitted} bytes in the middle were left out to fit the "
                    f"{max_bytes}-byte limit",
                    details=details,
                )
        if report.log is not None:
            claim = replace(claim, log_bytes=len(report.log.encode()))
            if self._keeps_log(report.state, job_uuid):
                claim = self._with_log(claim, report.log)
        if report.state == State.CRASHED:
            if claim.cause is not None and claim.cause not in self.catalogue:
                claim = claim.noting(
                    f"cause: {claim.cause!r} is not in the cause catalogue; kept as sent"
                )
            claim = classified(claim, self.catalogue, self.classifier)
            if claim.blame is None:
                claim = replace(claim, blame=self.catalogue.default_blame(claim.cause))
        return claim

    def _keeps_log(self, state: State, job_uuid: uuid.UUID | None) -> bool:
        if state == State.CRASHED:
            return True
        # Passing runs' logs are a sample, so that a rule can be checked against runs that
        # did not crash; chosen by the uuid (random bits in a uuid7), so a retry keeps the
        # same choice.
        sample = self.limits.finished_log_sample
        return job_uuid is not None and sample > 0 and job_uuid.int % sample == 0

    def _with_log(self, claim: Claim, log: str) -> Claim:
        max_bytes = self.limits.log_max_bytes
        kept, omitted = log_tail(log, max_bytes)
        claim = replace(claim, log=kept)
        if omitted:
            claim = claim.noting(
                f"log: the first {omitted} bytes were left out to keep the last "
                f"{max_bytes} bytes at most"
            )
        return claim

    def _apply(
        self,
        conn: Connection,
        job: JobRow,
        report: JobReport,
        claim: Claim,
        actor: Actor,
        now: datetime,
    ) -> tuple[JobRow, Decision]:
        done = states.apply(job, report, claim, actor, now)
        if done.taken:
            values = dict(done.values)
            if done.ends_job and self.reactions is not None:
                values["retry_at"] = self.reactions.ended(conn, {**job, **values}, now)
            store.update_job(conn, job["id"], values)
            before, job = job, {**job, **values}
            if self.reactions is not None:
                self.reactions.changed(conn, before, job, actor, now)
            if claim.log is not None:
                store.keep_log(conn, job["id"], claim.log, claim.log_bytes, report.state, now)
        event = done.event
        if done.outcome in (Outcome.REFUSED, Outcome.REPEATED):
            # Recorded whatever it holds, and it changed nothing: a flood of them must not
            # make the history (and every page of it) grow by megabytes.
            payload = shortened(event.payload, self.limits.history_payload_max_bytes)
            event = replace(event, payload=payload)
        store.record(conn, job["id"], event)
        return job, done

    def reschedule(
        self, job_uuid: uuid.UUID, actor: Actor, now: datetime, *, force: bool = False
    ) -> tuple[JobRow, bool]:
        """The new attempt of a job and True, or the attempt made before and False.

        Allowed from CRASHED and CANCELLED, from FINISHED with `force`; else TransitionRefused.
        """
        with self.db.write() as conn:
            job = store.lock(conn, job_uuid)
            if (made := self._attempt_made(conn, job)) is not None:
                return made, False
            if (refusal := states.reschedule_refusal(job, force=force)) is not None:
                raise TransitionRefused(refusal, uuid=str(job_uuid), state=job["state"])
            return self._next_attempt(conn, job, actor, now, "rescheduled", force=force), True

    def claim_retry(self, job_uuid: uuid.UUID, now: datetime, actor: Actor) -> JobRow | None:
        """The retry by policy of a crashed job whose retry is due: its new attempt, or None
        if another worker holds the job or its retry is no longer due."""
        with self.db.write() as conn:
            job = store.claim(conn, job_uuid)
            if job is None or not states.retry_due(job, now):
                return None
            if self._attempt_made(conn, job) is not None:
                return None
            return self._next_attempt(conn, job, actor, now, "retry by policy", force=False)

    def _attempt_made(self, conn: Connection, job: JobRow) -> JobRow | None:
        if job["rescheduled_as"] is None:
            return None
        again = store.JOB_BY_UUID.one_or_none(conn, {"uuid": job["rescheduled_as"]})
        assert again is not None
        return again

    def _next_attempt(
        self, conn: Connection, job: JobRow, actor: Actor, now: datetime, why: str, *, force: bool
    ) -> JobRow:
        new = store.insert_job(conn, store.new_job(now, **states.new_attempt(job)))
        if self.reactions is not None:
            self.reactions.created(conn, new, actor, now)
            if dispatch := self.reactions.rescheduled(conn, new, now):
                new["dispatch_state"] = dispatch
                store.update_job(conn, new["id"], {"dispatch_state": dispatch})
        store.update_job(
            conn, job["id"], {"rescheduled_as": new["uuid"], "retry_at": None, "updated_at": now}
        )
        payload = {"rescheduled_as": str(new["uuid"]), "force": force}
        message = f"{why} as {new['uuid']} (attempt {new['attempt']})"
        store.record(
            conn,
            job["id"],
            states.Event(
                now,
                actor.name,
                actor.by_system,
                job["state"],
                job["state"],
                Outcome.ACCEPTED,
                payload,
                message,
            ),
        )
        created = f"created: {why} of {job['uuid']}"
        store.record(
            conn, new["id"], _created(actor, now, {"rescheduled_from": str(job["uuid"])}, created)
        )
        return new

    def due_retries(self, now: datetime, limit: int = 100) -> list[uuid.UUID]:
        """Crashed jobs whose retry is due, oldest due first."""
        stmt = (
            select(Job.uuid)
            .where(Job.retry_at <= now, Job.rescheduled_as.is_(None))
            .order_by(Job.retry_at)
            .limit(limit)
        )
        with self.db.read() as conn:
            return list(conn.execute(stmt).scalars())

    def heartbeat(self, job_uuid: uuid.UUID, now: datetime) -> JobRow:
        """Note that a RUNNING job's executor is alive; 409 for a job in another state."""
        with self.db.write() as conn:
            beat = conn.execute(store.HEARTBEAT, {"job_uuid": job_uuid, "now": now})
            if (alive := beat.mappings().first()) is not None:
                return alive
            job = store.JOB_BY_UUID.one_or_none(conn, {"uuid": job_uuid})
        if job is None:
            raise JobNotFound(job_uuid)
        raise TransitionRefused(
            states.heartbeat_refusal(job), uuid=str(job_uuid), state=job["state"]
        )

    def stale(
        self,
        now: datetime,
        *,
        running: timedelta,
        scheduled: timedelta,
        heartbeat: timedelta,
        limit: int = 500,
    ) -> list[JobRow]:
        """SCHEDULED and RUNNING jobs that may have outlived the given (shortest) limits; the
        caller checks each job's own limits."""
        stmt = (
            select(Job.uuid, Job.task, Job.state, Job.created_at, Job.started_at, Job.heartbeat_at)
            .where(
                or_(
                    and_(Job.state == State.SCHEDULED, Job.created_at < now - scheduled),
                    and_(
                        Job.state == State.RUNNING,
                        or_(Job.started_at < now - running, Job.heartbeat_at < now - heartbeat),
                    ),
                )
            )
            .limit(limit)
        )
        with self.db.read() as conn:
            return list(conn.execute(stmt).mappings())

    def events(
        self,
        job_uuid: uuid.UUID,
        cursor: Cursor | None,
        limit: int,
        *,
        max_bytes: int | None = None,
    ) -> Page[JobRow]:
        """A page of the job's history, oldest first (from `paging.NEWEST`: the newest ones),
        of at most `limit` events and about `max_bytes` (page_max_bytes) of payloads."""
        with self.db.read() as conn:
            job_id = conn.execute(store.JOB_ID, {"uuid": job_uuid}).scalar()
            if job_id is None:
                raise JobNotFound(job_uuid)
            return _EVENTS.page(
                conn,
                [JobEvent.job_id == job_id],
                cursor,
                limit,
                max_bytes=max_bytes or self.limits.page_max_bytes,
                descending=False,
            )

    def attempts(self, job: JobRow, limit: int = 50) -> list[JobRow]:
        """Every attempt of the job's chain, first to last, the job itself included.

        Attempts link to their neighbours by uuid (`rescheduled_from`, `rescheduled_as`); a
        chain is short, so following the links one row at a time costs little. `limit` keeps
        a chain that loops (which no API call makes) from running forever.
        """
        before: list[JobRow] = []
        after: list[JobRow] = []
        seen = {job["uuid"]}
        with self.db.read() as conn:
            for link, found in (("rescheduled_from", before), ("rescheduled_as", after)):
                current = job
                while current[link] is not None and current[link] not in seen:
                    if len(seen) >= limit:
                        break
                    row = store.JOB_BY_UUID.one_or_none(conn, {"uuid": current[link]})
                    if row is None:
                        break
                    seen.add(row["uuid"])
                    found.append(row)
                    current = row
        return [*reversed(before), job, *after]

    def search(self, search: JobSearch) -> Page[JobRow]:
        """A page of jobs, newest first; with `q`, each row's "match" is the line that held
        a word of it (execdb.jobs.fulltext)."""
        cursor = Cursor.decode(search.cursor) if search.cursor else None
        column = search_column(search, sqlite=self.db.is_sqlite)
        words = fulltext.terms(search.q) if search.q else None
        with self.db.read() as conn:
            if words and not self.db.is_sqlite:
                where = conditions(search, column)
                found = fulltext.postgres_page(
                    conn,
                    _JOBS,
                    where,
                    words,
                    cursor,
                    search.limit,
                    max_bytes=self.limits.page_max_bytes,
                )
            else:
                key = None
                if words:
                    joined, key = fulltext.sqlite_join(words)
                    where = [*conditions(search, unseekable), *joined]
                else:
                    where = conditions(search, column)
                found = _JOBS.page(
                    conn,
                    where,
                    cursor,
                    search.limit,
                    max_bytes=self.limits.page_max_bytes,
                    descending=True,
                    key=key,
                )
            if words:
                lines = fulltext.matching_lines(conn, found.rows, words)
                rows: list[JobRow] = [{**row, "match": lines.get(row["id"])} for row in found.rows]
                found = Page(rows, found.prev, found.next)
        return found


def _created(actor: Actor, now: datetime, payload: dict[str, object], message: str) -> states.Event:
    return states.Event(
        now, actor.name, actor.by_system, None, State.SCHEDULED, Outcome.ACCEPTED, payload, message
    )
