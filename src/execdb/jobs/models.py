"""Tables of the job domain: jobs and their history of reports."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from execdb.db import Base, JSONType, string_enum
from execdb.vocabulary import Blame, Outcome, State

# SQLite only makes INTEGER PRIMARY KEY an alias of the rowid (and so auto-incrementing).
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    uuid: Mapped[UUID] = mapped_column(Uuid, unique=True)
    state: Mapped[State] = mapped_column(string_enum(State, "job_state"))
    task: Mapped[str] = mapped_column(String(255))
    item: Mapped[str] = mapped_column(String(1024))
    item_type: Mapped[str] = mapped_column(String(64))
    arch: Mapped[str | None] = mapped_column(String(32))
    msg_id: Mapped[str | None] = mapped_column(String(255))
    # Digest of (msg_id, task, item, item_type, arch): one job per bus message and target,
    # however often the message is delivered. NULL (never unique) when there is no msg_id.
    dedup_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    trigger_data: Mapped[dict[str, Any]]
    executor: Mapped[dict[str, Any] | None]
    blame: Mapped[Blame | None] = mapped_column(string_enum(Blame, "job_blame"))
    cause: Mapped[str | None] = mapped_column(String(100))
    details: Mapped[str | None] = mapped_column(Text)
    attempt: Mapped[int] = mapped_column(default=1)
    rescheduled_from: Mapped[UUID | None] = mapped_column(Uuid)
    rescheduled_as: Mapped[UUID | None] = mapped_column(Uuid)
    # Whether ExecDB itself (not an executor) set the current state: such a terminal state
    # may be replaced by the executor's own late report (see jobs.states).
    state_by_system: Mapped[bool] = mapped_column(default=False)
    # When ExecDB will run a crashed job again by its retry policy (null: it will not).
    retry_at: Mapped[datetime | None]
    # The executor's last sign of life; the watchdog crashes a job whose heartbeats stop.
    heartbeat_at: Mapped[datetime | None]
    # How the dispatch of a rescheduled job went: pending, sent, failed (null: not dispatched).
    dispatch_state: Mapped[str | None] = mapped_column(String(16))
    dispatch_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    # created_at to started_at and started_at to finished_at, in microseconds, set with the
    # times they come from: statistics then read numbers instead of doing date arithmetic on
    # every row (SQLite can only do it by parsing text, much slower than reading a number,
    # and exactly only to the millisecond).
    queue_us: Mapped[int | None] = mapped_column(BigInteger)
    run_us: Mapped[int | None] = mapped_column(BigInteger)
    # How a crash was classified (docs/classification.md): who decided the blame and cause
    # above (reporter, rules; null: nobody), what the report itself said, and what the rules
    # concluded from the log: the rule, its version and lines, and its own blame and cause
    # where they disagree with a cause the reporter named (which wins).
    classified_by: Mapped[str | None] = mapped_column(String(16))
    reported_blame: Mapped[Blame | None] = mapped_column(string_enum(Blame, "job_reported_blame"))
    reported_cause: Mapped[str | None] = mapped_column(String(100))
    rule_id: Mapped[str | None] = mapped_column(String(100))
    rules_version: Mapped[str | None] = mapped_column(String(32))
    evidence: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    rules_blame: Mapped[Blame | None] = mapped_column(string_enum(Blame, "job_rules_blame"))
    rules_cause: Mapped[str | None] = mapped_column(String(100))
    # What went wrong, as a key error line with its variable parts masked
    # (docs/classification.md, "Signatures"): `signature` is a short hash of the masked text
    # for grouping and searching, `signature_text` the masked line to show, and
    # `signature_line` where the line is in the kept log (null: from the details, or none).
    signature: Mapped[str | None] = mapped_column(String(16))
    signature_text: Mapped[str | None] = mapped_column(String(300))
    signature_line: Mapped[int | None]

    # Searches page newest first by id, so each common filter gets (column, id).
    # Statistics read a window of created_at for some states (all of them unless filtered):
    # ix_jobs_stats holds every column they count, group, filter by or take percentiles of,
    # so that they never visit the (wide) rows, and leads with state so that a window of a
    # few states is as cheap as one of all. Retried jobs are few, and read with their
    # rescheduled_as: a partial index of their own.
    __table_args__ = (
        Index("ix_jobs_state_id", "state", "id"),
        Index("ix_jobs_task_id", "task", "id"),
        Index("ix_jobs_item_id", "item", "id"),
        Index("ix_jobs_cause_id", "cause", "id"),
        Index("ix_jobs_msg_id", "msg_id"),
        Index("ix_jobs_created_at", "created_at"),
        Index("ix_jobs_retry_at", "retry_at"),
        Index("ix_jobs_rule_id_created_at", "rule_id", "created_at"),
        Index("ix_jobs_signature_created_at", "signature", "created_at"),
        # The triage page groups a window of crashes by signature: every column it reads, of
        # crashed jobs only.
        Index(
            "ix_jobs_crashes",
            "created_at",
            "signature",
            "blame",
            "cause",
            "classified_by",
            "task",
            "arch",
            sqlite_where=text("state = 'CRASHED'"),
            postgresql_where=text("state = 'CRASHED'"),
        ),
        # When each cause was first and last seen (the dashboard): a seek each.
        Index(
            "ix_jobs_crashes_cause_created_at",
            "cause",
            "created_at",
            sqlite_where=text("state = 'CRASHED'"),
            postgresql_where=text("state = 'CRASHED'"),
        ),
        Index(
            "ix_jobs_stats",
            "state",
            "created_at",
            "blame",
            "cause",
            "task",
            "arch",
            "item_type",
            "queue_us",
            "run_us",
            "classified_by",
            "rules_cause",
        ),
        Index(
            "ix_jobs_retried_created_at",
            "created_at",
            sqlite_where=text("rescheduled_as IS NOT NULL"),
            postgresql_where=text("rescheduled_as IS NOT NULL"),
        ),
    )


class JobEvent(Base):
    """One report about a job, whatever became of it: the job's history."""

    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(100))
    by_system: Mapped[bool] = mapped_column(default=False)
    from_state: Mapped[State | None] = mapped_column(string_enum(State, "event_from_state"))
    to_state: Mapped[State] = mapped_column(string_enum(State, "event_to_state"))
    outcome: Mapped[Outcome] = mapped_column(string_enum(Outcome, "event_outcome"))
    payload: Mapped[dict[str, Any]]
    message: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_job_events_job_id_id", "job_id", "id"),)


class JobLog(Base):
    """The tail of a run's log, as its CRASHED (or sampled FINISHED) report sent it: apart
    from the job's row, so that searches, pages and the report path do not carry it."""

    __tablename__ = "job_logs"

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    # The size of the log as it was sent, in bytes of UTF-8; `text` is its tail.
    original_bytes: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[State] = mapped_column(string_enum(State, "job_log_state"))
    created_at: Mapped[datetime]
