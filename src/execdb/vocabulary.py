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
