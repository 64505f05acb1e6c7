"""People classify crashes over the API, on SQLite and PostgreSQL: who may, which jobs, what
the history keeps, what it does to the retry, and that no rule overwrites it afterwards."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from execdb.db import utcnow
from execdb.jobs.schemas import JobReport
from execdb.vocabulary import SYSTEM
from tests.functional.test_classification import KOJI_TIMEOUT, log_ending
from tests.helpers import events, job_in, report
from tests.live import LiveServer

MYSTERY = "segfault in libfoo at 0x7ffe1234, core dumped"


def classify(client: httpx.Client, job_uuid: str, **body: Any) -> httpx.Response:
    return client.put(f"/api/v1/jobs/{job_uuid}/classification", json=body)


def mystery_crash(client: httpx.Client) -> dict[str, Any]:
    job = job_in(client, "RUNNING")
    answer = report(client, job["uuid"], state="CRASHED", log=log_ending(MYSTERY))
    assert answer.status_code == 200, answer.text
    crashed: dict[str, Any] = answer.json()
    assert (crashed["blame"], crashed["cause"], crashed["classified_by"]) == (
        "UNKNOWN",
        None,
        None,
    )
    return crashed


def test_a_person_classifies_a_crash_and_the_history_says_who(server: LiveServer) -> None:
    with server.client("both") as client:
        job = mystery_crash(client)
    with server.client("triage") as client:
        answer = classify(
            client, job["uuid"], blame="task", cause="task.exception", note="a bug in the task"
        )
        history = events(client, job["uuid"])
    assert answer.status_code == 200, answer.text
    done = answer.json()
    assert (done["blame"], done["cause"], done["classified_by"]) == (
        "TASK",
        "task.exception",
        "person",
    )
    assert done["warnings"] == []
    last = history[-1]
    assert (last["actor"], last["outcome"], last["from_state"], last["to_state"]) == (
        "test-triage",
        "classified",
        "CRASHED",
        "CRASHED",
    )
    assert last["payload"]["old"] == {"blame": "UNKNOWN", "cause": None, "classified_by": None}
    assert last["payload"]["new"] == {"blame": "TASK", "cause": "task.exception"}
    assert last["payload"]["note"] == "a bug in the task"
    assert "by test-triage" in last["message"]
    with server.client() as client:
        stored = client.get(f"/api/v1/jobs/{job['uuid']}").json()
        stats = client.get("/api/v1/stats").json()
        page = client.get("/stats")
    assert (stored["cause"], stored["classified_by"]) == ("task.exception", "person")
    assert stats["by_classification"] == {"reporter": 0, "rules": 0, "person": 1, "nobody": 0}
    assert page.status_code == 200
    assert "1 by a person" in page.text


def test_who_may_classify(server: LiveServer) -> None:
    with server.client("both") as client:
        job = mystery_crash(client)
    body = {"cause": "task.exception"}
    with server.client() as client:
        assert classify(client, job["uuid"], **body).status_code == 401
    for token, status in (("revoked", 401), ("report", 403), ("create", 403), ("admin", 200)):
        with server.client(token) as client:
            answer = classify(client, job["uuid"], **body)
        assert answer.status_code == status, (token, answer.text)
    with server.client("report") as client:
        refused = classify(client, job["uuid"], **body)
    assert "lacks the scope 'triage'" in refused.json()["message"]


@pytest.mark.parametrize("state", ["SCHEDULED", "RUNNING", "FINISHED", "CANCELLED"])
def test_only_a_crash_can_be_classified_and_a_refusal_changes_nothing(
    server: LiveServer, state: str
) -> None:
    with server.client("both") as client:
        job = job_in(client, state)
        before = events(client, job["uuid"])
    with server.client("triage") as client:
        answer = classify(client, job["uuid"], cause="task.exception")
        after = events(client, job["uuid"])
    assert answer.status_code == 409, answer.text
    assert answer.json()["state"] == state
    assert "only a CRASHED job can be classified" in answer.json()["message"]
    assert after == before


def test_bad_classifications_are_refused_naming_the_field(server: LiveServer) -> None:
    with server.client("both") as client:
        job = mystery_crash(client)
    with server.client("triage") as client:
        for body, field in (
            ({"cause": "Not A Code"}, "cause"),
            ({"blame": "nobody", "cause": "task.exception"}, "blame"),
            ({}, "cause"),
            ({"cause": "task.exception", "note": "x" * 2001}, "note"),
            ({"cause": "task.exception", "color": "red"}, "color"),
        ):
            answer = classify(client, job["uuid"], **body)
            assert answer.status_code == 400, body
            assert field in answer.json()["message"], (body, answer.text)
        missing = classify(client, "0190b6d4-0000-7000-8000-000000000000", cause="task.exception")
        assert missing.status_code == 404
        unknown = classify(client, job["uuid"], cause="mystery.segfault")
        assert unknown.status_code == 200
    assert unknown.json()["blame"] == "UNKNOWN"  # an unknown cause has no default blame
    assert "not in the cause catalogue" in unknown.json()["warnings"][0]


def test_a_retryable_classification_schedules_a_retry_and_another_cancels_it(
    server: LiveServer,
) -> None:
    with server.client("both") as client:
        job = mystery_crash(client)
    assert job["retry_at"] is None
    with server.client("triage") as client:
        retry = classify(client, job["uuid"], blame="THIRD_PARTY", cause="koji.timeout")
        assert retry.status_code == 200, retry.text
        assert retry.json()["retry_at"] is not None
        assert retry.json()["retry"].startswith("this will schedule a retry at")
        again = classify(client, job["uuid"], blame="THIRD_PARTY", cause="koji.timeout")
        assert again.json()["retry_at"] == retry.json()["retry_at"], "never postponed"
        cancel = classify(client, job["uuid"], blame="TASK", cause="task.exception")
    assert cancel.json()["retry_at"] is None
    assert cancel.json()["retry"].startswith("this will cancel the retry due at")


def test_a_later_report_never_overwrites_what_a_person_said(server: LiveServer) -> None:
    """The watchdog crashes a job, a person classifies it, and then the executor's own late
    CRASHED report, with a log the rules recognise, replaces the watchdog's verdict: the
    person's blame and cause stay."""
    with server.client("both") as client:
        job = job_in(client, "RUNNING")
    services = server.services
    crashed = services.jobs.claim_report(
        uuid.UUID(job["uuid"]),
        JobReport(state="CRASHED", cause="watchdog.timeout", details="no heartbeat"),
        SYSTEM,
        utcnow(),
        still=lambda j: True,
    )
    assert crashed is not None
    with server.client("triage") as client:
        answer = classify(client, job["uuid"], blame="TASKOTRON", cause="minion.creation_failed")
        assert answer.status_code == 200, answer.text
    with server.client("report") as client:
        late = report(client, job["uuid"], state="CRASHED", log=log_ending(KOJI_TIMEOUT))
        history = events(client, job["uuid"])
    assert late.status_code == 200, late.text
    stored = late.json()
    assert history[-1]["outcome"] == "replaced"
    assert (stored["blame"], stored["cause"], stored["classified_by"]) == (
        "TASKOTRON",
        "minion.creation_failed",
        "person",
    )
