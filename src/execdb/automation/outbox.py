"""Writing deliveries in the caller's transaction, and leasing them out to workers.

A worker leases due deliveries in one short transaction (SKIP LOCKED on PostgreSQL, so that
workers never wait on each other's rows; SQLite has one writer at a time anyway), makes them
outside any transaction, then records the result. A delivery whose worker died is leased
again once its lease has run out: delivery is at least once, never at most once.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, insert, or_, select, update
from sqlalchemy.engine import Connection

from execdb.automation.models import Delivery, Kind, Status
from execdb.automation.settings import DeliverySettings
from execdb.db import Database
from execdb.errors import JobNotFound
from execdb.ids import uuid7
from execdb.jobs.models import Job
from execdb.prepared import Prepared
from execdb.vocabulary import DispatchState

DeliveryRow = Mapping[str, Any]

_ERROR_MAX_CHARS = 2000
# With the bus, every report writes a delivery: built once (execdb.prepared says why).
_INSERT = Prepared(
    insert(Delivery),
    [
        "uuid",
        "job_id",
        "kind",
        "sink",
        "recipients",
        "payload",
        "status",
        "attempts",
        "next_attempt_at",
        "created_at",
    ],
)


def add(
    conn: Connection,
    *,
    job_id: int,
    kind: Kind,
    sink: str,
    recipients: Sequence[str],
    payload: dict[str, Any],
    now: datetime,
    delivery_uuid: uuid.UUID | None = None,
) -> None:
    """Add a delivery in the caller's transaction: it exists if and only if the change does."""
    _INSERT.execute(
        conn,
        {
            "uuid": delivery_uuid or uuid7(),
            "job_id": job_id,
            "kind": kind,
            "sink": sink,
            "recipients": list(recipients),
            "payload": payload,
            "status": Status.PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        },
    )


class Outbox:
    def __init__(self, db: Database, settings: DeliverySettings) -> None:
        self.db = db
        self.settings = settings

    def lease(
        self, worker: str, due: datetime, now: datetime, limit: int = 20
    ) -> list[DeliveryRow]:
        """Take up to `limit` deliveries due by `due` for `worker`, for the lease time from `now`.

        A worker's round picks what was due when it began (so that a short backoff cannot
        make one round send a delivery again and again), but each lease runs from the moment
        it is taken: a lease dated from the start of a long round could have run out already.
        """
        ready = (
            select(Delivery.id)
            .where(
                Delivery.status == Status.PENDING,
                Delivery.next_attempt_at <= due,
                or_(Delivery.leased_until.is_(None), Delivery.leased_until <= now),
            )
            .order_by(Delivery.next_attempt_at, Delivery.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        with self.db.write() as conn:
            ids = list(conn.execute(ready).scalars())
            if not ids:
                return []
            rows = conn.execute(
                update(Delivery)
                .where(Delivery.id.in_(ids))
                .values(
                    leased_until=now + self.settings.lease,
                    leased_by=worker,
                    attempts=Delivery.attempts + 1,
                )
                .returning(*Delivery.__table__.c)
            )
            return sorted((dict(r) for r in rows.mappings()), key=lambda r: r["id"])

    def delivered(self, delivery: DeliveryRow, now: datetime) -> None:
        """Record that a delivery was made, whoever holds it now: it is made."""
        with self.db.write() as conn:
            done = conn.execute(
                update(Delivery)
                .where(Delivery.id == delivery["id"], Delivery.status == Status.PENDING)
                .values(
                    status=Status.DELIVERED,
                    delivered_at=now,
                    leased_until=None,
                    last_error=None,
                )
            )
            if done.rowcount and delivery["kind"] == Kind.DISPATCH:
                _dispatch_state(conn, delivery["job_id"], DispatchState.SENT, None)

    def failed(self, delivery: DeliveryRow, error: str, now: datetime) -> bool:
        """Record a failed attempt; True if it will be tried again.

        Only the holder of the current lease records a failure: a worker whose lease ran out
        must not overwrite what a later attempt found.
        """
        error = error[:_ERROR_MAX_CHARS]
        again = bool(delivery["attempts"] < self.settings.max_attempts)
        values: dict[str, Any] = {"leased_until": None, "last_error": error}
        if again:
            values["next_attempt_at"] = now + self.settings.backoff.delay(delivery["attempts"])
        else:
            values["status"] = Status.FAILED
        mine = (
            Delivery.id == delivery["id"],
            Delivery.status == Status.PENDING,
            Delivery.leased_by == delivery["leased_by"],
            Delivery.attempts == delivery["attempts"],
        )
        with self.db.write() as conn:
            recorded = conn.execute(update(Delivery).where(*mine).values(values))
            if recorded.rowcount and delivery["kind"] == Kind.DISPATCH:
                state = DispatchState.PENDING if again else DispatchState.FAILED
                _dispatch_state(conn, delivery["job_id"], state, error)
        return again

    def retry_failed(self, now: datetime, job_uuid: uuid.UUID | None = None) -> int:
        """Give deliveries that were given up on a new round of attempts; how many."""
        deliveries = update(Delivery).where(Delivery.status == Status.FAILED)
        jobs = update(Job).where(Job.dispatch_state == DispatchState.FAILED)
        if job_uuid is not None:
            deliveries = deliveries.where(Delivery.job_id == _job_id(job_uuid).scalar_subquery())
            jobs = jobs.where(Job.uuid == job_uuid)
        with self.db.write() as conn:
            result = conn.execute(
                deliveries.values(status=Status.PENDING, attempts=0, next_attempt_at=now)
            )
            conn.execute(jobs.values(dispatch_state=DispatchState.PENDING))
            return int(result.rowcount)

    def for_job(self, job_uuid: uuid.UUID) -> list[DeliveryRow]:
        with self.db.read() as conn:
            job_id = conn.execute(_job_id(job_uuid)).scalar()
            if job_id is None:
                raise JobNotFound(job_uuid)
            rows = conn.execute(
                select(Delivery.__table__).where(Delivery.job_id == job_id).order_by(Delivery.id)
            )
            return [dict(r) for r in rows.mappings()]


def _job_id(job_uuid: uuid.UUID) -> Select[Any]:
    return select(Job.id).where(Job.uuid == job_uuid)


def _dispatch_state(conn: Connection, job_id: int, state: DispatchState, error: str | None) -> None:
    conn.execute(
        update(Job).where(Job.id == job_id).values(dispatch_state=state, dispatch_error=error)
    )
