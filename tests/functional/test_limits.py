"""What ExecDB keeps of large reports and jobs, and how large its answers can get."""

from __future__ import annotations

import json
from typing import Any

import httpx

from execdb.jobs.limits import json_size
from tests.helpers import NEW_JOB, create_job, events, job_in, report
from tests.live import LiveServer


def sized(size: int, **fields: Any) -> dict[str, Any]:
    """A JSON object of exactly `size` bytes as compact UTF-8: `fields` and a filler."""
    value = {**fields, "filler": ""}
    value["filler"] = "x" * (size - json_size(value))
    assert json_size(value) == size
    return value


def jobs_in_history(client: httpx.Client) -> int:
    return len(client.get("/api/v1/jobs", params={"limit": 1000}).json()["data"])


def test_trigger_data_over_its_limit_is_413_and_makes_no_job(server: LiveServer) -> None:
    with server.client("admin") as client:
        fits = client.post("/api/v1/jobs", json=NEW_JOB | {"trigger_data": sized(65536)})
        over = client.post(
            "/api/v1/jobs", json=NEW_JOB | {"msg_id": "m-2", "trigger_data": sized(65537)}
        )
        made = jobs_in_history(client)
    assert fits.status_code == 201, fits.text[:200]
    assert over.status_code == 413
    assert over.json()["message"] == "trigger_data: 65537 bytes of JSON, over the 65536-byte limit"
    assert made == 1, "the refused job was not made"


def test_sizes_are_of_compact_utf8_json(server: LiveServer) -> None:
    spacious = sized(65536, note="é")  # é is two bytes, one character
    body = json.dumps(NEW_JOB | {"trigger_data": spacious}, indent=8, ensure_ascii=True)
    one_more = {**spacious, "filler": spacious["filler"][1:] + "é"}
    with server.client("admin") as client:
        taken = client.post(
            "/api/v1/jobs", content=body, headers={"Content-Type": "application/json"}
        )
        over = client.post("/api/v1/jobs", json=NEW_JOB | {"trigger_data": one_more})
    assert len(body) > 65536, "whitespace and escapes do not count"
    assert taken.status_code == 201, taken.text[:200]
    assert len(json.dumps(one_more, ensure_ascii=False, separators=(",", ":"))) == 65535
    assert over.status_code == 413, "but the bytes of non-ASCII text do"


def test_executor_over_its_limit_is_413_and_changes_nothing(server: LiveServer) -> None:
    with server.client("admin") as client:
        job = create_job(client)
        over = report(client, job["uuid"], state="RUNNING", executor=sized(16385, name="bb"))
        history = events(client, job["uuid"])
        fits = report(client, job["uuid"], state="RUNNING", executor=sized(16384, name="bb"))
    assert over.status_code == 413
    assert over.json()["message"].startswith("executor: 16385 bytes of JSON, over the 16384")
    assert [e["to_state"] for e in history] == ["SCHEDULED"], "not even recorded"
    assert fits.status_code == 200, fits.text[:200]
    assert fits.json()["executor"]["name"] == "bb"


def test_the_limits_are_settings(make_server) -> None:  # type: ignore[no-untyped-def]
    server: LiveServer = make_server(executor_max_bytes=2048, trigger_data_max_bytes=1024)
    with server.client("admin") as client:
        job = client.post("/api/v1/jobs", json=NEW_JOB | {"trigger_data": sized(1025)})
        running = job_in(client, "SCHEDULED")
        started = report(client, running["uuid"], state="RUNNING", executor=sized(2049))
    assert job.status_code == 413
    assert "1024-byte limit" in job.json()["message"]
    assert started.status_code == 413
    assert "2048-byte limit" in started.json()["message"]


def test_a_refused_report_is_kept_shortened(server: LiveServer) -> None:
    with server.client("admin") as client:
        job = job_in(client, "FINISHED")
        late_start = report(client, job["uuid"], state="RUNNING", executor=sized(16384, name="bb"))
        late_crash = report(
            client,
            job["uuid"],
            state="CRASHED",
            blame="THIRD_PARTY",
            cause="koji.timeout",
            details="HEAD" + "x" * 200_000 + "TAIL",
        )
        escapes = report(client, job["uuid"], state="CANCELLED", details="\x01" * 100_000)
        start, crash, cancel = events(client, job["uuid"])[-3:]
    assert [late_start.status_code, late_crash.status_code, escapes.status_code] == [409] * 3
    assert [e["outcome"] for e in (start, crash, cancel)] == ["refused"] * 3
    for event in (start, crash, cancel):
        assert json_size(event["payload"]) <= 4096, event["payload"]
    assert start["payload"] == {
        "state": "RUNNING",
        "executor": "[16384 bytes of JSON left out by ExecDB]",
    }
    assert {k: crash["payload"][k] for k in ("state", "blame", "cause")} == {
        "state": "CRASHED",
        "blame": "THIRD_PARTY",
        "cause": "koji.timeout",
    }
    details = crash["payload"]["details"]
    assert details.startswith("HEAD")
    assert details.endswith("TAIL")
    assert "bytes omitted by ExecDB" in details
    assert cancel["payload"]["details"].startswith("\x01")


def test_a_repeated_report_is_kept_shortened_and_the_accepted_one_whole(
    server: LiveServer,
) -> None:
    crash = {"state": "CRASHED", "cause": "task.exception", "details": "trace " * 10_000}
    with server.client("admin") as client:
        job = job_in(client, "RUNNING")
        first = report(client, job["uuid"], **crash)
        again = report(client, job["uuid"], **crash)
        accepted, repeated = events(client, job["uuid"])[-2:]
    assert (first.status_code, again.status_code) == (200, 200)
    assert (accepted["outcome"], repeated["outcome"]) == ("accepted", "repeated")
    assert accepted["payload"]["details"] == crash["details"] == first.json()["details"]
    assert json_size(repeated["payload"]) <= 4096
    assert repeated["payload"]["cause"] == "task.exception"
