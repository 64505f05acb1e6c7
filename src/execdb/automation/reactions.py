"""What a state change sets in motion, decided inside the transaction that makes the change.

The job service calls these while it holds the job's row: a crash gets its retry time and its
notifications, a rescheduled job its dispatch, and with the bus configured every creation,
accepted state change and reclassification its message (automation.bus). Everything they
write joins the caller's transaction, so that a change and what it calls for are committed
together or not at all.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from execdb.automation import outbox
from execdb.automation.bus import Bus
from execdb.automation.models import EMAIL_SINK, Kind, webhook_name
from execdb.automation.policy import RetryDecision, decide_retry, recipients
from execdb.automation.settings import DispatchSettings, NotifySettings, RetrySettings
from execdb.causes.catalogue import Catalogue
from execdb.jobs.schemas import JobPublic
from execdb.jobs.states import JobRow
from execdb.vocabulary import Actor, DispatchState, State


class Reactions:
    """The job service's `execdb.jobs.interfaces.Reactions`, by the policies in the settings."""

    def __init__(
        self,
        catalogue: Catalogue,
        *,
        retry: RetrySettings,
        notify: NotifySettings,
        dispatch: DispatchSettings,
        base_url: str,
        bus: bool = False,
    ) -> None:
        """`bus`: whether job changes are published (bus.config is set); if not, nothing is
        written for the bus."""
        self.catalogue = catalogue
        self.retry = retry
        self.notify = notify
        self.dispatch = dispatch
        self.base_url = base_url.rstrip("/")
        self.bus = Bus(self.base_url) if bus else None

    def created(self, conn: Connection, job: JobRow, actor: Actor, now: datetime) -> None:
        if self.bus is not None:
            self.bus.created(conn, job, actor, now)

    def changed(
        self, conn: Connection, before: JobRow, after: JobRow, actor: Actor, now: datetime
    ) -> None:
        if self.bus is not None:
            self.bus.changed(conn, before, after, actor, now)

    def reclassified(
        self, conn: Connection, before: JobRow, after: JobRow, actor: Actor, now: datetime
    ) -> None:
        if self.bus is not None:
            self.bus.reclassified(conn, before, after, actor, now)

    def ended(self, conn: Connection, job: JobRow, now: datetime) -> datetime | None:
        """Decide the retry of a job that has just ended and queue a crash's notifications."""
        retry = decide_retry(job, self.retry, self.catalogue, now)
        if job["state"] == State.CRASHED:
            self.crashed(conn, {**job, "retry_at": retry.retry_at}, retry, now)
        return retry.retry_at

    def retry_for(self, job: JobRow, now: datetime) -> datetime | None:
        """The retry a crash classified as `job` says would get (None: none). A retry already
        due keeps its time, so that classifying a crash again never postpones its retry."""
        retry = decide_retry(job, self.retry, self.catalogue, now)
        if retry.retry_at is not None and job.get("retry_at") is not None:
            return job["retry_at"]  # type: ignore[no-any-return]
        return retry.retry_at

    def crashed(self, conn: Connection, job: JobRow, retry: RetryDecision, now: datetime) -> None:
        """Queue the notifications of a crash (the job as it now is)."""
        pending = retry.retry_at is not None
        decided = recipients(job, self.notify, retry_pending=pending)
        to = decided.to
        if not to:
            return
        cause = self.catalogue.get(job["cause"]) if job["cause"] else None
        payload = {
            "event": "job.crashed",
            "job": self.public(job),
            "cause_description": cause.description if cause else None,
            "retry": {
                "at": retry.retry_at.isoformat() if retry.retry_at else None,
                "reason": retry.reason,
            },
            "dropped_contacts": decided.dropped,
        }
        # One e-mail to all its addresses, one POST to each webhook.
        emails = [r for r in to if webhook_name(r) is None]
        sends = [(EMAIL_SINK, emails)] if emails else []
        sends += [(hook, [hook]) for hook in to if webhook_name(hook) is not None]
        for sink, recipients_ in sends:
            outbox.add(
                conn,
                job_id=job["id"],
                kind=Kind.NOTIFICATION,
                sink=sink,
                recipients=recipients_,
                payload=payload,
                now=now,
            )

    def retry_withdrawn(self, job: JobRow, now: datetime) -> str | None:
        """Why a pending retry no longer holds once the job's blame or cause changed (None: it
        stands). The policy is asked as if the job had just crashed like this; the retry's
        time is not moved, and a job not waiting for a retry is never given one afterwards."""
        retry = decide_retry({**job, "retry_at": None}, self.retry, self.catalogue, now)
        return retry.reason if retry.retry_at is None else None

    def rescheduled(self, conn: Connection, job: JobRow, now: datetime) -> DispatchState | None:
        """Queue the dispatch of a new attempt; its dispatch_state (None: not dispatched)."""
        kind = self.dispatch.kind
        if kind == "none":
            return None
        assert job["state"] == State.SCHEDULED
        outbox.add(
            conn,
            job_id=job["id"],
            kind=Kind.DISPATCH,
            sink=kind,
            recipients=[],
            payload={"event": "job.rescheduled", "job": self.public(job)},
            now=now,
        )
        return DispatchState.PENDING

    def public(self, job: JobRow) -> dict[str, Any]:
        return JobPublic.from_row(job, self.base_url).model_dump(mode="json")
