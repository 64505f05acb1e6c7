"""The statements of the job domain, built once: constructing a statement costs more than
running it. The few that every report and creation runs are Prepared (execdb.prepared), and
writes build the row they store and answer with it rather than reading it back.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import KeyedColumnElement

from execdb.errors import JobNotFound
from execdb.ids import uuid7
from execdb.jobs.models import Job, JobEvent, JobLog
from execdb.jobs.states import HEARTBEAT_STATES, Event, JobRow
from execdb.prepared import Prepared
from execdb.vocabulary import State

JOB = select(Job.__table__)
JOB_BY_UUID = Prepared(JOB.where(Job.uuid == bindparam("uuid")))
_JOB_TO_UPDATE = Prepared(JOB.where(Job.uuid == bindparam("uuid")).with_for_update())
# Background work takes what no one else holds (PostgreSQL: SKIP LOCKED; SQLite: one writer).
_JOB_TO_CLAIM = Prepared(JOB.where(Job.uuid == bindparam("uuid")).with_for_update(skip_locked=True))
JOB_BY_DEDUP_KEY = JOB.where(Job.dedup_key == bindparam("key"))
JOB_ID = select(Job.id).where(Job.uuid == bindparam("uuid"))
HEARTBEAT = (
    update(Job)
    .where(Job.uuid == bindparam("job_uuid"), Job.state.in_(HEARTBEAT_STATES))
    .values(heartbeat_at=bindparam("now"))
    .returning(*Job.__table__.c)
)
_INSERT_EVENT = Prepared(insert(JobEvent), [c.key for c in JobEvent.__table__.c if c.key != "id"])
_INSERT_JOB = Prepared(
    insert(Job).returning(Job.id), [c.key for c in Job.__table__.c if c.key != "id"]
)
_UPDATES: dict[tuple[str, ...], Prepared] = {}
_INSERT_LOG = insert(JobLog)
LOG_BY_UUID = (
    select(JobLog.text, JobLog.original_bytes, JobLog.state, JobLog.created_at)
    .join(Job, Job.id == JobLog.job_id)
    .where(Job.uuid == bindparam("uuid"))
)


def _default(column: KeyedColumnElement[Any]) -> Any:
    default = getattr(column, "default", None)  # a Column's; None for a column without one
    return default.arg if default is not None and default.is_scalar else None


# Every column of a new job but its id, at the tables' defaults (None where they have none).
_NEW_JOB: dict[str, Any] = {c.key: _default(c) for c in Job.__table__.c if c.key != "id"}


def new_job(now: datetime, **columns: Any) -> dict[str, Any]:
    """A new SCHEDULED job's row: the tables' defaults, a fresh uuid and `columns`."""
    unknown = set(columns) - set(_NEW_JOB)
    if unknown:
        raise ValueError(f"not columns of jobs: {', '.join(sorted(unknown))}")
    return {
        **_NEW_JOB,
        "state": State.SCHEDULED,
        "uuid": uuid7(),
        "created_at": now,
        "updated_at": now,
        **columns,
    }


def insert_job(conn: Connection, job: dict[str, Any]) -> dict[str, Any]:
    """Insert the row `new_job` made; the row with its id."""
    inserted = _INSERT_JOB.one_or_none(conn, job)
    assert inserted is not None
    return {**job, "id": inserted["id"]}


def update_job(conn: Connection, job_id: int, values: dict[str, Any]) -> None:
    """UPDATE jobs SET <values> WHERE id = job_id; one prepared statement per set of columns."""
    columns = tuple(values)
    prepared = _UPDATES.get(columns)
    if prepared is None:
        statement = update(Job).where(Job.id == bindparam("_id"))
        prepared = _UPDATES[columns] = Prepared(statement, columns)
    prepared.execute(conn, {"_id": job_id, **values})


def record(conn: Connection, job_id: int, event: Event) -> None:
    """Add one event to the job's history."""
    _INSERT_EVENT.execute(conn, event.row(job_id))


def keep_log(
    conn: Connection, job_id: int, text: str, original_bytes: int, state: State, now: datetime
) -> None:
    """Keep the tail of the job's log (one per job: only a report that ends it carries one)."""
    conn.execute(
        _INSERT_LOG,
        {
            "job_id": job_id,
            "text": text,
            "original_bytes": original_bytes,
            "state": state,
            "created_at": now,
        },
    )


def lock(conn: Connection, job_uuid: uuid.UUID) -> JobRow:
    """The job, locked for this transaction; JobNotFound if there is none."""
    job = _JOB_TO_UPDATE.one_or_none(conn, {"uuid": job_uuid})
    if job is None:
        raise JobNotFound(job_uuid)
    return job


def claim(conn: Connection, job_uuid: uuid.UUID) -> JobRow | None:
    """The job, locked for this transaction, unless another transaction holds it (or there is
    no such job): background work skips what someone else is changing."""
    return _JOB_TO_CLAIM.one_or_none(conn, {"uuid": job_uuid})
