"""What to do about a crash: retry it (when) and whom to tell. Pure: no I/O, no clock.

Retry: the first rule of `[retry]` that matches the crash decides; with no match, the cause's
`retryable` flag in the catalogue does, with the `[retry.default]` backoff. A job is retried
only while its attempt number is below the limit, and every retry (by ExecDB or by hand) adds
one to it, so no chain of retries can outgrow its limit.

Notification: every route that matches adds its recipients; "maintainers" are the task's
contacts from the settings and from trigger_data.contacts (the admins when nobody is known),
"admins" the admins. A route with `when = "final"` says nothing while a retry is pending.
Only the first `max_contacts` entries of trigger_data.contacts are used, and of those only
the e-mail addresses; the others are dropped, each with the reason, for the job page to show.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from execdb.automation.settings import NotifySettings, RetrySettings, email_address
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


@dataclass(frozen=True, slots=True)
class NotifyDecision:
    to: list[str]  # addresses and webhook:NAME, in a stable order without repeats
    dropped: list[str]  # the trigger's contacts left out, each saying why


def recipients(
    job: Mapping[str, Any], settings: NotifySettings, *, retry_pending: bool
) -> NotifyDecision:
    """Who hears of this crash."""
    named = [
        recipient
        for route in settings.routes
        if not (route.when == "final" and retry_pending)
        and route.matches(blame=job["blame"], cause=job["cause"], task=job["task"])
        for recipient in route.to
    ]
    contacts: list[str] = []
    dropped: list[str] = []
    if "maintainers" in named:
        contacts, dropped = _contacts(job["trigger_data"], settings.max_contacts)
    found: dict[str, None] = {}
    for recipient in named:
        if recipient == "admins":
            found.update(dict.fromkeys(settings.admins))
        elif recipient == "maintainers":
            maintainers = settings.maintainers(job["task"]) + contacts
            # A task bug must reach someone: with no maintainer known, the admins hear of it.
            found.update(dict.fromkeys(maintainers or settings.admins))
        else:
            found.setdefault(recipient)
    return NotifyDecision(list(found), dropped)


def _contacts(trigger_data: Mapping[str, Any], limit: int) -> tuple[list[str], list[str]]:
    """The trigger's contacts to mail, and those dropped with the reason.

    Only the first `limit` entries are looked at: a token that may create jobs must not make
    ExecDB mail thousands of addresses (nor check them all inside the crash's transaction).
    """
    contacts = trigger_data.get("contacts")
    if contacts is None:
        return [], []
    if isinstance(contacts, str):
        contacts = [contacts]
    if not isinstance(contacts, list):
        return [], ["trigger_data.contacts: not a list of e-mail addresses"]
    kept: list[str] = []
    dropped: list[str] = []
    for entry in contacts[:limit]:
        if not isinstance(entry, str):
            dropped.append(f"{repr(entry)[:40]} is not an e-mail address: not a string")
            continue
        try:
            kept.append(email_address(entry))
        except ValueError as exc:
            dropped.append(str(exc))
    if len(contacts) > limit:
        dropped.append(
            f"{len(contacts) - limit} more contact(s): only the first {limit} are used "
            "(the max_contacts setting)"
        )
    return kept, dropped
