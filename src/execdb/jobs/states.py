"""The job state machine, and the whole rulebook of what a report does.

This module is pure (no I/O, no clock of its own, nothing of ExecDB but the vocabulary), and it
is the only place that decides: the service locks the job, calls `apply`, and writes what it
returns; the schemas ask `misplaced_fields`; rescheduling asks `reschedule_refusal`; heartbeats
ask `takes_heartbeats`; reclassification asks `reclassifiable`.

    SCHEDULED -> RUNNING | CRASHED | CANCELLED
    RUNNING   -> FINISHED | CRASHED | CANCELLED
    FINISHED, CRASHED, CANCELLED are terminal.

One exception keeps the executor authoritative: when ExecDB itself put a job into a terminal
state (the watchdog deciding an executor is gone), the executor's own terminal report, arriving
late, replaces that verdict. Both reports stay in the job's history.

What a report says about how a job ended (blame, cause, details) is its `Claim`. The service
refines the claim before it is applied (long details are shortened, a crash's log is
classified, a missing blame comes from the catalogue): which cause wins, the reporter's or the
rules', is decided there, and the claim carries both for `apply` to write.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from execdb.vocabulary import TERMINAL, Actor, Blame, Outcome, State, kept_by_person

# A row of the jobs table, by column name (SQLAlchemy types its rows' keys as Any).
JobRow = Mapping[Any, Any]

ALLOWED: Mapping[State, frozenset[State]] = {
    State.SCHEDULED: frozenset({State.RUNNING, State.CRASHED, State.CANCELLED}),
    State.RUNNING: frozenset({State.FINISHED, State.CRASHED, State.CANCELLED}),
    State.FINISHED: frozenset(),
    State.CRASHED: frozenset(),
    State.CANCELLED: frozenset(),
}

# Which report may carry which field, and why not otherwise (the API's 400 says it).
FIELDS: Mapping[str, tuple[frozenset[State], str]] = {
    "executor": (
        frozenset({State.RUNNING}),
        "executor: only a RUNNING report carries executor information",
    ),
    "blame": (frozenset({State.CRASHED}), "blame: only a CRASHED report carries a blame"),
    "cause": (frozenset({State.CRASHED}), "cause: only a CRASHED report carries a cause"),
    "details": (
        TERMINAL,
        "details: only a report that ends the job (FINISHED, CRASHED, CANCELLED) carries details",
    ),
    "log": (
        frozenset({State.FINISHED, State.CRASHED}),
        "log: only a FINISHED or CRASHED report carries a log",
    ),
}

# What a CRASHED report's classification sets on the job; other reports clear them all.
CLASSIFICATION = (
    "classified_by",
    "reported_blame",
    "reported_cause",
    "rule_id",
    "rules_version",
    "evidence",
    "rules_blame",
    "rules_cause",
    "signature",
    "signature_text",
    "signature_line",
)
_UNCLASSIFIED: Mapping[str, Any] = dict.fromkeys(CLASSIFICATION)

# The fields a report sets; a repeated report is harmless when it would set them all the same.
_CONTENT = frozenset({"state", "executor", "blame", "cause", "details"})
_MICROSECOND = timedelta(microseconds=1)


class Report(Protocol):
    """A report as it was sent (the API's JobReport, or ExecDB's own)."""

    @property
    def state(self) -> State: ...
    @property
    def executor(self) -> dict[str, Any] | None: ...
    @property
    def blame(self) -> Blame | None: ...
    @property
    def cause(self) -> str | None: ...
    @property
    def details(self) -> str | None: ...
    @property
    def log(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Claim:
    """What a report says about how the job ended, and what ExecDB noted while refining it:
    `classification` holds the CLASSIFICATION columns of a crash (what was reported, what the
    rules concluded); `log` the log as ExecDB keeps it (its tail) and `log_bytes` its size as
    sent."""

    blame: Blame | None = None
    cause: str | None = None
    details: str | None = None
    warnings: tuple[str, ...] = ()
    classification: Mapping[str, Any] = field(default_factory=dict)
    log: str | None = None
    log_bytes: int = 0

    @classmethod
    def of(cls, report: Report) -> Claim:
        return cls(report.blame, report.cause, report.details)

    def noting(self, warning: str, **changes: Any) -> Claim:
        return replace(self, warnings=(*self.warnings, warning), **changes)


@dataclass(frozen=True, slots=True)
class Event:
    """One row of a job's history."""

    at: datetime
    actor: str
    by_system: bool
    from_state: State | None
    to_state: State
    outcome: Outcome
    payload: dict[str, Any]
    message: str | None

    def row(self, job_id: int) -> dict[str, Any]:
        return {
            "job_id": job_id,
            "at": self.at,
            "actor": self.actor,
            "by_system": self.by_system,
            "from_state": self.from_state,
            "to_state": self.to_state,
            "outcome": self.outcome,
            "payload": self.payload,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class Decision:
    """What one report does: its outcome, the job's columns to write (none unless the report
    is taken), the history event, and the message to answer with."""

    outcome: Outcome
    values: dict[str, Any]
    event: Event
    message: str | None
    warnings: tuple[str, ...] = ()

    @property
    def taken(self) -> bool:
        return self.outcome in (Outcome.ACCEPTED, Outcome.REPLACED)

    @property
    def ends_job(self) -> bool:
        return self.taken and self.event.to_state in TERMINAL


def decide(
    current: State,
    requested: State,
    *,
    same_content: bool,
    current_set_by_system: bool,
    by_system: bool,
) -> Outcome:
    """Decide the outcome of a report asking for `requested` on a job in `current`.

    `same_content` says whether the report carries what the job already holds (so that a
    retried report is harmless); `current_set_by_system` whether ExecDB itself set the current
    state; `by_system` whether ExecDB itself sends this report.
    """
    if requested == current and same_content:
        return Outcome.REPEATED
    if requested in ALLOWED[current]:
        return Outcome.ACCEPTED
    if current in TERMINAL and requested in TERMINAL and current_set_by_system and not by_system:
        return Outcome.REPLACED
    return Outcome.REFUSED


def apply(job: JobRow, report: Report, claim: Claim, actor: Actor, now: datetime) -> Decision:
    """Everything one report does to `job` (as stored, locked by the caller) at `now`."""
    changes = _kept(job, report, _changes(report, claim, now))
    before: State = job["state"]
    outcome = decide(
        before,
        report.state,
        same_content=all(job[k] == v for k, v in changes.items() if k in _CONTENT),
        current_set_by_system=job["state_by_system"],
        by_system=actor.by_system,
    )
    message = _explain(job, report.state, outcome, claim.warnings)
    values: dict[str, Any] = {}
    if outcome in (Outcome.ACCEPTED, Outcome.REPLACED):
        values = {**changes, "state_by_system": actor.by_system, "updated_at": now}
        values.update(_durations(job, changes))
    payload = {
        name: value
        for name in ("state", "executor", "blame", "cause", "details")
        if (value := getattr(report, name)) is not None
    }
    if claim.details is not None:
        payload["details"] = claim.details  # as kept: shortened
    if report.log is not None:
        payload["log"] = f"{claim.log_bytes} bytes"  # the log itself is kept apart
    concluded = {
        k: v
        for k, v in claim.classification.items()
        if v is not None and not k.startswith("reported_")
    }
    if concluded:
        # What ExecDB concluded, beside what was reported (blame and cause above).
        payload["classification"] = {"blame": claim.blame, "cause": claim.cause, **concluded}
    event = Event(now, actor.name, actor.by_system, before, report.state, outcome, payload, message)
    return Decision(outcome, values, event, message, claim.warnings)


def misplaced_fields(report: Report) -> list[str]:
    """Why each field the report carries does not fit its state (empty: all fit)."""
    return [
        why
        for name, (states, why) in FIELDS.items()
        if getattr(report, name) is not None and report.state not in states
    ]


def reschedule_refusal(job: JobRow, *, force: bool) -> str | None:
    """Why the job cannot be run again (None: it can). A CRASHED or CANCELLED job can, and a
    FINISHED one with `force`."""
    state = job["state"]
    if state in (State.CRASHED, State.CANCELLED) or (state == State.FINISHED and force):
        return None
    hint = ' (send {"force": true} to run a FINISHED job again)' if state == State.FINISHED else ""
    return f"job {job['uuid']} is {state}; only a CRASHED or CANCELLED job can be rescheduled{hint}"


def retry_due(job: JobRow, now: datetime) -> bool:
    """Whether the job's retry by policy is due at `now`."""
    retry_at: datetime | None = job["retry_at"]
    return retry_at is not None and retry_at <= now and job["state"] == State.CRASHED


HEARTBEAT_STATES = frozenset({State.RUNNING})


def heartbeat_refusal(job: JobRow) -> str:
    """Why a job that is not in a HEARTBEAT_STATES state takes no heartbeat."""
    return f"job {job['uuid']} is {job['state']}; only a RUNNING job sends heartbeats"


# Whose answers a reclassification may replace: the rules' and nobody's. A reporter's cause
# is never touched, and neither is any other answer (a person's, to come): an allowlist, so
# that a new kind of answer is safe from reclassification until it is added here.
RECLASSIFIABLE: tuple[str | None, ...] = (None, "rules")


def reclassifiable(job: JobRow) -> bool:
    """Whether the current rules may give this job a new blame and cause: a crash whose
    answer came from the rules or from nobody (the caller checks that its log is kept)."""
    return job["state"] == State.CRASHED and job["classified_by"] in RECLASSIFIABLE


def new_attempt(job: JobRow) -> dict[str, Any]:
    """What a job's next attempt takes over from it (the rest is a new job's)."""
    return {
        **{k: job[k] for k in ("task", "item", "item_type", "arch", "msg_id", "trigger_data")},
        # The first attempt keeps the bus message's identity; this one must not clash.
        "dedup_key": None,
        "attempt": job["attempt"] + 1,
        "rescheduled_from": job["uuid"],
    }


def _changes(report: Report, claim: Claim, now: datetime) -> dict[str, Any]:
    changes: dict[str, Any] = {"state": report.state}
    if report.state == State.RUNNING:
        changes["started_at"] = now
        if report.executor is not None:
            changes["executor"] = report.executor
    elif report.state in TERMINAL:
        # A terminal report says everything about how the job ended, so it also clears what an
        # earlier verdict (which it may replace) had said.
        changes.update(blame=claim.blame, cause=claim.cause, details=claim.details, finished_at=now)
        changes.update({**_UNCLASSIFIED, **claim.classification})
    return changes


def _kept(job: JobRow, report: Report, changes: dict[str, Any]) -> dict[str, Any]:
    """The changes without blame, cause and classification where a person classified the
    crash that a new CRASHED report replaces: the rules of a report never overwrite them."""
    if report.state != State.CRASHED or not kept_by_person(job["classified_by"]):
        return changes
    return {k: v for k, v in changes.items() if k not in _PERSONS}


_PERSONS = frozenset({"blame", "cause", *CLASSIFICATION})


def _durations(job: JobRow, changes: dict[str, Any]) -> dict[str, int]:
    """queue_us and run_us for the times a report sets."""
    durations = {}
    if "started_at" in changes:
        durations["queue_us"] = (changes["started_at"] - job["created_at"]) // _MICROSECOND
    if "finished_at" in changes and job["started_at"] is not None:
        durations["run_us"] = (changes["finished_at"] - job["started_at"]) // _MICROSECOND
    return durations


def _explain(
    job: JobRow, requested: State, outcome: Outcome, warnings: tuple[str, ...]
) -> str | None:
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
