"""Creating, reporting and reading jobs: what a trigger and an executor see."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.helpers import NEW_JOB, create_job, events, job_in, report
from tests.live import LiveServer, StartServer


def test_create_answers_the_job_with_links(server: LiveServer) -> None:
    with server.client("create") as client:
        job = create_job(client, msg_id="m-1", trigger_data={"build_id": 42, "tags": ["f40"]})
    assert uuid.UUID(job["uuid"]).version == 7, "time-ordered uuids"
    assert job["state"] == "SCHEDULED"
    assert job["href"] == f"{server.url}/api/v1/jobs/{job['uuid']}"
    assert job["page"] == f"{server.url}/jobs/{job['uuid']}"
    assert job["trigger_data"] == {"build_id": 42, "tags": ["f40"]}
    assert job["attempt"] == 1
    assert job["rescheduled_from"] is None
    assert job["rescheduled_as"] is None
    assert job["created_at"].endswith("Z")
    assert job["created_at"] == job["updated_at"]


def test_a_redelivered_message_gives_the_same_job(server: LiveServer) -> None:
    body = NEW_JOB | {"msg_id": "2026-abc", "trigger_data": {"n": 1}}
    with server.client("create") as client:
        first = client.post("/api/v1/jobs", json=body)
        again = client.post("/api/v1/jobs", json=body | {"trigger_data": {"n": 2}})
        other_arch = client.post("/api/v1/jobs", json=body | {"arch": "aarch64"})
        no_arch = client.post("/api/v1/jobs", json=body | {"arch": None})
        no_arch_again = client.post("/api/v1/jobs", json=body | {"arch": None})
        other_task = client.post("/api/v1/jobs", json=body | {"task": "rpmdeplint"})
        no_msg = [client.post("/api/v1/jobs", json=NEW_JOB) for _ in range(2)]
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["uuid"] == first.json()["uuid"]
    assert again.json()["trigger_data"] == {"n": 1}, "the first delivery's data is kept"
    assert other_arch.status_code == other_task.status_code == no_arch.status_code == 201
    assert no_arch_again.status_code == 200
    assert no_arch_again.json()["uuid"] == no_arch.json()["uuid"], "a null arch is a value too"
    assert [r.status_code for r in no_msg] == [201, 201], "without msg_id every post is a job"
    assert len({r.json()["uuid"] for r in [first, other_arch, other_task, no_arch, *no_msg]}) == 6


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"item": "i", "item_type": "k"}, "task"),
        (NEW_JOB | {"task": ""}, "task"),
        (NEW_JOB | {"task": " rpmlint"}, "task"),
        (NEW_JOB | {"item": "a\nb"}, "item"),
        (NEW_JOB | {"item": "xchat\u2028evil"}, "item"),
        (NEW_JOB | {"task": "rpm\x85lint"}, "task"),
        (NEW_JOB | {"item": "xchat-2.8.8-21\u202e04cf"}, "item"),
        (NEW_JOB | {"item_type": "koji\u2066_build"}, "item_type"),
        (NEW_JOB | {"arch": "x86\u2029_64"}, "arch"),
        (NEW_JOB | {"msg_id": "2026\u200f-abc"}, "msg_id"),
        (NEW_JOB | {"arch": 5}, "arch"),
        (NEW_JOB | {"task": "x" * 256}, "task"),
        (NEW_JOB | {"trigger_data": [1, 2]}, "trigger_data"),
        (NEW_JOB | {"colour": "red"}, "colour"),
    ],
)
def test_create_names_the_bad_field(
    server: LiveServer, body: dict[str, object], field: str
) -> None:
    with server.client("create") as client:
        response = client.post("/api/v1/jobs", json=body)
        listed = client.get("/api/v1/jobs").json()["data"]
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith(f"{field}:")
    assert listed == []


NOT_A_JOB = [
    (b"{not json", "the body is not valid JSON: key must be a string at line 1 column 2"),
    (b'{"task": "\xff"}', "the body is not valid JSON: invalid unicode code point"),
    (b"[1, 2]", "the body must be a JSON object"),
    (b'"RUNNING"', "the body must be a JSON object"),
    (b"", "the body must be a JSON object"),
]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        *NOT_A_JOB,
        (b'{"task": "t", "item": "i", "item_type": "k", "trigger_data": {"x": NaN}}', "NaN"),
    ],
)
def test_a_body_that_is_not_a_job_is_400(server: LiveServer, raw: bytes, expected: str) -> None:
    with server.client("create") as client:
        response = client.post(
            "/api/v1/jobs", content=raw, headers={"Content-Type": "application/json"}
        )
        listed = client.get("/api/v1/jobs").json()["data"]
    assert response.status_code == 400, response.text
    assert expected in response.json()["message"]
    assert listed == []


@pytest.mark.parametrize(("raw", "expected"), NOT_A_JOB)
def test_a_report_that_is_not_json_is_400(server: LiveServer, raw: bytes, expected: str) -> None:
    with server.client("admin") as client:
        job = create_job(client)
        response = client.patch(
            f"/api/v1/jobs/{job['uuid']}", content=raw, headers={"Content-Type": "application/json"}
        )
        events = client.get(f"/api/v1/jobs/{job['uuid']}/events").json()["data"]
    assert response.status_code == 400, response.text
    assert expected in response.json()["message"]
    assert len(events) == 1, "nothing but the creation is recorded"


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/json"]
)
def test_a_body_that_is_not_sent_as_json_gets_a_hint(
    server: LiveServer, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    with server.client("admin") as client:
        created = client.post("/api/v1/jobs", content=json.dumps(NEW_JOB), headers=headers)
        job = create_job(client)
        reported = client.patch(
            f"/api/v1/jobs/{job['uuid']}", content=b'{"state": "RUNNING"}', headers=headers
        )
    for response in (created, reported):
        assert response.status_code == 400
        assert "Content-Type: application/json" in response.json()["message"]


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/x+json"])
def test_json_media_types_are_accepted(server: LiveServer, content_type: str) -> None:
    with server.client("admin") as client:
        created = client.post(
            "/api/v1/jobs", content=json.dumps(NEW_JOB), headers={"Content-Type": content_type}
        )
    assert created.status_code == 201, created.text


def test_a_request_without_a_token_is_401_whatever_its_body(server: LiveServer) -> None:
    with server.client("admin") as admin:
        job = create_job(admin)
    with server.client() as anonymous:
        headers = {"Content-Type": "application/json"}
        created = anonymous.post("/api/v1/jobs", content=b"{nope", headers=headers)
        reported = anonymous.patch(f"/api/v1/jobs/{job['uuid']}", content=b"[", headers=headers)
    assert (created.status_code, reported.status_code) == (401, 401)


def test_nul_characters_are_stored_everywhere(server: LiveServer) -> None:
    with server.client("admin") as client:
        job = create_job(client, trigger_data={"k\x00": "v\x00"})
        report(client, job["uuid"], state="RUNNING", executor={"log": "a\x00b"})
        crashed = report(client, job["uuid"], state="CRASHED", details="bad\x00byte")
    assert crashed.status_code == 200, crashed.text
    assert crashed.json()["details"] == "bad\ufffdbyte"
    assert crashed.json()["trigger_data"] == {"k\ufffd": "v\ufffd"}


def test_blame_defaults_to_the_cause_and_is_case_insensitive(server: LiveServer) -> None:
    with server.client("admin") as client:
        cases = {
            ("koji.timeout", None): "THIRD_PARTY",
            ("dnf.package_not_found", None): "TASK",
            ("koji.timeout", "task"): "TASK",
            (None, None): "UNKNOWN",
            ("brand_new.failure", None): "UNKNOWN",
            (None, "Taskotron"): "TASKOTRON",
        }
        for (cause, blame), expected in cases.items():
            job = job_in(client, "RUNNING")
            body = {"state": "crashed", "cause": cause, "blame": blame}
            response = report(client, job["uuid"], **body)
            assert response.status_code == 200, response.text
            assert response.json()["blame"] == expected, (cause, blame)
            assert response.json()["state"] == "CRASHED"


def test_an_unknown_cause_is_kept_with_a_warning(server: LiveServer) -> None:
    with server.client("admin") as client:
        job = job_in(client, "RUNNING")
        response = report(client, job["uuid"], state="CRASHED", cause="selinux.denial")
        history = events(client, job["uuid"])
    assert response.status_code == 200
    assert response.json()["cause"] == "selinux.denial"
    assert "selinux.denial" in response.json()["warnings"][0]
    assert "catalogue" in history[-1]["message"]


@pytest.mark.parametrize(
    "cause", ["Koji.Timeout", "koji", "koji..x", "koji.time out", "k" * 101, "koji.timeout\n"]
)
def test_a_malformed_cause_is_400_and_changes_nothing(server: LiveServer, cause: str) -> None:
    with server.client("admin") as client:
        job = job_in(client, "RUNNING")
        response = report(client, job["uuid"], state="CRASHED", cause=cause)
        after = client.get(f"/api/v1/jobs/{job['uuid']}").json()
    assert response.status_code == 400
    assert response.json()["message"].startswith("cause:")
    assert after["state"] == "RUNNING"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"state": "FINISHED", "blame": "TASK"}, "blame"),
        ({"state": "CANCELLED", "cause": "koji.timeout"}, "cause"),
        ({"state": "RUNNING", "blame": "TASK"}, "blame"),
        ({"state": "FINISHED", "executor": {"a": 1}}, "executor"),
        ({"state": "CRASHED", "blame": "NOBODY"}, "blame"),
        ({"state": "DONE"}, "state"),
        ({"state": "CRASHED", "cuase": "koji.timeout"}, "cuase"),
        ({}, "state"),
    ],
)
def test_a_report_that_does_not_fit_its_state_is_400(
    server: LiveServer, body: dict[str, object], field: str
) -> None:
    with server.client("admin") as client:
        job = job_in(client, "RUNNING")
        response = report(client, job["uuid"], **body)
        history = events(client, job["uuid"])
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith(f"{field}:"), response.json()
    assert len(history) == 2, "an invalid request is not a report and changes nothing"


def test_long_details_keep_head_and_tail(make_server: StartServer) -> None:
    server: LiveServer = make_server(details_max_bytes=4096)
    details = "HEAD" + "é" * 10_000 + "TAIL"
    with server.client("admin") as client:
        job = job_in(client, "RUNNING")
        response = report(client, job["uuid"], state="CRASHED", details=details)
        history = events(client, job["uuid"])
        again = report(client, job["uuid"], state="CRASHED", details=details)
    body = response.json()
    assert response.status_code == 200
    kept = body["details"]
    assert kept.startswith("HEAD")
    assert kept.endswith("TAIL")
    assert len(kept.encode()) <= 4096
    assert "bytes omitted by ExecDB" in kept
    assert "4096-byte limit" in body["warnings"][0]
    assert history[-1]["payload"]["details"] == kept
    assert again.status_code == 200, "the same long report again is a harmless repeat"


def test_cancel_and_crash_clear_nothing_they_should_not(server: LiveServer) -> None:
    with server.client("admin") as client:
        job = job_in(client, "SCHEDULED")
        cancelled = report(client, job["uuid"], state="CANCELLED", details="superseded")
    assert cancelled.json()["details"] == "superseded"
    assert cancelled.json()["blame"] is None
    assert cancelled.json()["started_at"] is None
    assert cancelled.json()["finished_at"] is not None


def test_causes_are_listed(server: LiveServer) -> None:
    with server.client() as client:
        causes = {c["code"]: c for c in client.get("/api/v1/causes").json()["data"]}
    assert causes["koji.timeout"]["blame"] == "THIRD_PARTY"
    assert causes["koji.timeout"]["retryable"] is True
    assert causes["koji.timeout"]["family"] == "koji"
    for code in ("watchdog.timeout", "status_file.missing", "dnf.package_not_found"):
        assert causes[code]["description"]
    symptoms = {code for code, cause in causes.items() if cause["symptom"]}
    assert symptoms == {"status_file.missing", "status_file.invalid", "executor.timeout"}


def test_json_that_only_the_standard_library_parses_is_taken(server: LiveServer) -> None:
    # Escaped lone surrogates (what json.dumps writes for text decoded with surrogateescape),
    # a byte order mark, UTF-16: JSON all the same, and a report is never lost to them.
    headers = {"Content-Type": "application/json"}
    with server.client("admin") as client:
        bom = client.post(
            "/api/v1/jobs", content=b"\xef\xbb\xbf" + json.dumps(NEW_JOB).encode(), headers=headers
        )
        job = bom.json()
        running = client.patch(
            f"/api/v1/jobs/{job['uuid']}",
            content='{"state": "RUNNING"}'.encode("utf-16"),
            headers=headers,
        )
        finished = client.patch(
            f"/api/v1/jobs/{job['uuid']}",
            content=b'{"state": "FINISHED", "details": "log: caf\\udce9 \\ud800!"}',
            headers=headers,
        )
        deep = client.patch(f"/api/v1/jobs/{job['uuid']}", content=b"[" * 100_000, headers=headers)
    assert bom.status_code == 201, bom.text
    assert running.status_code == 200, running.text
    assert finished.status_code == 200, finished.text
    assert finished.json()["details"] == "log: caf\ufffd \ufffd!"
    assert deep.status_code == 400
    assert deep.json()["message"].startswith("the body is not valid JSON: recursion limit")
