"""Every transition, allowed and refused, through the HTTP API on both databases."""

from __future__ import annotations

import itertools

import pytest

from execdb.jobs.states import ALLOWED
from execdb.vocabulary import State
from tests.helpers import INTO, events, job_in, report
from tests.live import LiveServer

PAIRS = list(itertools.product(State, State))


@pytest.mark.parametrize(("start", "target"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_every_transition(server: LiveServer, start: State, target: State) -> None:
    with server.client("admin") as client:
        job = job_in(client, start)
        before = events(client, job["uuid"])
        response = report(client, job["uuid"], **INTO[target])
        history = events(client, job["uuid"])
        now = client.get(f"/api/v1/jobs/{job['uuid']}").json()

    assert len(history) == len(before) + 1, "every report is recorded"
    last = history[-1]
    assert (last["from_state"], last["to_state"], last["actor"]) == (start, target, "test-admin")
    if target in ALLOWED[start]:
        assert response.status_code == 200, response.text
        assert now["state"] == target
        assert last["outcome"] == "accepted"
    elif target == start:
        # The same report again (INTO is deterministic): harmless, nothing changes.
        assert response.status_code == 200, response.text
        assert last["outcome"] == "repeated"
        assert now == {k: v for k, v in job.items() if k != "warnings"}
    else:
        assert response.status_code == 409, response.text
        body = response.json()
        assert body["state"] == start
        assert start in body["message"]
        assert target in body["message"]
        assert now["state"] == start
        assert now["updated_at"] == job["updated_at"]
        assert last["outcome"] == "refused"
        assert last["payload"]["state"] == target


def test_timestamps_follow_the_life_of_a_job(server: LiveServer) -> None:
    with server.client("admin") as client:
        job = job_in(client, "SCHEDULED")
        assert job["started_at"] is None
        assert job["finished_at"] is None
        assert job["attempt"] == 1
        running = report(client, job["uuid"], **INTO["RUNNING"]).json()
        assert running["started_at"] >= job["created_at"]
        assert running["executor"] == {"name": "buildbot", "build": 7}
        assert running["finished_at"] is None
        done = report(client, job["uuid"], state="FINISHED").json()
    assert done["finished_at"] >= running["started_at"]
    assert done["updated_at"] == done["finished_at"]
    assert done["executor"] == running["executor"], "the executor is kept to the end"
    assert done["blame"] is None


def test_a_repeated_report_changes_nothing(server: LiveServer) -> None:
    with server.client("report") as reporter, server.client("create") as creator:
        job = creator.post(
            "/api/v1/jobs", json={"task": "t", "item": "i", "item_type": "koji_build"}
        ).json()
        crash = {"state": "CRASHED", "cause": "koji.timeout", "details": "no answer"}
        first = report(reporter, job["uuid"], **crash)
        again = report(reporter, job["uuid"], **crash)
        history = events(reporter, job["uuid"])
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert [e["outcome"] for e in history] == ["accepted", "accepted", "repeated"]


def test_a_conflicting_repeat_is_refused_and_recorded(server: LiveServer) -> None:
    with server.client("admin") as client:
        job = job_in(client, "CRASHED")
        response = report(client, job["uuid"], state="CRASHED", cause="koji.timeout")
        history = events(client, job["uuid"])
        now = client.get(f"/api/v1/jobs/{job['uuid']}").json()
    assert response.status_code == 409
    assert "different content" in response.json()["message"]
    assert now["cause"] == "task.exception"
    assert history[-1]["outcome"] == "refused"
    assert history[-1]["payload"]["cause"] == "koji.timeout"


def test_unknown_job_is_404(server: LiveServer) -> None:
    missing = "01a22016-e421-76f8-983a-2086a5386e78"
    with server.client("admin") as client:
        for response in (
            client.get(f"/api/v1/jobs/{missing}"),
            client.get(f"/api/v1/jobs/{missing}/events"),
            report(client, missing, state="RUNNING"),
        ):
            assert response.status_code == 404
            assert missing in response.json()["message"]
