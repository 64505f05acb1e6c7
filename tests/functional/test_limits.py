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


def all_pages(client: httpx.Client, url: str, **params: Any) -> list[list[dict[str, Any]]]:
    pages = []
    answer = client.get(url, params=params).json()
    while True:
        pages.append(answer["data"])
        if not answer["next"]:
            return pages
        answer = client.get(answer["next"]).json()


def test_after_300_hostile_reports_every_answer_stays_small(server: LiveServer) -> None:
    with server.client("admin") as client:
        job = job_in(client, "FINISHED")
        url = f"/api/v1/jobs/{job['uuid']}"
        hostile = {"state": "CRASHED", "cause": "koji.timeout", "details": "x" * 100_000}
        refused = [report(client, job["uuid"], **hostile).status_code for _ in range(299)]
        last = report(client, job["uuid"], state="CANCELLED", details="the very last report")
        one = client.get(url)
        first_page = client.get(f"{url}/events")
        biggest_page = client.get(f"{url}/events", params={"limit": 1000})
        pages = all_pages(client, f"{url}/events", limit=1000)
        web = client.get(f"/jobs/{job['uuid']}")
    assert set(refused) == {409}
    assert last.status_code == 409
    assert len(one.content) < 10_000
    assert len(first_page.json()["data"]) == 100
    assert len(first_page.content) < 100 * 4096 + 50_000
    assert len(biggest_page.content) < 1024 * 1024 + 100_000, "page_max_bytes bounds it"
    assert biggest_page.json()["next"], "and the rest is on the next page"
    history = [e for page in pages for e in page]
    assert [e["id"] for e in history] == sorted({e["id"] for e in history}), "all, in order"
    assert len(history) == 3 + 300, "created, RUNNING, FINISHED and the 300"
    assert web.status_code == 200
    assert len(web.content) < 400_000
    assert web.text.count('class="refused"') == 50, "the newest 50 reports"
    assert 'class="accepted"' not in web.text, "the oldest are left to the API"
    assert "the very last report" in web.text
    assert "Only the newest 50 reports are shown" in web.text


def test_a_job_list_page_ends_at_its_byte_budget(make_server) -> None:  # type: ignore[no-untyped-def]
    server: LiveServer = make_server(page_max_bytes=65536)
    with server.client("admin") as client:
        made = [
            create_job(client, item=f"pkg-{n}", trigger_data=sized(30_000))["uuid"]
            for n in range(7)
        ]
        small = create_job(client, item="small")["uuid"]
        pages = all_pages(client, "/api/v1/jobs", limit=20)
        last = client.get("/api/v1/jobs", params={"limit": 20, "item": "pkg-0"}).json()
        second = client.get(client.get("/api/v1/jobs", params={"limit": 20}).json()["next"])
        back = client.get(second.json()["prev"]).json()
    newest_first = [small, *reversed(made)]
    assert [[j["uuid"] for j in page] for page in pages] == [
        newest_first[:3],
        newest_first[3:5],
        newest_first[5:7],
        newest_first[7:],
    ], "two 30 kB jobs a page (and the small one), each whole"
    big = [j for page in pages for j in page if j["uuid"] in made]
    assert all(len(j["trigger_data"]["filler"]) > 29_000 for j in big), "fetched whole"
    assert last["next"] is None
    assert [j["uuid"] for j in back["data"]] == newest_first[:3], "paging back keeps bounds"
