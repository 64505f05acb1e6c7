"""The job service: creating jobs, applying reports, reading history, searching.

Every public method is one short transaction and commits on its own; callers on the event loop
run them through `Database.run`. Statements are SQLAlchemy Core on the ORM tables: a report
is one locked read, one UPDATE ... RETURNING and one INSERT, and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from execdb.automation.reactions import Reactions
from execdb.automation.settings import WatchdogSettings
from execdb.causes.catalogue import Catalogue
from execdb.db import Database
from execdb.errors import JobNotFound, TransitionRefused
from execdb.ids import uuid7
from execdb.jobs.bounded import BoundedSelect
from execdb.jobs.limits import Limits, check_size, shortened
from execdb.jobs.models import Job, JobEvent
from execdb.jobs.schemas import JobCreate, JobReport
from execdb.jobs.search import JobSearch, as_is, conditions, unseekable
from execdb.jobs.states import TERMINAL, Blame, Outcome, State, decide
from execdb.jobs.text import shorten
from execdb.paging import Cursor, Page
from execdb.prepared import Prepared

JobRow = Mapping[Any, Any]  # a row of the jobs table, by column name


@dataclass(frozen=True, slots=True)
class Actor:
    """Who sends a report: a token's name, or ExecDB itself."""

    name: str
    by_system: bool = False


SYSTEM = Actor("execdb", by_system=True)


@dataclass(frozen=True, slots=True)
class Reported:
    job: JobRow
    outcome: Outcome
    warnings: list[str] = field(default_factory=list)


def dedup_key(new: JobCreate) -> str | None:
    if new.msg_id is None:
        return None
    identity = [new.msg_id, new.task, new.item, new.item_type, new.arch]
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()


# Statements are built once: constructing one costs more than running it. The few that every
# report and creation runs are Prepared (see execdb.prepared).
_JOB = select(Job.__table__)
_JOB_BY_UUID = Prepared(_JOB.where(Job.uuid == bindparam("uuid")))
_JOB_TO_UPDATE = Prepared(_JOB.where(Job.uuid == bindparam("uuid")).with_for_update())
# Background work takes what no one else holds (PostgreSQL: SKIP LOCKED; SQLite: one writer).
_JOB_TO_CLAIM = Prepared(
    _JOB.where(Job.uuid == bindparam("uuid")).with_for_update(skip_locked=True)
)
_HEARTBEAT = (
    update(Job)
    .where(Job.uuid == bindparam("job_uuid"), Job.state == State.RUNNING)
    .values(heartbeat_at=bindparam("now"))
    .returning(*Job.__table__.c)
)
_JOB_BY_DEDUP_KEY = _JOB.where(Job.dedup_key == bindparam("key"))
_JOB_ID = select(Job.id).where(Job.uuid == bindparam("uuid"))
_INSERT_EVENT = Prepared(insert(JobEvent), [c.key for c in JobEvent.__table__.c if c.key != "id"])
_UPDATES: dict[tuple[str, ...], Prepared] = {}
_JOBS = BoundedSelect.of(Job.__table__, ("trigger_data", "executor", "details"))
_EVENTS = BoundedSelect.of(JobEvent.__table__, ("payload",))


def _update_job(columns: tuple[str, ...]) -> Prepared:
    """UPDATE jobs SET <columns> WHERE id = :_id, one statement per set of columns."""
    prepared = _UPDATES.get(columns)
    if prepared is None:
        statement = update(Job).where(Job.id == bindparam("_id"))
        prepared = _UPDATES[columns] = Prepared(statement, columns)
    return prepared


# A new job's columns before the trigger's fields are added. Writes build the row they store
# and answer with it, rather than reading it back.
_NEW_JOB: dict[str, Any] = {
    "state": State.SCHEDULED,
    "arch": None,
    "msg_id": None,
    "executor": None,
    "blame": None,
    "cause": None,
    "details": None,
    "attempt": 1,
    "rescheduled_from": None,
    "rescheduled_as": None,
    "state_by_system": False,
    "retry_at": None,
    "heartbeat_at": None,
    "dispatch_state": None,
    "dispatch_error": None,
    "started_at": None,
    "finished_at": None,
    "queue_us": None,
    "run_us": None,
}
_INSERT_JOB = Prepared(
    insert(Job).returning(Job.id), [c.key for c in Job.__table__.c if c.key != "id"]
)


class JobService:
    def __init__(
        self,
        db: Database,
        catalogue: Catalogue,
        *,
        limits: Limits | None = None,
        reactions: Reactions | None = None,
    ) -> None:
        self.db = db
        self.catalogue = catalogue
        self.limits = limits or Limits()
        self.reactions = reactions

    def create(self, new: JobCreate, actor: Actor, now: datetime) -> tuple[JobRow, bool]:
        """The new job and True, or the job already made for this message and False."""
        check_size("trigger_data", new.trigger_data, self.limits.trigger_data_max_bytes)
        key = dedup_key(new)
        if key is not None and (existing := self._by_dedup_key(key)) is not None:
            return existing, False
        job: dict[str, Any] = {
            **_NEW_JOB,
            **new.model_dump(),
            "uuid": uuid7(),
            "dedup_key": key,
            "created_at": now,
            "updated_at": now,
        }
        try:
            with self.db.write() as conn:
                inserted = _INSERT_JOB.one_or_none(conn, job)
                assert inserted is not None
                job["id"] = inserted["id"]
                _INSERT_EVENT.execute(
                    conn,
                    {
                        "job_id": job["id"],
                        "at": now,
                        "actor": actor.name,
                        "by_system": actor.by_system,
                        "from_state": None,
                        "to_state": State.SCHEDULED,
                        "outcome": Outcome.ACCEPTED,
                        "payload": new.model_dump(exclude={"trigger_data"}, exclude_none=True),
                        "message": "created",
                    },
                )
            return job, True
        except IntegrityError:
            # Another process created the same job between our look-up and our insert.
            if key is None or (existing := self._by_dedup_key(key)) is None:
                raise
            return existing, False

    def _by_dedup_key(self, key: str) -> JobRow | None:
        with self.db.read() as conn:
            return conn.execute(_JOB_BY_DEDUP_KEY, {"key": key}).mappings().one_or_none()

    def get(self, job_uuid: uuid.UUID) -> JobRow:
        with self.db.read() as conn:
            job = _JOB_BY_UUID.one_or_none(conn, {"uuid": job_uuid})
        if job is None:
            raise JobNotFound(job_uuid)
        return job

    def report(
        self,
        job_uuid: uuid.UUID,
        report: JobReport,
        actor: Actor,
        now: datetime,
        *,
        only_if: Callable[[JobRow], bool] | None = None,
    ) -> Reported | None:
        """Apply one report and record it, whatever its outcome.

        Raises TransitionRefused after the refused report has been committed to the history.
        With `only_if` (ExecDB's own reports), the job is skipped if another transaction holds
        it or the predicate is false of it once locked: the answer is None and nothing is
        recorded.
        """
        check_size("executor", report.executor, self.limits.executor_max_bytes)
        warnings: list[str] = []
        details = report.details
        if details is not None:
            details, omitted = shorten(details, self.limits.details_max_bytes)
            if omitted:
                warnings.append(
                    f"details: {omitted} bytes in the middle were left out to fit the "
                    f"{self.limits.details_max_bytes}-byte limit"
                )
        blame = report.blame
        if report.state == State.CRASHED:
            if report.cause is not None and report.cause not in self.catalogue:
                warnings.append(
                    f"cause: {report.cause!r} is not in the cause catalogue; kept as sent"
                )
            if blame is None:
                blame = self.catalogue.default_blame(report.cause)
        changes = _changes(report, blame, details, now)

        with self.db.write() as conn:
            if only_if is None:
                job = self._lock(conn, job_uuid)
            else:
                locked = _JOB_TO_CLAIM.one_or_none(conn, {"uuid": job_uuid})
                if locked is None or not only_if(locked):
                    return None
                job = locked
            before = job["state"]
            outcome = decide(
                before,
                report.state,
                same_content=all(job[k] == v for k, v in changes.items() if k in _CONTENT),
                current_set_by_system=job["state_by_system"],
                by_system=actor.by_system,
            )
            message = _explain(job, report.state, outcome, warnings)
            retry = None
            if outcome in (Outcome.ACCEPTED, Outcome.REPLACED):
                values = {**changes, "state_by_system": actor.by_system, "updated_at": now}
                values.update(_durations(job, changes))
                if report.state in TERMINAL and self.reactions is not None:
                    retry = self.reactions.retry({**job, **values}, now)
                    values["retry_at"] = retry.retry_at
                _update_job(tuple(values)).execute(conn, {"_id": job["id"], **values})
                job = {**job, **values}
                if retry is not None and report.state == State.CRASHED:
                    assert self.reactions is not None
                    self.reactions.crashed(conn, job, retry, now)
            payload = self._history_payload(report, details, outcome)
            _INSERT_EVENT.execute(
                conn,
                {
                    "job_id": job["id"],
                    "at": now,
                    "actor": actor.name,
                    "by_system": actor.by_system,
                    "from_state": before,
                    "to_state": report.state,
                    "outcome": outcome,
                    "payload": payload,
                    "message": message,
                },
            )
        if outcome is Outcome.REFUSED:
            assert message is not None
            raise TransitionRefused(message, uuid=str(job_uuid), state=before)
        return Reported(job, outcome, warnings)

    def _history_payload(
        self, report: JobReport, details: str | None, outcome: Outcome
    ) -> dict[str, Any]:
        payload = report.model_dump(mode="json", exclude_none=True)
        if details is not None:
            payload["details"] = details
        if outcome in (Outcome.REFUSED, Outcome.REPEATED):
            # Recorded whatever it holds, and it changed nothing: a flood of them must not
            # make the history (and every page of it) grow by megabytes.
            payload = shortened(payload, self.limits.history_payload_max_bytes)
        return payload

    def _lock(self, conn: Connection, job_uuid: uuid.UUID) -> JobRow:
        job = _JOB_TO_UPDATE.one_or_none(conn, {"uuid": job_uuid})
        if job is None:
            raise JobNotFound(job_uuid)
        return job

    def reschedule(
        self,
        job_uuid: uuid.UUID,
        actor: Actor,
        now: datetime,
        *,
        force: bool = False,
        only_if_due: bool = False,
    ) -> tuple[JobRow, bool] | None:
        """The new attempt of a job and True, or the attempt made before and False.

        Allowed from CRASHED and CANCELLED, from FINISHED with `force`. With `only_if_due`
        (the retry scheduler), a job that is not due or is held by another worker is skipped
        (None).
        """
        with self.db.write() as conn:
            job: JobRow
            if only_if_due:
                claimed = _JOB_TO_CLAIM.one_or_none(conn, {"uuid": job_uuid})
                if claimed is None or not _retry_due(claimed, now):
                    return None
                job = claimed
            else:
                job = self._lock(conn, job_uuid)
            if job["rescheduled_as"] is not None:
                again = _JOB_BY_UUID.one_or_none(conn, {"uuid": job["rescheduled_as"]})
                assert again is not None
                return again, False
            allowed = {State.CRASHED, State.CANCELLED} | ({State.FINISHED} if force else set())
            if job["state"] not in allowed:
                hint = (
                    " (add force to run a FINISHED job again)"
                    if job["state"] == State.FINISHED
                    else ""
                )
                raise TransitionRefused(
                    f"job {job_uuid} is {job['state']}; only a CRASHED or CANCELLED job can be "
                    f"rescheduled{hint}",
                    uuid=str(job_uuid),
                    state=job["state"],
                )
            new: dict[str, Any] = {
                **_NEW_JOB,
                **{k: job[k] for k in ("task", "item", "item_type", "arch", "msg_id")},
                "trigger_data": job["trigger_data"],
                "uuid": uuid7(),
                # The first attempt keeps the bus message's identity; this one must not clash.
                "dedup_key": None,
                "attempt": job["attempt"] + 1,
                "rescheduled_from": job["uuid"],
                "created_at": now,
                "updated_at": now,
            }
            inserted = _INSERT_JOB.one_or_none(conn, new)
            assert inserted is not None
            new["id"] = inserted["id"]
            if self.reactions is not None and (
                dispatch := self.reactions.rescheduled(conn, new, now)
            ):
                new["dispatch_state"] = dispatch
                conn.execute(update(Job).where(Job.id == new["id"]).values(dispatch_state=dispatch))
            values = {"rescheduled_as": new["uuid"], "retry_at": None, "updated_at": now}
            _update_job(tuple(values)).execute(conn, {"_id": job["id"], **values})
            why = "retry by policy" if only_if_due else "rescheduled"
            for event in (
                {
                    "job_id": job["id"],
                    "from_state": job["state"],
                    "to_state": job["state"],
                    "payload": {"rescheduled_as": str(new["uuid"]), "force": force},
                    "message": f"{why} as {new['uuid']} (attempt {new['attempt']})",
                },
                {
                    "job_id": new["id"],
                    "from_state": None,
                    "to_state": State.SCHEDULED,
                    "payload": {"rescheduled_from": str(job["uuid"])},
                    "message": f"created: {why} of {job['uuid']}",
                },
            ):
                _INSERT_EVENT.execute(
                    conn,
                    {
                        **event,
                        "at": now,
                        "actor": actor.name,
                        "by_system": actor.by_system,
                        "outcome": Outcome.ACCEPTED,
                    },
                )
        return new, True

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
            beat = conn.execute(_HEARTBEAT, {"job_uuid": job_uuid, "now": now}).mappings().first()
            if beat is not None:
                return beat
            job = _JOB_BY_UUID.one_or_none(conn, {"uuid": job_uuid})
        if job is None:
            raise JobNotFound(job_uuid)
        raise TransitionRefused(
            f"job {job_uuid} is {job['state']}; only a RUNNING job sends heartbeats",
            uuid=str(job_uuid),
            state=job["state"],
        )

    def stale(self, now: datetime, watchdog: WatchdogSettings, limit: int = 500) -> list[JobRow]:
        """SCHEDULED and RUNNING jobs that may have outlived their limits (the shortest ones:
        the caller checks each job's own limits)."""
        running, scheduled = watchdog.shortest
        stmt = (
            select(Job.uuid, Job.task, Job.state, Job.created_at, Job.started_at, Job.heartbeat_at)
            .where(
                or_(
                    and_(Job.state == State.SCHEDULED, Job.created_at < now - scheduled),
                    and_(
                        Job.state == State.RUNNING,
                        or_(
                            Job.started_at < now - running,
                            Job.heartbeat_at < now - watchdog.heartbeat,
                        ),
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
            job_id = conn.execute(_JOB_ID, {"uuid": job_uuid}).scalar()
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
                    row = _JOB_BY_UUID.one_or_none(conn, {"uuid": current[link]})
                    if row is None:
                        break
                    seen.add(row["uuid"])
                    found.append(row)
                    current = row
        return [*reversed(before), job, *after]

    def search(self, search: JobSearch) -> Page[JobRow]:
        cursor = Cursor.decode(search.cursor) if search.cursor else None
        column = as_is
        if self.db.is_sqlite and search.state and search.since:
            # SQLite's planner, without statistics, would take the window's two columns of
            # ix_jobs_stats (state, created_at) over (state, id) and sort every job of the
            # window; by (state, id) the newest page is the first rows it reads.
            column = _plus_created_at
        with self.db.read() as conn:
            return _JOBS.page(
                conn,
                conditions(search, column),
                cursor,
                search.limit,
                max_bytes=self.limits.page_max_bytes,
                descending=True,
            )


_MICROSECOND = timedelta(microseconds=1)


def _plus_created_at(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """`+created_at`, which SQLite can seek on no index; other columns as they are."""
    if column.key != "created_at":
        return column
    return unseekable(column)


# The fields a report sets; a repeated report is harmless when it would set them all the same.
_CONTENT = frozenset({"state", "executor", "blame", "cause", "details"})


def _changes(
    report: JobReport, blame: Blame | None, details: str | None, now: datetime
) -> dict[str, Any]:
    changes: dict[str, Any] = {"state": report.state}
    if report.state == State.RUNNING:
        changes["started_at"] = now
        if report.executor is not None:
            changes["executor"] = report.executor
    elif report.state in TERMINAL:
        # A terminal report says everything about how the job ended, so it also clears what an
        # earlier verdict (which it may replace) had said.
        changes.update(blame=blame, cause=report.cause, details=details, finished_at=now)
    return changes


def _durations(job: JobRow, changes: dict[str, Any]) -> dict[str, int]:
    """queue_us and run_us for the times a report sets."""
    durations = {}
    if "started_at" in changes:
        durations["queue_us"] = (changes["started_at"] - job["created_at"]) // _MICROSECOND
    if "finished_at" in changes and job["started_at"] is not None:
        durations["run_us"] = (changes["finished_at"] - job["started_at"]) // _MICROSECOND
    return durations


def _retry_due(job: JobRow, now: datetime) -> bool:
    retry_at: datetime | None = job["retry_at"]
    return retry_at is not None and retry_at <= now and job["state"] == State.CRASHED


def _explain(job: JobRow, requested: State, outcome: Outcome, warnings: list[str]) -> str | None:
    current = job["state"]
    if outcome is Outcome.REFUSED:
        if requested == current:
            return (
                f"job {job['uuid']} is already {current} with different content; "
                "a report cannot change what a previous one said"
            )
        return f"job {job['uuid']} is {current}; it cannot become {requested}"
    if outcome is Outcome.REPLACED:
        return f"replaced the {current} state that ExecDB itself had set"
    return "; ".join(warnings) or None
