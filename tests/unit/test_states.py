"""The transition table, checked against the table the issue wrote down."""

from __future__ import annotations

import itertools

import pytest

from execdb.jobs.states import ALLOWED, decide, reclassifiable
from execdb.vocabulary import TERMINAL, Outcome, State

S, R, F, C, X = (State.SCHEDULED, State.RUNNING, State.FINISHED, State.CRASHED, State.CANCELLED)
LEGAL = {(S, R), (S, C), (S, X), (R, F), (R, C), (R, X)}


@pytest.mark.parametrize(("current", "requested"), list(itertools.product(State, State)))
def test_only_the_documented_transitions_are_accepted(current: State, requested: State) -> None:
    outcome = decide(
        current, requested, same_content=False, current_set_by_system=False, by_system=False
    )
    expected = Outcome.ACCEPTED if (current, requested) in LEGAL else Outcome.REFUSED
    assert outcome is expected
    assert (requested in ALLOWED[current]) == ((current, requested) in LEGAL)


def test_terminal_states_lead_nowhere() -> None:
    assert {F, C, X} == TERMINAL
    assert all(not ALLOWED[state] for state in TERMINAL)


@pytest.mark.parametrize("state", list(State))
def test_the_same_report_again_is_a_harmless_repeat(state: State) -> None:
    for by_system in (False, True):
        outcome = decide(
            state, state, same_content=True, current_set_by_system=by_system, by_system=False
        )
        assert outcome is Outcome.REPEATED


@pytest.mark.parametrize(
    ("current", "requested"), list(itertools.product(sorted(TERMINAL), sorted(TERMINAL)))
)
def test_the_executor_may_replace_a_verdict_of_execdb(current: State, requested: State) -> None:
    def outcome(*, set_by_system: bool, by_system: bool) -> Outcome:
        return decide(
            current,
            requested,
            same_content=False,
            current_set_by_system=set_by_system,
            by_system=by_system,
        )

    assert outcome(set_by_system=True, by_system=False) is Outcome.REPLACED
    assert outcome(set_by_system=False, by_system=False) is Outcome.REFUSED
    assert outcome(set_by_system=True, by_system=True) is Outcome.REFUSED, (
        "ExecDB never overrules itself"
    )


def test_a_late_running_report_does_not_reopen_a_verdict() -> None:
    outcome = decide(C, R, same_content=False, current_set_by_system=True, by_system=False)
    assert outcome is Outcome.REFUSED


@pytest.mark.parametrize(
    ("state", "classified_by", "expected"),
    [
        (C, None, True),
        (C, "rules", True),
        (C, "reporter", False),
        (C, "person", False),  # any answer not allowed by name is safe from reclassification
        (F, None, False),
        (X, "rules", False),
    ],
)
def test_only_crashes_the_rules_or_nobody_answered_are_reclassified(
    state: State, classified_by: str | None, expected: bool
) -> None:
    assert reclassifiable({"state": state, "classified_by": classified_by}) is expected
