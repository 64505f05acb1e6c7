"""Crashes grouped by signature, on SQLite and PostgreSQL: the signature stored with a crash,
searching and counting by it, /triage and classifying a group, "fixed by a retry" and
`latest=true`."""

from __future__ import annotations

from typing import Any

import httpx

from tests.functional.test_classification import KOJI_TIMEOUT, log_ending
from tests.functional.test_pages import text_of
from tests.functional.test_signin import browser, crash, csrf_of, sign_in
from tests.helpers import events, job_in, report
from tests.live import LiveServer

# Failures no shipped rule knows.
JAM = "frobnicator {n} jammed in /var/tmp/taskotron/{n}/x: giving up"
WIDGET = "widget check FAILED for build {n} on host qa{n}.qa.fedoraproject.org"
TIMES = "\u00d7"


def crashes(server: LiveServer, line: str, count: int, **job: Any) -> list[dict[str, Any]]:
    found = []
    for n in range(count):
        with server.client("both") as client:
            made = job_in(client, "RUNNING", item=f"pkg{n}-1.{n}-{n}.fc41", **job)
            answer = report(
                client, made["uuid"], state="CRASHED", log=log_ending(line.format(n=n * 37))
            )
            assert answer.status_code == 200, answer.text
            found.append(answer.json())
    return found


def test_a_crash_keeps_its_signature_and_search_and_statistics_take_it(
    server: LiveServer,
) -> None:
    jam = crashes(server, JAM, 3)
    widget = crashes(server, WIDGET, 2, arch="aarch64")
    koji = crash(server, log=log_ending(KOJI_TIMEOUT))
    signatures = {j["signature"] for j in jam}
    assert len(signatures) == 1, "the same failure in other directories groups together"
    (jam_signature,) = signatures
    assert jam[0]["signature_text"] == "frobnicator <n> jammed in <path>: giving up"
    assert jam[0]["signature_line"] == 42
    assert widget[0]["signature"] == widget[1]["signature"] != jam_signature
    assert koji["signature_text"].startswith("requests.exceptions.ReadTimeout")  # the evidence
    with server.client() as client:
        found = client.get("/api/v1/jobs", params={"signature": jam_signature}).json()["data"]
        assert {j["uuid"] for j in found} == {j["uuid"] for j in jam}
        both = client.get(
            "/api/v1/jobs", params={"signature": f"{jam_signature},{widget[0]['signature']}"}
        )
        assert len(both.json()["data"]) == 5
        stats = client.get("/api/v1/stats", params={"signature": jam_signature}).json()
        assert stats["by_state"]["CRASHED"] == 3
        bad = client.get("/api/v1/jobs", params={"signature": "not-a-signature"})
    assert bad.status_code == 400
    assert "16 hex digits" in bad.json()["message"]


def test_the_triage_page_groups_unclassified_crashes_biggest_first(server: LiveServer) -> None:
    jam = crashes(server, JAM, 3)
    crashes(server, WIDGET, 2, arch="aarch64", task="depcheck")
    crash(server, log=log_ending(KOJI_TIMEOUT))  # classified by the rules: not listed
    with httpx.Client(base_url=server.url) as client:
        page = client.get("/triage")
    assert page.status_code == 200
    words = text_of(page)
    assert "5 crashes with no cause" in words
    assert "in 2 groups" in words
    first, second = page.text.split('class="group"')[1:3]
    assert f"3 {TIMES} <code>frobnicator &lt;n&gt; jammed in &lt;path&gt;" in first
    assert "rpmlint</a> (3)" in first
    assert "x86_64 (3)" in first
    assert f'/jobs/{jam[-1]["uuid"]}#L42"' in first, "the newest example, at its line"
    assert f"2 {TIMES} <code>widget check FAILED for build &lt;n&gt; on host &lt;host&gt;" in second
    assert "aarch64 (2)" in second
    assert 'method="post"' not in page.text, "no form to classify without signing in"
    assert "ReadTimeout" not in words


def test_a_group_is_classified_at_once_and_leaves_the_page(server: LiveServer) -> None:
    jam = crashes(server, JAM, 3)
    crashes(server, WIDGET, 1)
    with browser(server) as client:
        sign_in(client, server, "triage", "/triage")
        page = client.get("/triage")
        form = {
            "csrf": csrf_of(page),
            "signature": jam[0]["signature"],
            "period": "7d",
            "blame": "TASKOTRON",
            "cause": "resources.disk_full",
            "note": "the minions' disks",
        }
        confirm = client.post("/triage/classify", data=form)
        assert confirm.status_code == 200, confirm.text
        assert "This will classify 3 crashes, schedule 3 retries" in text_of(confirm)
        done = client.post("/triage/classify", data={**form, "confirm": "yes"})
        assert done.status_code == 303
        after = client.get(done.headers["location"])
    words = text_of(after)
    assert "Classified 3 crashes as resources.disk_full" in words
    assert "frobnicator" not in words
    assert "1 crash with no cause" in words
    with server.client() as api:
        for job in jam:
            stored = api.get(f"/api/v1/jobs/{job['uuid']}").json()
            assert (stored["cause"], stored["classified_by"]) == ("resources.disk_full", "person")
            last = events(api, job["uuid"])[-1]
            assert (last["actor"], last["outcome"]) == ("test-triage", "classified")
            assert last["payload"]["note"] == "the minions' disks"


def test_a_crash_fixed_by_a_retry_is_marked_and_latest_keeps_the_newest_attempt(
    server: LiveServer,
) -> None:
    with server.client("admin") as client:
        first = job_in(client, "CRASHED")
        again = client.post(f"/api/v1/jobs/{first['uuid']}/reschedule")
        assert again.status_code == 201
        second = again.json()
        for state in ("RUNNING", "FINISHED"):
            assert report(client, second["uuid"], state=state).status_code == 200
        broken = job_in(client, "CRASHED", item="still-broken-1-1.fc41")
        latest = client.get("/api/v1/jobs", params={"latest": "true"}).json()["data"]
        every = client.get("/api/v1/jobs").json()["data"]
    assert {j["uuid"] for j in latest} == {second["uuid"], broken["uuid"]}
    assert len(every) == 3
    with httpx.Client(base_url=server.url) as client:
        job_page = text_of(client.get(f"/jobs/{first['uuid']}"))
        other_page = text_of(client.get(f"/jobs/{broken['uuid']}"))
        listing = client.get("/jobs", params={"state": "CRASHED"})
        still = client.get("/jobs", params={"state": "CRASHED", "latest": "true"})
    assert "fixed by a retry" in job_page
    assert "fixed by a retry" not in other_page
    rows = listing.text.split("<tbody>")[1].split("<tr>")[1:]
    marked = [r for r in rows if "fixed by a retry" in r]
    assert len(rows) == 2
    assert len(marked) == 1
    assert first["uuid"] in marked[0]
    assert first["uuid"] not in still.text
    assert 'name="latest" value="true" checked' in still.text
