"""What a state change sets in motion, decided inside the transaction that makes the change.

The job service calls these while it holds the job's row: a crash gets its retry time and its
notifications, a rescheduled job its dispatch. Everything they write joins the caller's
transaction, so that a change and what it calls for are committed together or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from execdb.automation import outbox
from execdb.automation.models import Kind
from execdb.automation.policy import RetryDecision, decide_retry, recipients
from execdb.causes.catalogue import Catalogue
from execdb.config import Settings
from execdb.jobs.schemas import JobPublic
from execdb.jobs.states import State

JobRow = Mapping[str, Any]


class Reactions:
    def __init__(self, settings: Settings, catalogue: Catalogue) -> None:
        self.settings = settings
        self.catalogue = catalogue
        self.base_url = (settings.base_url or f"http://{settings.host}:{settings.port}").rstrip("/")

    def retry(self, job: JobRow, now: datetime) -> RetryDecision:
        return decide_retry(job, self.settings.retry, self.catalogue, now)

    def crashed(self, conn: Connection, job: JobRow, retry: RetryDecision, now: datetime) -> None:
        """Queue the notifications of a crash (the job as it now is)."""
        pending = retry.retry_at is not None
        decided = recipients(job, self.settings.notify, retry_pending=pending)
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
        emails = [r for r in to if not r.startswith("webhook:")]
        sends = [("email", emails)] if emails else []
        sends += [(hook, [hook]) for hook in to if hook.startswith("webhook:")]
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

    def rescheduled(self, conn: Connection, job: JobRow, now: datetime) -> str | None:
        """Queue the dispatch of a new attempt; its dispatch_state (None: not dispatched)."""
        kind = self.settings.dispatch.kind
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
        return "pending"

    def public(self, job: JobRow) -> dict[str, Any]:
        return JobPublic.from_row(job, self.base_url).model_dump(mode="json")
