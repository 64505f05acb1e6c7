"""What to do about a crash: retry it (when) and whom to tell. Pure: no I/O, no clock.

Retry: the first rule of `[retry]` that matches the crash decides; with no match, the cause's
`retryable` flag in the catalogue does, with the `[retry.default]` backoff. A job is retried
only while its attempt number is below the limit, and every retry (by ExecDB or by hand) adds
one to it, so no chain of retries can outgrow its limit.

Notification: every route that matches adds its recipients; "maintainers" are the task's
contacts from the settings and from trigger_data.contacts (the admins when nobody is known),
"admins" the admins. A route with `when = "final"` says nothing while a retry is pending.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from execdb.automation.settings import NotifySettings, RetrySettings
from execdb.causes.catalogue import Catalogue
from execdb.vocabulary import State


@dataclass(frozen=True, slots=True)
class RetryDecision:
    retry_at: datetime | None  # None: no retry
    reason: str


def decide_retry(
    job: Mapping[str, Any], settings: RetrySettings, catalogue: Catalogue, now: datetime
) -> RetryDecision:
    """Whether and when to run a job that has just crashed again."""
    if job["state"] != State.CRASHED:
        return RetryDecision(None, f"the job is {job['state']}")
    if job.get("rescheduled_as") is not None:
        return RetryDecision(None, f"it was rescheduled as {job['rescheduled_as']} already")
    blame, cause, task = job["blame"], job["cause"], job["task"]
    known = catalogue.get(cause) if cause else None
    retryable = known is not None and known.retryable
    for number, rule in enumerate(settings.rules):
        if rule.retryable is not None and rule.retryable != retryable:
            continue
        if not rule.matches(blame=blame, cause=cause, task=task):
            continue
        label = f"retry rule {rule.name!r}" if rule.name else f"retry rule {number}"
        if rule.action == "never":
            return RetryDecision(None, f"{label} says never")
        return _within(job["attempt"], rule.max_attempts, rule.delay, label, now)
    if not retryable:
        return RetryDecision(
            None, f"no retry rule matches and {cause or 'no cause'} is not retryable"
        )
    return _within(
        job["attempt"],
        settings.default_max_attempts,
        settings.default.delay,
        f"{cause} is retryable",
        now,
    )


def _within(
    attempt: int, limit: int, delay: Callable[[int], timedelta], label: str, now: datetime
) -> RetryDecision:
    if attempt >= limit:
        return RetryDecision(None, f"{label}: attempt {attempt} of {limit} was the last")
    return RetryDecision(now + delay(attempt), f"{label}: attempt {attempt + 1} of {limit}")


def recipients(
    job: Mapping[str, Any], settings: NotifySettings, *, retry_pending: bool
) -> list[str]:
    """Who hears of this crash, in a stable order without repeats."""
    found: dict[str, None] = {}
    for route in settings.routes:
        if route.when == "final" and retry_pending:
            continue
        if not route.matches(blame=job["blame"], cause=job["cause"], task=job["task"]):
            continue
        for recipient in route.to:
            for resolved in _resolve(recipient, job, settings):
                found.setdefault(resolved)
    return list(found)


def _resolve(recipient: str, job: Mapping[str, Any], settings: NotifySettings) -> list[str]:
    if recipient == "admins":
        return list(settings.admins)
    if recipient == "maintainers":
        maintainers = settings.maintainers(job["task"]) + _contacts(job["trigger_data"])
        # A task bug must reach someone: with no maintainer known, the admins hear of it.
        return maintainers or list(settings.admins)
    return [recipient]


def _contacts(trigger_data: Mapping[str, Any]) -> list[str]:
    contacts = trigger_data.get("contacts")
    if isinstance(contacts, str):
        contacts = [contacts]
    if not isinstance(contacts, list):
        return []
    return [c for c in contacts if isinstance(c, str) and "@" in c and len(c) < 255]
