"""Crashes grouped by signature, on SQLite and PostgreSQL: the signature stored with a crash,
searching and counting by it, /triage and classifying a group, "fixed by a retry" and
`latest=true`, and the signatures that crashes stored before them are given."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import select, update

from execdb.jobs.models import Job
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


def unsign(server: LiveServer, jobs: list[dict[str, Any]]) -> None:
    """Leave the crashes as migration 0007 left those stored before it: no signature."""
    ids = [uuid.UUID(j["uuid"]) for j in jobs]
    with server.services.db.write() as conn:
        conn.execute(
            update(Job)
            .where(Job.uuid.in_(ids))
            .values(signature=None, signature_text=None, signature_line=None)
        )


def signatures(server: LiveServer, jobs: list[dict[str, Any]]) -> list[str | None]:
    ids = [uuid.UUID(j["uuid"]) for j in jobs]
    with server.services.db.read() as conn:
        found = dict(conn.execute(select(Job.uuid, Job.signature).where(Job.uuid.in_(ids))).all())
    return [found[i] for i in ids]


def test_crashes_stored_without_a_signature_get_one_and_join_their_group(
    server: LiveServer,
) -> None:
    jam = crashes(server, JAM, 4)
    kin = jam[0]["signature"]
    with server.client("both") as client:
        job = job_in(client, "RUNNING")
        answer = report(
            client, job["uuid"], state="CRASHED", details=JAM.format(n=5) + "\nand more"
        )
        from_details = answer.json()
        reported = crash(
            server, blame="UNKNOWN", cause="koji.timeout", log=log_ending(JAM.format(n=6))
        )
        bare = job_in(client, "RUNNING")
        nothing = report(client, bare["uuid"], state="CRASHED").json()
    assert from_details["signature"] == kin, "the details' first line, masked"
    assert reported["classified_by"] == "reporter"
    old = [*jam[:3], from_details, reported, nothing]
    unsign(server, old)
    with httpx.Client(base_url=server.url) as client:
        before = text_of(client.get("/triage"))
    with server.client("admin") as client:
        history = len(events(client, jam[0]["uuid"]))
        dry = client.post("/api/v1/admin/reclassify", json={"dry_run": True}).json()
        unchanged = signatures(server, old)
        done = client.post("/api/v1/admin/reclassify", json={}).json()
        again = client.post("/api/v1/admin/reclassify", json={}).json()
        found = client.get("/api/v1/jobs", params={"signature": kin}).json()["data"]
    with httpx.Client(base_url=server.url) as client:
        after = text_of(client.get("/triage"))
    assert f"1 {TIMES} frobnicator <n> jammed" in before
    assert f"6 {TIMES} no log and no details" in before
    assert (dry["signed"], unchanged) == (5, [None] * 6), "a dry run writes nothing"
    assert (done["signed"], done["changed"]) == (5, 0)
    assert again["signed"] == 0, "a second run finds nothing left to sign"
    assert signatures(server, old) == [kin] * 5 + [None]
    assert {j["uuid"] for j in found} == {j["uuid"] for j in [*jam, from_details, reported]}
    with server.client() as client:
        stored = client.get(f"/api/v1/jobs/{jam[0]['uuid']}").json()
        assert len(events(client, jam[0]["uuid"])) == history, "derived data: no event"
    assert (stored["signature_text"], stored["signature_line"]) == (jam[0]["signature_text"], 42)
    assert f"6 {TIMES} frobnicator <n> jammed in <path>: giving up" in after
    assert f"1 {TIMES} no log and no details" in after
