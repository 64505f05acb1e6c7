"""The job state machine: which reports are legal, and what each one does.

This module is pure (no I/O, no clock, no imports from the rest of ExecDB) so that the service,
the background work and the client can all share one definition of what is legal.

    SCHEDULED -> RUNNING | CRASHED | CANCELLED
    RUNNING   -> FINISHED | CRASHED | CANCELLED
    FINISHED, CRASHED, CANCELLED are terminal.

One exception keeps the executor authoritative: when ExecDB itself put a job into a terminal
state (the watchdog deciding an executor is gone), the executor's own terminal report, arriving
late, replaces that verdict. Both reports stay in the job's history.
"""

from __future__ import annotations

from collections.abc import Mapping
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

ALLOWED: Mapping[State, frozenset[State]] = {
    State.SCHEDULED: frozenset({State.RUNNING, State.CRASHED, State.CANCELLED}),
    State.RUNNING: frozenset({State.FINISHED, State.CRASHED, State.CANCELLED}),
    State.FINISHED: frozenset(),
    State.CRASHED: frozenset(),
    State.CANCELLED: frozenset(),
}


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
