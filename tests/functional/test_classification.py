"""Crash classification in the report path, over HTTP on SQLite and PostgreSQL: the log a
report carries, what ExecDB keeps of it, and what the rules conclude from it."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.helpers import create_job, events, job_in, report
from tests.live import LiveServer, StartServer

KOJI_TIMEOUT = (
    "requests.exceptions.ReadTimeout: HTTPSConnectionPool(host='koji.fedoraproject.org', "
    "port=443): Read timed out. (read timeout=43200)"
)
NO_PACKAGE = "Error: Unable to find a match: python3-nosuchthing"


def log_ending(last: str, lines: int = 40) -> str:
    """A run's output: ordinary lines, then the error, then a little teardown."""
    body = [
        f"[libtaskotron:runner.py:{n}] 2026-12-02 12:00:{n % 60:02d} DEBUG step {n} done"
        for n in range(lines)
    ]
    return "\n".join([*body, "Traceback (most recent call last):", last, "cleaning up"]) + "\n"


def crashed(client: httpx.Client, **body: Any) -> dict[str, Any]:
    job = job_in(client, "RUNNING")
    answer = report(client, job["uuid"], state="CRASHED", **body)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def test_a_crash_with_a_log_and_no_cause_is_classified_by_the_rules(server: LiveServer) -> None:
    log = log_ending(KOJI_TIMEOUT)
    with server.client("both") as client:
        job = crashed(client, log=log, details="runtask exited 1")
        stored = client.get(f"/api/v1/jobs/{job['uuid']}").json()
        kept = client.get(f"/api/v1/jobs/{job['uuid']}/log")
        history = events(client, job["uuid"])
    assert (stored["blame"], stored["cause"], stored["classified_by"]) == (
        "THIRD_PARTY",
        "koji.timeout",
        "rules",
    )
    assert (stored["reported_blame"], stored["reported_cause"]) == (None, None)
    assert stored["rule_id"] is not None
    assert len(stored["rules_version"]) == 12
    assert stored["evidence"] == [{"line": 42, "text": KOJI_TIMEOUT}]
    assert log.splitlines()[41] == KOJI_TIMEOUT
    assert (stored["rules_blame"], stored["rules_cause"]) == (None, None)
    assert kept.status_code == 200
    assert kept.headers["content-type"] == "text/plain; charset=utf-8"
    assert kept.text == log
    last = history[-1]["payload"]
    assert "blame" not in last
    assert "cause" not in last
    assert last["log"] == f"{len(log)} bytes"
    assert last["classification"]["cause"] == "koji.timeout"
    assert last["classification"]["classified_by"] == "rules"


def test_a_symptom_cause_is_refined_and_a_named_one_stays(server: LiveServer) -> None:
    with server.client("both") as client:
        symptom = crashed(client, cause="status_file.missing", log=log_ending(KOJI_TIMEOUT))
        named = crashed(client, blame="TASK", cause="task.exception", log=log_ending(KOJI_TIMEOUT))
        agreed = crashed(client, cause="koji.timeout", log=log_ending(KOJI_TIMEOUT))
        stats = client.get("/api/v1/stats").json()
        series = client.get("/api/v1/stats", params={"interval": "day"}).json()["series"]
    (today,) = [b for b in series["buckets"] if b["total"]]
    assert today["by_classification"] == {"reporter": 2, "rules": 1, "person": 0, "nobody": 0}
    assert (symptom["blame"], symptom["cause"], symptom["classified_by"]) == (
        "THIRD_PARTY",
        "koji.timeout",
        "rules",
    )
    assert (symptom["reported_blame"], symptom["reported_cause"]) == (None, "status_file.missing")
    assert (named["blame"], named["cause"], named["classified_by"]) == (
        "TASK",
        "task.exception",
        "reporter",
    )
    assert (named["rules_blame"], named["rules_cause"]) == ("THIRD_PARTY", "koji.timeout")
    assert named["evidence"] == [{"line": 42, "text": KOJI_TIMEOUT}]
    assert (agreed["classified_by"], agreed["rules_cause"]) == ("reporter", None)
    assert stats["disagreements"] == 1
    assert stats["by_classification"] == {"reporter": 2, "rules": 1, "person": 0, "nobody": 0}


def test_a_crash_without_a_log_has_no_classification_and_no_log(server: LiveServer) -> None:
    with server.client("both") as client:
        named = crashed(client, cause="koji.timeout")
        bare = crashed(client)
        unknown = crashed(client, log="nothing anyone recognises\n")
        no_log = client.get(f"/api/v1/jobs/{named['uuid']}/log")
        no_job = client.get(f"/api/v1/jobs/{uuid.uuid4()}/log")
    assert (named["classified_by"], named["rules_version"], named["rule_id"]) == (
        "reporter",
        None,
        None,
    )
    assert (bare["blame"], bare["cause"], bare["classified_by"]) == ("UNKNOWN", None, None)
    assert (unknown["blame"], unknown["cause"], unknown["classified_by"]) == (
        "UNKNOWN",
        None,
        None,
    )
    assert unknown["rules_version"] is not None
    assert unknown["evidence"] is None
    assert no_log.status_code == 404
    assert no_log.json() == {"message": f"job {named['uuid']} has no log kept"}
    assert no_job.status_code == 404
    assert "no job with uuid" in no_job.json()["message"]


def test_a_log_only_comes_with_finished_or_crashed(server: LiveServer) -> None:
    with server.client("both") as client:
        job = create_job(client)
        running = report(client, job["uuid"], state="RUNNING", log="x\n")
        cancelled = report(client, job["uuid"], state="CANCELLED", log="x\n")
        not_text = report(client, job["uuid"], state="CRASHED", log=["x"])
    assert running.status_code == 400
    assert "log: only a FINISHED or CRASHED report carries a log" in running.json()["message"]
    assert cancelled.status_code == 400
    assert "log:" in cancelled.json()["message"]
    assert not_text.status_code == 400
    assert "log" in not_text.json()["message"]


def test_a_long_log_keeps_its_tail_after_a_marker_line(make_server: StartServer) -> None:
    server = make_server(log_max_bytes=4096)
    log = log_ending(KOJI_TIMEOUT, lines=400)
    with server.client("both") as client:
        job = crashed(client, log=log)
        kept = client.get(f"/api/v1/jobs/{job['uuid']}/log").text
    assert len(kept.encode()) <= 4096
    marker = kept.splitlines()[0]
    omitted = len(log) - len(kept) + len(marker) + 1
    assert marker == f"[... {omitted} bytes at the start of the log left out by ExecDB ...]"
    assert log[omitted:] == kept[len(marker) + 1 :]
    assert log[omitted - 1] == "\n"  # cut on a line boundary
    assert job["warnings"] == [
        f"log: the first {omitted} bytes were left out to keep the last 4096 bytes at most"
    ]
    (evidence,) = job["evidence"]
    assert kept.splitlines()[evidence["line"] - 1] == KOJI_TIMEOUT
    assert job["cause"] == "koji.timeout"


def test_a_sample_of_passing_runs_keeps_its_log(make_server: StartServer) -> None:
    server = make_server(finished_log_sample=3)
    kept = []
    with server.client("both") as client:
        for _ in range(12):
            job = job_in(client, "RUNNING")
            answer = report(client, job["uuid"], state="FINISHED", log=log_ending(NO_PACKAGE))
            assert answer.status_code == 200, answer.text
            assert answer.json()["classified_by"] is None  # passing runs are not classified
            log_bytes = len(log_ending(NO_PACKAGE).encode())
            assert events(client, job["uuid"])[-1]["payload"]["log"] == f"{log_bytes} bytes"
            found = client.get(f"/api/v1/jobs/{job['uuid']}/log")
            assert found.status_code in (200, 404)
            kept.append((uuid.UUID(job["uuid"]).int % 3 == 0, found.status_code == 200))
    assert all(chosen == found for chosen, found in kept)
    assert any(found for _, found in kept)
