"""Retry decisions, notification routing and watchdog verdicts, with the clock as an argument."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from execdb.automation.policy import NotifyDecision, decide_retry, recipients
from execdb.automation.settings import Backoff, NotifySettings, RetrySettings, WatchdogSettings
from execdb.automation.watchdog import verdict
from execdb.causes.catalogue import load_catalogue
from execdb.config import SettingsError, load_settings
from execdb.vocabulary import Blame, State

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
CATALOGUE = load_catalogue()


def crashed(**fields: Any) -> dict[str, Any]:
    job = {
        "state": State.CRASHED,
        "task": "rpmlint",
        "blame": Blame.THIRD_PARTY,
        "cause": "koji.timeout",
        "attempt": 1,
        "trigger_data": {},
    }
    return {**job, **fields}


def retry(settings: dict[str, Any] | None = None, **job: Any) -> datetime | None:
    policy = RetrySettings.model_validate(settings or {})
    return decide_retry(crashed(**job), policy, CATALOGUE, NOW).retry_at


def test_the_default_policy_retries_a_retryable_third_party_crash_up_to_three_attempts() -> None:
    assert retry(attempt=1) == NOW + timedelta(minutes=5)
    assert retry(attempt=2) == NOW + timedelta(minutes=10)
    assert retry(attempt=3) is None


def test_a_crash_that_is_not_retryable_or_not_a_crash_is_not_retried() -> None:
    assert retry(cause="koji.build_not_found") is None
    assert retry(blame=Blame.TASK, cause="task.exception") is None
    assert retry(cause=None, blame=Blame.UNKNOWN) is None
    assert retry(state=State.FINISHED) is None
    assert retry(rescheduled_as="0190b6d4-0000-7000-8000-000000000000") is None
    assert retry(cause="nobody.knows") is None


def test_with_no_rule_matching_the_catalogue_retryable_flag_decides() -> None:
    # minion.creation_failed is ours (TASKOTRON) and retryable: no shipped rule matches it.
    assert retry(blame=Blame.TASKOTRON, cause="minion.creation_failed") == NOW + timedelta(
        minutes=5
    )
    no_rules = {"rules": [], "default_max_attempts": 2}
    assert retry(no_rules, attempt=1) is not None
    assert retry(no_rules, attempt=2) is None


def test_the_first_matching_rule_wins() -> None:
    settings = {
        "rules": [
            {"task": "rpm*", "cause": "koji", "action": "never"},
            {"cause": "koji", "action": "retry", "max_attempts": 5, "initial_delay": "1m"},
        ]
    }
    assert retry(settings, task="rpmlint") is None
    assert retry(settings, task="depcheck", attempt=4) == NOW + timedelta(minutes=8)
    assert retry(settings, task="depcheck", attempt=5) is None
    # A rule may retry what the catalogue says is not retryable.
    assert retry(settings, task="depcheck", cause="koji.build_not_found") is not None


def test_backoff_grows_by_its_factor_up_to_its_cap() -> None:
    backoff = Backoff(initial_delay=timedelta(seconds=10), factor=3, max_delay=timedelta(minutes=2))
    delays = [backoff.delay(n).total_seconds() for n in range(1, 6)]
    assert delays == [10, 30, 90, 120, 120]
    assert backoff.delay(10_000) == timedelta(minutes=2)  # no overflow at silly attempts


def test_a_chain_of_retries_stops_at_its_limit_whatever_happens() -> None:
    settings = {"rules": [{"action": "retry", "max_attempts": 4, "initial_delay": 1}]}
    attempts = 1
    while retry(settings, attempt=attempts) is not None:
        attempts += 1
        assert attempts <= 4
    assert attempts == 4


def route(blame: Blame, *, pending: bool = False, **fields: Any) -> list[str]:
    notify = NotifySettings.model_validate(
        {
            "admins": ["admins@example.org", "webhook:ops"],
            "contacts": {"rpm*": ["rpm-team@example.org"], "*": ["all@example.org"]},
            "webhooks": {"ops": {"url": "http://127.0.0.1:1/"}},
            **fields,
        }
    )
    return recipients(crashed(blame=blame), notify, retry_pending=pending).to


def test_notifications_follow_the_blame() -> None:
    assert route(Blame.TASK) == ["rpm-team@example.org", "all@example.org"]
    assert route(Blame.TASKOTRON) == ["admins@example.org", "webhook:ops"]
    assert route(Blame.UNKNOWN) == ["admins@example.org", "webhook:ops"]
    # Third parties: nobody while a retry is pending, the admins once retries are exhausted.
    assert route(Blame.THIRD_PARTY, pending=True) == []
    assert route(Blame.THIRD_PARTY, pending=False) == ["admins@example.org", "webhook:ops"]


def test_maintainers_come_from_the_trigger_too_and_default_to_the_admins() -> None:
    notify = NotifySettings.model_validate({"admins": ["admins@example.org"]})
    job = crashed(blame=Blame.TASK, trigger_data={"contacts": ["me@example.org", 42, "no-at"]})
    assert recipients(job, notify, retry_pending=False).to == ["me@example.org"]
    job = crashed(blame=Blame.TASK, trigger_data={"contacts": "nobody"})
    assert recipients(job, notify, retry_pending=False).to == ["admins@example.org"]


def test_only_the_first_contacts_that_are_addresses_are_used() -> None:
    notify = NotifySettings.model_validate({"admins": ["admins@example.org"], "max_contacts": 4})
    contacts = [
        "Me@Example.ORG",
        "a@b.org\r\nBcc: everyone@example.org",
        {"name": "x"},
        "me@example.org",
        *(f"spam{n}@example.org" for n in range(3000)),
    ]
    job = crashed(blame=Blame.TASK, trigger_data={"contacts": contacts})
    decided = recipients(job, notify, retry_pending=False)
    assert decided.to == ["Me@example.org", "me@example.org"]
    assert len(decided.dropped) == 3
    assert decided.dropped[0].startswith(
        "'a@b.org\\r\\nBcc: everyone@example.org' is not an e-mail"
    )
    assert decided.dropped[1] == "{'name': 'x'} is not an e-mail address: not a string"
    assert decided.dropped[2] == (
        "3000 more contact(s): only the first 4 are used (the max_contacts setting)"
    )
    # Nobody is told of a third party's crash: its contacts are not even looked at.
    job = crashed(blame=Blame.THIRD_PARTY, trigger_data={"contacts": contacts})
    assert recipients(job, notify, retry_pending=True) == NotifyDecision([], [])


def test_routes_can_match_cause_families_and_tasks() -> None:
    routes = [{"cause": "koji", "task": "rpm*", "to": ["koji-watch@example.org"]}]
    assert route(Blame.THIRD_PARTY, routes=routes) == ["koji-watch@example.org"]
    assert route(Blame.TASK, routes=routes) == ["koji-watch@example.org"]
    routes[0]["task"] = "depcheck"
    assert route(Blame.THIRD_PARTY, routes=routes) == []


WATCHDOG = WatchdogSettings.model_validate(
    {"running": "6h", "scheduled": "1d", "heartbeat": "10m", "tasks": {"slow*": {"running": "2d"}}}
)


def job_at(state: State, **fields: Any) -> dict[str, Any]:
    job = {
        "task": "rpmlint",
        "state": state,
        "created_at": NOW - timedelta(hours=7),
        "started_at": NOW - timedelta(hours=7),
        "heartbeat_at": None,
    }
    return {**job, **fields}


def test_the_watchdog_crashes_a_job_running_too_long_unless_its_task_may() -> None:
    report = verdict(job_at(State.RUNNING), WATCHDOG, NOW)
    assert report is not None
    assert (report.state, report.blame, report.cause) == (
        State.CRASHED,
        Blame.TASKOTRON,
        "watchdog.timeout",
    )
    assert "6h limit" in (report.details or "")
    assert verdict(job_at(State.RUNNING, task="slowtask"), WATCHDOG, NOW) is None
    fresh = job_at(State.RUNNING, started_at=NOW - timedelta(hours=5))
    assert verdict(fresh, WATCHDOG, NOW) is None


def test_the_watchdog_catches_stopped_heartbeats_sooner() -> None:
    started = NOW - timedelta(hours=1)
    alive = job_at(State.RUNNING, started_at=started, heartbeat_at=NOW - timedelta(minutes=9))
    assert verdict(alive, WATCHDOG, NOW) is None
    gone = job_at(State.RUNNING, started_at=started, heartbeat_at=NOW - timedelta(minutes=11))
    report = verdict(gone, WATCHDOG, NOW)
    assert report is not None
    assert report.cause == "executor.lost"
    # A job that never sent a heartbeat is held to the running limit only.
    assert verdict(job_at(State.RUNNING, started_at=started), WATCHDOG, NOW) is None


def test_the_watchdog_crashes_a_job_no_executor_started() -> None:
    old = job_at(State.SCHEDULED, created_at=NOW - timedelta(days=1, seconds=1))
    report = verdict(old, WATCHDOG, NOW)
    assert report is not None
    assert report.cause == "watchdog.not_started"
    assert verdict(job_at(State.SCHEDULED), WATCHDOG, NOW) is None
    for state in (State.FINISHED, State.CRASHED, State.CANCELLED):
        assert verdict(job_at(state, created_at=NOW - timedelta(days=9)), WATCHDOG, NOW) is None


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[[retry.rules]]\naction = "retry"\n[[retry.rules]]\naction = "sometimes"\n',
            "retry.rules[1].action: Input should be 'retry' or 'never' (got 'sometimes')",
        ),
        (
            '[[retry.rules]]\naction = "retry"\nmax_attempts = 0\n',
            "retry.rules[0].max_attempts: Input should be greater than or equal to 1 (got 0)",
        ),
        (
            '[[retry.rules]]\naction = "retry"\nblame = "NOBODY"\n',
            "retry.rules[0].blame[0]: Input should be",
        ),
        (
            '[[retry.rules]]\naction = "retry"\ninitial_delay = "soon"\n',
            "retry.rules[0].initial_delay: Value error, 'soon' is not a duration",
        ),
        (
            '[[retry.rules]]\naction = "retry"\ninitial_delay = "2h"\nmax_delay = "1h"\n',
            "retry.rules[0]: Value error, max_delay must not be less than initial_delay",
        ),
        (
            '[[retry.rules]]\naction = "retry"\nstate = "CRASHED"\n',
            "retry.rules[0].state: unknown setting",
        ),
        ("[watchdog]\nrunning = -5\n", "watchdog.running"),
        (
            '[notify]\nadmins = ["webhook:ops"]\n',
            "notify: Value error, 'webhook:ops' names no webhook in [notify.webhooks]",
        ),
        (
            '[[notify.routes]]\nto = ["the boss"]\n',
            "notify.routes[0].to: Value error, 'the boss' is not a recipient",
        ),
        (
            '[notify]\nadmins = ["ops@example.org\\r\\nBcc: all@example.org"]\n',
            "notify.admins: Value error, 'ops@example.org\\r\\nBcc: all@example.org' is not "
            "an e-mail address: The part after the @-sign contains invalid characters",
        ),
        (
            '[notify.contacts]\n"rpm*" = ["rpm team@example.org"]\n',
            "notify.contacts.rpm*: Value error, 'rpm team@example.org' is not an e-mail address",
        ),
        ("[notify]\nmax_contacts = -1\n", "notify.max_contacts: Input should be greater"),
        ('[dispatch]\nkind = "buildbot"\n', "dispatch: Value error, url: the buildbot"),
        ('[dispatch]\nkind = "jenkins"\n', "dispatch.kind: Input should be"),
    ],
)
def test_a_bad_policy_file_is_refused_naming_the_rule_and_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str, message: str
) -> None:
    for name in [k for k in os.environ if k.startswith("EXECDB_")]:
        monkeypatch.delenv(name)
    path = tmp_path / "execdb.toml"
    path.write_text(toml)
    with pytest.raises(SettingsError) as error:
        load_settings(path)
    assert message in str(error.value)
    assert str(path) in str(error.value)
