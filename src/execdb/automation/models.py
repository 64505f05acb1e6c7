"""The outbox: what ExecDB must send (dispatches, notifications, bus messages) until it has
been sent.

A delivery is written in the same transaction as the state change that calls for it, so
nothing that must be sent can be lost, and it is sent at least once by whichever worker
leases it first. Its `uuid` is stable across attempts so that receivers can drop duplicates.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import ForeignKey, Index, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from execdb.db import Base, string_enum
from execdb.jobs.models import BigId


class Kind(StrEnum):
    DISPATCH = "dispatch"  # start a rescheduled job
    NOTIFICATION = "notification"  # tell people about a crash
    MESSAGE = "message"  # a job's change on the Fedora message bus (automation.bus)


class Status(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # gave up after the last attempt; kept to be seen and retried by hand


# A notification's sink: an e-mail to its recipients, or a POST to a [notify.webhooks] entry.
# A dispatch's sink is the dispatcher's kind (dispatch.kind: "webhook" or "buildbot"); a
# message's is its topic without the deployment's prefix ("execdb.job.created.v1").
EMAIL_SINK = "email"
_WEBHOOK = "webhook:"


def webhook_sink(name: str) -> str:
    return f"{_WEBHOOK}{name}"


def webhook_name(sink: str) -> str | None:
    """The webhook a notification's sink names, or None if it names none."""
    return sink.removeprefix(_WEBHOOK) if sink.startswith(_WEBHOOK) else None


class Delivery(Base):
    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    uuid: Mapped[UUID] = mapped_column(Uuid, unique=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    kind: Mapped[Kind] = mapped_column(string_enum(Kind, "delivery_kind"))
    # Where it goes: "buildbot", "webhook", "webhook:NAME", "email" or a message's topic.
    sink: Mapped[str] = mapped_column(String(100))
    recipients: Mapped[list[str]]
    payload: Mapped[dict[str, Any]]
    status: Mapped[Status] = mapped_column(string_enum(Status, "delivery_status"))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    # A worker making the delivery owns it until then; a worker that dies loses its lease.
    leased_until: Mapped[datetime | None]
    leased_by: Mapped[str | None] = mapped_column(String(100))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_deliveries_job_id", "job_id"),
    )
