"""The words every part of ExecDB shares: a job's states, who is to blame, what became of a
report. It imports nothing of ExecDB, so that anything may import it (docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    SCHEDULED = "SCHEDULED"
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    CRASHED = "CRASHED"
    CANCELLED = "CANCELLED"


class Blame(StrEnum):
    TASKOTRON = "TASKOTRON"
    TASK = "TASK"
    THIRD_PARTY = "THIRD_PARTY"
    UNKNOWN = "UNKNOWN"


class Outcome(StrEnum):
    """What became of one report; every report is kept in the history with its outcome."""

    ACCEPTED = "accepted"
    REPLACED = "replaced"  # accepted, replacing a terminal state that ExecDB itself had set
    REPEATED = "repeated"  # the job already was in that state with that content: nothing changed
    REFUSED = "refused"
    CLASSIFIED = "classified"  # a person gave a crash its blame and cause (not a report)


class ClassifiedBy(StrEnum):
    """Who gave a crash its blame and cause (a job's `classified_by`; null: nobody).

    A person's word is final: neither the rules of a later report nor a reclassification of
    stored crashes ever overwrites a crash that `PERSON` classified (`kept_by_person`).
    """

    REPORTER = "reporter"
    RULES = "rules"
    PERSON = "person"


def kept_by_person(classified_by: str | None) -> bool:
    """Whether a crash's classification is a person's, which rules must leave alone."""
    return classified_by == ClassifiedBy.PERSON


TERMINAL: frozenset[State] = frozenset({State.FINISHED, State.CRASHED, State.CANCELLED})


@dataclass(frozen=True, slots=True)
class Actor:
    """Who sends a report: a token's name, or ExecDB itself."""

    name: str
    by_system: bool = False


SYSTEM = Actor("execdb", by_system=True)


class DispatchState(StrEnum):
    """How the dispatch of a rescheduled job went (a job's `dispatch_state`)."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
