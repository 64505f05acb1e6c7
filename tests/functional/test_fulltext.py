"""q= on the job search: full-text over crash details and kept logs, on SQLite (FTS5) and
PostgreSQL (tsvector, GIN), with the line that matched, and safe whatever the query holds."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from execdb.jobs import fulltext
from tests.functional.test_classification import log_ending
from tests.helpers import job_in, report
from tests.live import LiveServer

LINE = "fatal: the flux capacitor of unit-42 overheated at gigawatt level"


def crash(client: httpx.Client, **body: Any) -> dict[str, Any]:
    job = job_in(client, "RUNNING")
    answer = report(client, job["uuid"], state="CRASHED", **body)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def found(client: httpx.Client, q: str, **params: Any) -> list[dict[str, Any]]:
    answer = client.get("/api/v1/jobs", params={"q": q, **params})
    assert answer.status_code == 200, answer.text
    data: list[dict[str, Any]] = answer.json()["data"]
    return data


def test_q_finds_a_crash_by_a_word_of_its_log_and_not_by_an_absent_one(
    server: LiveServer,
) -> None:
    with server.client("both") as client:
        target = crash(client, log=log_ending(LINE))
        other = crash(client, log=log_ending("nothing to see"))
        by_details = crash(client, details="the koji hub said: Gateway Timeout (504)")
        by_word = found(client, "capacitor")
        by_two = found(client, "Flux  OVERHEATED")
        by_part = found(client, "unit")
        absent = found(client, "dilithium")
        half_absent = found(client, "capacitor dilithium")
        in_details = found(client, "gateway")
        narrowed = found(client, "capacitor", task="no-such-task")
    assert [j["uuid"] for j in by_word] == [target["uuid"]]
    assert by_word[0]["match"] == LINE
    assert [j["uuid"] for j in by_two] == [target["uuid"]]
    assert [j["uuid"] for j in by_part] == [target["uuid"]]
    assert absent == []
    assert half_absent == []
    assert [j["uuid"] for j in in_details] == [by_details["uuid"]]
    assert in_details[0]["match"] == "the koji hub said: Gateway Timeout (504)"
    assert narrowed == []
    assert other["uuid"] not in {j["uuid"] for j in by_part}


def test_q_pages_newest_first(server: LiveServer) -> None:
    with server.client("both") as client:
        made = [crash(client, log=log_ending(LINE))["uuid"] for _ in range(3)]
        first = client.get("/api/v1/jobs", params={"q": "capacitor", "limit": 2}).json()
        second = client.get(first["next"]).json()
    assert [j["uuid"] for j in first["data"]] == made[::-1][:2]
    assert [j["uuid"] for j in second["data"]] == made[:1]


def test_q_pages_through_matches_far_below_the_newest_crashes(server: LiveServer) -> None:
    # More crashes than PostgreSQL tests one by one (fulltext.walk_rows) lie between the
    # newest match and the older ones, which only the index finds.
    with server.client("both") as client:
        old = [crash(client, details=f"flux capacitor {n}")["uuid"] for n in range(3)]
        for n in range(fulltext.walk_rows(2)):
            crash(client, details=f"nothing to see {n}")
        new = crash(client, details="flux capacitor again")["uuid"]
        first = client.get("/api/v1/jobs", params={"q": "capacitor", "limit": 2}).json()
        second = client.get(first["next"]).json()
        back = client.get(second["prev"]).json()
        only_old = found(client, "capacitor 1")
    assert [j["uuid"] for j in first["data"]] == [new, old[2]]
    assert [j["uuid"] for j in second["data"]] == [old[1], old[0]]
    assert second["next"] is None
    assert [j["uuid"] for j in back["data"]] == [new, old[2]]
    assert back["prev"] is None
    assert [(j["uuid"], j["match"]) for j in only_old] == [(old[1], "flux capacitor 1")]


@pytest.mark.parametrize(
    "q",
    [
        '"capacitor',
        "capacitor AND",
        "OR capacitor NOT",
        "capacitor*",
        "NEAR(capacitor flux)",
        "capacitor:flux",
        "capacitor & !flux | (",
        "'); DROP TABLE jobs; --",
        "^capacitor",
        "c\u00e4pacitor",
    ],
)
def test_q_is_safe_with_hostile_query_syntax(server: LiveServer, q: str) -> None:
    with server.client("both") as client:
        target = crash(client, log=log_ending(LINE))
        answer = client.get("/api/v1/jobs", params={"q": q})
        still = client.get(f"/api/v1/jobs/{target['uuid']}")
    assert answer.status_code == 200, answer.text
    assert still.status_code == 200
    uuids = {j["uuid"] for j in answer.json()["data"]}
    assert uuids <= {target["uuid"]}


@pytest.mark.parametrize(
    ("q", "says"),
    [
        ("capacitor\x00", "control characters"),
        ('"" * ()', "no word"),
        ("x" * 201, "at most 200 characters"),
        (" ".join(f"w{n}" for n in range(9)), "at most 8 words"),
    ],
)
def test_q_refuses_what_it_cannot_search_for(server: LiveServer, q: str, says: str) -> None:
    with server.client("both") as client:
        answer = client.get("/api/v1/jobs", params={"q": q})
    assert answer.status_code == 400
    assert "q" in answer.json()["message"]
    assert says in answer.json()["message"]
