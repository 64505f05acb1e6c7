"""Searching jobs: ResultsDB-style filters and keyset paging."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.helpers import create_job, report
from tests.live import LiveServer


def uuids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [job["uuid"] for job in response.json()["data"]]


@pytest.fixture
def seeded(server: LiveServer) -> dict[str, Any]:
    """Six jobs, oldest first, in a spread of states, tasks, arches and causes."""
    with server.client("admin") as client:
        jobs = [
            create_job(client, task="rpmlint", item="foo-1.0-1.fc40", arch="x86_64"),
            create_job(client, task="rpmlint", item="bar-2.0-1.fc40", arch="aarch64"),
            create_job(client, task="rpmdeplint", item="foo-1.0-1.fc40", msg_id="m-7"),
            create_job(client, task="depcheck", item="FEDORA-2026-1", item_type="bodhi_update"),
            create_job(client, task="dist.abicheck", item="baz_x-1.0", arch="x86_64"),
            create_job(client, task="rpmlint", item="qux-100%-1", arch="noarch"),
        ]
        for job, crash in zip(
            jobs[:4],
            [
                ("koji.timeout", None),
                ("koji.build_not_found", None),
                ("bodhi.error", None),
                ("task.exception", "TASK"),
            ],
            strict=True,
        ):
            report(client, job["uuid"], state="RUNNING")
            cause, blame = crash
            report(client, job["uuid"], state="CRASHED", cause=cause, blame=blame)
        report(client, jobs[4]["uuid"], state="RUNNING")
    return {"ids": [j["uuid"] for j in jobs], "jobs": jobs}


def newest_first(seeded: dict[str, Any], *indexes: int) -> list[str]:
    return [seeded["ids"][i] for i in sorted(indexes, reverse=True)]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, [0, 1, 2, 3, 4, 5]),
        ({"state": "CRASHED"}, [0, 1, 2, 3]),
        ({"state": "running,scheduled"}, [4, 5]),
        ({"task": "rpmlint"}, [0, 1, 5]),
        ({"task": "rpmlint,depcheck"}, [0, 1, 3, 5]),
        ({"task:like": "rpm*"}, [0, 1, 2, 5]),
        ({"task:like": "*.abi*"}, [4]),
        ({"item:like": "*100%*"}, [5]),
        ({"item:like": "baz_x*"}, [4]),
        ({"item:like": "baz%x*"}, []),
        ({"item": "foo-1.0-1.fc40"}, [0, 2]),
        ({"item_type": "bodhi_update"}, [3]),
        ({"arch": "x86_64,noarch"}, [0, 2, 3, 4, 5]),
        ({"arch": "aarch64"}, [1]),
        ({"blame": "third_party"}, [0, 1, 2]),
        ({"blame": "TASK"}, [3]),
        ({"cause": "koji"}, [0, 1]),
        ({"cause": "koji.timeout"}, [0]),
        ({"cause": "koji,bodhi"}, [0, 1, 2]),
        ({"cause": "ko"}, []),
        ({"msg_id": "m-7"}, [2]),
        ({"task": "rpmlint", "state": "CRASHED"}, [0, 1]),
        ({"since": "2000-01-01"}, [0, 1, 2, 3, 4, 5]),
        ({"since": "2000-01-01,2000-12-31"}, []),
        ({"since": "2999-01-01T00:00:00Z"}, []),
    ],
)
def test_filters(
    server: LiveServer, seeded: dict[str, Any], params: dict[str, str], expected: list[int]
) -> None:
    with server.client() as client:
        found = uuids(client.get("/api/v1/jobs", params=params))
    assert found == newest_first(seeded, *expected)


def test_a_repeated_parameter_means_or(server: LiveServer, seeded: dict[str, Any]) -> None:
    with server.client() as client:
        found = uuids(client.get("/api/v1/jobs?task=depcheck&task=dist.abicheck"))
    assert found == newest_first(seeded, 3, 4)


def test_like_patterns_take_underscores_and_percents_literally(server: LiveServer) -> None:
    with server.client("admin") as client:
        wanted = create_job(client, item="a_b%c-1.0")
        for decoy in ("aXb%c-1.0", "a_bXc-1.0", "aXbXc-1.0"):
            create_job(client, item=decoy)
        found = uuids(client.get("/api/v1/jobs", params={"item:like": "a_b%c*"}))
    assert found == [wanted["uuid"]]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"state": "DONE"}, "state"),
        ({"blame": "NOBODY"}, "blame"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-02-01,2026-01-01"}, "since"),
        ({"cause": "Koji!"}, "cause"),
        ({"cursor": "garbage"}, "cursor"),
        ({"colour": "red"}, "colour"),
        ({"period": "7 days"}, "period"),
        ({"period": "0d"}, "period"),
        ({"period": "7d", "since": "2026-01-01"}, "period"),
    ],
)
def test_bad_filters_are_400(server: LiveServer, params: dict[str, str], field: str) -> None:
    with server.client() as client:
        response = client.get("/api/v1/jobs", params=params)
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith(f"{field}:"), response.text


def test_paging_walks_forward_and_back(server: LiveServer) -> None:
    with server.client("admin") as client:
        made = [create_job(client, item=f"pkg-{n}")["uuid"] for n in range(25)]
        for n in range(0, 25, 5):
            create_job(client, task="other", item=f"pkg-{n}")
        newest = list(reversed(made))

        first = client.get("/api/v1/jobs", params={"task": "rpmlint", "limit": 10}).json()
        assert [j["uuid"] for j in first["data"]] == newest[:10]
        assert first["prev"] is None
        second = client.get(first["next"]).json()
        assert [j["uuid"] for j in second["data"]] == newest[10:20]
        third = client.get(second["next"]).json()
        assert [j["uuid"] for j in third["data"]] == newest[20:]
        assert third["next"] is None, "the last page says so"

        back = client.get(third["prev"]).json()
        assert [j["uuid"] for j in back["data"]] == newest[10:20]
        front = client.get(back["prev"]).json()
        assert [j["uuid"] for j in front["data"]] == newest[:10]
        assert front["prev"] is None, "the first page, reached backwards, says so too"
        assert front["next"] is not None
    assert "task=rpmlint" in second["next"], "links keep the filters"
    assert second["next"].startswith(server.url)


def test_paging_sees_new_jobs_only_on_the_first_page(server: LiveServer) -> None:
    with server.client("admin") as client:
        made = [create_job(client, item=f"pkg-{n}")["uuid"] for n in range(6)]
        first = client.get("/api/v1/jobs", params={"limit": 3}).json()
        late = create_job(client, item="late")["uuid"]
        second = client.get(first["next"]).json()
        again = client.get(second["prev"]).json()
    assert [j["uuid"] for j in second["data"]] == list(reversed(made[:3])), "no duplicates"
    assert late not in [j["uuid"] for j in again["data"]]
    assert again["prev"] is not None, "the newer job is one page further back"


def test_events_page_oldest_first(server: LiveServer) -> None:
    with server.client("admin") as client:
        job = create_job(client)
        report(client, job["uuid"], state="RUNNING")
        for _ in range(4):
            report(client, job["uuid"], state="RUNNING")
        page = client.get(f"/api/v1/jobs/{job['uuid']}/events", params={"limit": 4}).json()
        rest = client.get(page["next"]).json()
    assert [e["outcome"] for e in page["data"]] == ["accepted", "accepted", "repeated", "repeated"]
    assert [e["outcome"] for e in rest["data"]] == ["repeated", "repeated"]
    assert page["data"][0]["to_state"] == "SCHEDULED"
    assert rest["next"] is None


# Each of these, unbounded, held the event loop while its SQL was built and compiled, and on
# SQLite failed past the expression depth limit as a 503 that clients retried for a minute.
TOO_MUCH = [
    ("cause", "?cause=" + ",".join(["koji"] * 3000)),
    ("cause", "?" + "&".join(["cause=koji.timeout"] * 3000)),
    ("task", "?task=" + ",".join(f"t{n}" for n in range(101))),
    ("state", "?" + "&".join(["state=CRASHED"] * 101)),
    ("task:like", "?task:like=" + ",".join(["rpm*"] * 1000)),
    ("item:like", "?item:like=" + "x" * 60_000),
    ("item:like", "?item:like=" + "*x" * 17),
]


@pytest.mark.parametrize(
    ("parameter", "query"),
    TOO_MUCH,
    ids=[
        "3000-causes",
        "3000-repeated",
        "101-tasks",
        "101-states",
        "1000-patterns",
        "long",
        "17-*",
    ],
)
def test_filters_over_their_bounds_are_400_at_once(
    server: LiveServer, seeded: dict[str, Any], parameter: str, query: str
) -> None:
    with server.client() as client:
        client.get("/api/v1/jobs")  # a warm connection: time only the refusal
        started = time.monotonic()
        response = client.get("/api/v1/jobs" + query)
        took = time.monotonic() - started
    assert response.status_code == 400, response.text[:300]
    assert response.json()["message"].startswith(f"{parameter}: at most"), response.text[:300]
    assert took < 0.25, f"refused in {took:.3f} s"


def test_filters_at_their_bounds_are_answered(server: LiveServer, seeded: dict[str, Any]) -> None:
    causes = ["koji"] + [f"other{n}.cause" for n in range(99)]
    pattern = "f*" + "o" * 200 + "*" * 15
    with server.client() as client:
        by_cause = client.get("/api/v1/jobs", params={"cause": ",".join(causes)})
        by_pattern = client.get(
            "/api/v1/jobs", params={"item:like": ",".join(["foo*"] * 99 + [pattern])}
        )
    assert uuids(by_cause) == newest_first(seeded, 0, 1)
    assert uuids(by_pattern) == newest_first(seeded, 0, 2)


def test_the_statistics_and_the_job_list_page_take_the_same_bounds(server: LiveServer) -> None:
    query = "?cause=" + ",".join(["koji"] * 3000)
    with server.client() as client:
        stats = client.get("/api/v1/stats" + query)
        page = client.get("/jobs" + query)
    assert stats.status_code == 400
    assert stats.json()["message"] == "cause: at most 100 values (got 3000)"
    assert page.status_code == 400
    assert "cause: at most 100 values (got 3000)" in page.text
