"""Reclassification over HTTP, on SQLite and PostgreSQL: crashes reported to a server with the
shipped rules, then reclassified by a server on the same database whose deployment added a
rules file, as an admin does after writing a new rule."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from execdb.db import utcnow
from execdb.jobs.reclassify import Scope
from execdb.services import Services
from execdb.vocabulary import Actor
from tests.conftest import Databases, settings_for
from tests.helpers import events, job_in, report
from tests.live import LiveServer, make_tokens, prepare

# The deployment's rules: one for a failure the shipped rules do not know, and one that
# outranks the shipped Koji timeout where the log shows the task's own mistake.
RULES = """\
["site.frobnicator"]
cause = "mirror.unavailable"
precedence = 70
description = "Our mirror proxy lost its upstream."
match = ['\\bFROBNICATOR: upstream gone\\b']
examples = ["FROBNICATOR: upstream gone"]

["site.task_bug"]
cause = "dnf.package_not_found"
precedence = 95
description = "The task asked our proxy for a package no repository has."
match = ['\\bSITE-TASK-BUG\\b']
examples = ["SITE-TASK-BUG: no such package"]
"""
KOJI_TIMEOUT = (
    "requests.exceptions.ReadTimeout: HTTPSConnectionPool(host='koji.fedoraproject.org', "
    "port=443): Read timed out. (read timeout=43200)"
)
BASE_URL = "https://execdb.example.org"
PROXY = "FROBNICATOR: upstream gone"
TASK_BUG = "SITE-TASK-BUG: no such package"


def log_of(*lines: str) -> str:
    return "\n".join(["runtask started", *lines, "cleaning up"]) + "\n"


@dataclass
class Deployment:
    before: LiveServer  # the shipped rules, which classified the crashes when reported
    after: LiveServer  # the same database, with the deployment's rules file
    rules_version: str


@pytest.fixture
def deployment(backend: str, databases: Databases, tmp_path: Path) -> Iterator[Deployment]:
    url = databases.url(backend)
    # One public address for both, so that they show a job alike.
    settings = settings_for(url, base_url=BASE_URL)
    services = prepare(settings)
    before = LiveServer(settings, services, tokens=make_tokens(services)).start()
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    with_rules = settings_for(url, base_url=BASE_URL, rules_file=rules)
    after = LiveServer(with_rules, Services.build(with_rules), tokens=before.tokens).start()
    try:
        yield Deployment(before, after, after.services.classifier.version)
    finally:
        after.stop()
        before.stop()


def crash(client: httpx.Client, **body: Any) -> dict[str, Any]:
    job = job_in(client, "RUNNING")
    answer = report(client, job["uuid"], state="CRASHED", **body)
    assert answer.status_code == 200, answer.text
    crashed: dict[str, Any] = answer.json()
    return crashed


def reclassify(server: LiveServer, **body: Any) -> httpx.Response:
    with server.client("admin") as client:
        return client.post("/api/v1/admin/reclassify", json=body)


def job(server: LiveServer, job_uuid: str) -> dict[str, Any]:
    with server.client() as client:
        found: dict[str, Any] = client.get(f"/api/v1/jobs/{job_uuid}").json()
        return found


def answer_of(job: dict[str, Any]) -> tuple[Any, ...]:
    return (job["blame"], job["cause"], job["rule_id"], job["classified_by"])


def test_a_crash_nobody_classified_gets_the_new_rules_answer(deployment: Deployment) -> None:
    with deployment.before.client("both") as client:
        nobody = crash(client, log=log_of(PROXY))
        symptom = crash(client, cause="status_file.missing", log=log_of(PROXY))
        koji = crash(client, log=log_of(KOJI_TIMEOUT))
    assert answer_of(nobody) == ("UNKNOWN", None, None, None)
    assert nobody["retry_at"] is None
    assert answer_of(symptom) == ("UNKNOWN", "status_file.missing", None, None)
    assert answer_of(koji)[:2] == ("THIRD_PARTY", "koji.timeout")

    done = reclassify(deployment.after)
    assert done.status_code == 200, done.text
    result = done.json()
    new = {"blame": "THIRD_PARTY", "cause": "mirror.unavailable", "rule_id": "site.frobnicator"}
    assert result["data"] == [
        {
            "uuid": nobody["uuid"],
            "href": f"{BASE_URL}/api/v1/jobs/{nobody['uuid']}",
            "old": {"blame": "UNKNOWN", "cause": None, "rule_id": None, "classified_by": None},
            "new": new | {"classified_by": "rules"},
            "retry_withdrawn": None,
        },
        {
            "uuid": symptom["uuid"],
            "href": f"{BASE_URL}/api/v1/jobs/{symptom['uuid']}",
            "old": {
                "blame": "UNKNOWN",
                "cause": "status_file.missing",
                "rule_id": None,
                "classified_by": None,
            },
            "new": new | {"classified_by": "rules"},
            "retry_withdrawn": None,
        },
    ]
    assert {k: result[k] for k in ("examined", "changed", "unchanged", "skipped")} == {
        "examined": 3,
        "changed": 2,
        "unchanged": 1,
        "skipped": 0,
    }
    assert (result["dry_run"], result["rules_version"], result["next"]) == (
        False,
        deployment.rules_version,
        None,
    )

    stored = job(deployment.after, nobody["uuid"])
    assert answer_of(stored) == ("THIRD_PARTY", "mirror.unavailable", "site.frobnicator", "rules")
    assert stored["rules_version"] == deployment.rules_version
    assert stored["evidence"] == [{"line": 2, "text": PROXY}]
    assert (stored["reported_blame"], stored["reported_cause"]) == (None, None)
    # A retryable cause found afterwards does not retry the crash retroactively.
    assert stored["retry_at"] is None
    assert job(deployment.after, symptom["uuid"])["reported_cause"] == "status_file.missing"
    assert job(deployment.after, koji["uuid"]) == job(deployment.before, koji["uuid"])

    with deployment.after.client() as client:
        last = events(client, nobody["uuid"])[-1]
        deliveries = client.get(f"/api/v1/jobs/{nobody['uuid']}/deliveries").json()["data"]
    assert (last["actor"], last["outcome"], last["from_state"], last["to_state"]) == (
        "test-admin",
        "accepted",
        "CRASHED",
        "CRASHED",
    )
    assert last["payload"]["reclassified"] == {
        "from": {"blame": "UNKNOWN", "cause": None, "rule_id": None, "classified_by": None},
        "to": new | {"classified_by": "rules"},
        "rules_version": deployment.rules_version,
        "evidence": [{"line": 2, "text": PROXY}],
    }
    assert last["message"] == (
        f"reclassified by rules {deployment.rules_version}: UNKNOWN (no cause) -> "
        "THIRD_PARTY mirror.unavailable (rule site.frobnicator)"
    )
    assert deliveries == [], "no notification is sent again"

    again = reclassify(deployment.after).json()
    assert (again["examined"], again["changed"], again["unchanged"]) == (3, 0, 3)


def test_a_reporters_cause_is_never_touched(deployment: Deployment) -> None:
    with deployment.before.client("both") as client:
        named = crash(client, blame="TASK", cause="task.exception", log=log_of(PROXY))
        agreed = crash(client, cause="koji.timeout", log=log_of(KOJI_TIMEOUT, TASK_BUG))
        before = [events(client, j["uuid"]) for j in (named, agreed)]
    result = reclassify(deployment.after).json()
    assert (result["examined"], result["changed"], result["data"]) == (0, 0, [])
    with deployment.after.client() as client:
        assert [events(client, j["uuid"]) for j in (named, agreed)] == before
    assert answer_of(job(deployment.after, named["uuid"])) == (
        "TASK",
        "task.exception",
        None,
        "reporter",
    )
    assert job(deployment.after, agreed["uuid"]) == job(deployment.before, agreed["uuid"])


def test_a_dry_run_lists_the_changes_and_writes_nothing(deployment: Deployment) -> None:
    with deployment.before.client("both") as client:
        crashed = crash(client, log=log_of(KOJI_TIMEOUT, TASK_BUG))
        history = events(client, crashed["uuid"])
    stored = job(deployment.before, crashed["uuid"])
    assert stored["retry_at"] is not None, "koji.timeout is retried by the shipped policy"

    dry = reclassify(deployment.after, dry_run=True)
    assert dry.status_code == 200, dry.text
    (change,) = dry.json()["data"]
    assert dry.json()["dry_run"] is True
    assert change["old"]["cause"] == "koji.timeout"
    assert change["new"] == {
        "blame": "TASK",
        "cause": "dnf.package_not_found",
        "rule_id": "site.task_bug",
        "classified_by": "rules",
    }
    assert "dnf.package_not_found is not retryable" in change["retry_withdrawn"]
    assert job(deployment.after, crashed["uuid"]) == stored
    with deployment.after.client() as client:
        assert events(client, crashed["uuid"]) == history


def test_a_pending_retry_is_withdrawn_when_the_new_cause_is_not_retried(
    deployment: Deployment,
) -> None:
    with deployment.before.client("both") as client:
        crashed = crash(client, log=log_of(KOJI_TIMEOUT, TASK_BUG))
    assert crashed["retry_at"] is not None
    (change,) = reclassify(deployment.after).json()["data"]
    assert change["new"]["cause"] == "dnf.package_not_found"
    reason = change["retry_withdrawn"]
    assert reason == "no retry rule matches and dnf.package_not_found is not retryable"
    stored = job(deployment.after, crashed["uuid"])
    assert (stored["blame"], stored["cause"], stored["retry_at"]) == (
        "TASK",
        "dnf.package_not_found",
        None,
    )
    assert stored["rescheduled_as"] is None
    with deployment.after.client() as client:
        last = events(client, crashed["uuid"])[-1]
    assert last["payload"]["retry"] == {"withdrawn": reason}
    assert last["payload"]["reclassified"]["from"]["rule_id"] == "koji.timed_out"
    assert last["message"].endswith(f"; the pending retry is withdrawn: {reason}")
    due = deployment.after.services.jobs.due_retries(utcnow().replace(year=2100))
    assert uuid.UUID(crashed["uuid"]) not in due


def test_a_job_rescheduled_meanwhile_is_decided_again_when_applied(
    deployment: Deployment,
) -> None:
    with deployment.before.client("both") as client:
        crashed = crash(client, log=log_of(KOJI_TIMEOUT, TASK_BUG))
    reclassifier = deployment.after.services.reclassifier
    (planned,) = reclassifier.batch(0, 10, Scope(), utcnow()).changes
    assert planned.retry_withdrawn is not None
    with deployment.after.client("admin") as client:
        again = client.post(f"/api/v1/jobs/{crashed['uuid']}/reschedule")
    assert again.status_code == 201, again.text
    applied = reclassifier.apply(planned.uuid, Actor("reclassify"), utcnow())
    assert applied is not None
    assert applied.retry_withdrawn is None, "the retry was made: nothing left to withdraw"
    stored = job(deployment.after, crashed["uuid"])
    assert (stored["cause"], stored["rescheduled_as"]) == (
        "dnf.package_not_found",
        again.json()["uuid"],
    )
    assert reclassifier.apply(planned.uuid, Actor("reclassify"), utcnow()) is None


def test_limit_and_after_page_through_the_crashes(deployment: Deployment) -> None:
    with deployment.before.client("both") as client:
        crashed = [crash(client, log=log_of(PROXY))["uuid"] for _ in range(3)]
    first = reclassify(deployment.after, limit=2, dry_run=True).json()
    assert [c["uuid"] for c in first["data"]] == crashed[:2]
    assert (first["examined"], first["next"]) == (2, crashed[1])
    rest = reclassify(deployment.after, limit=2, dry_run=True, after=first["next"]).json()
    assert [c["uuid"] for c in rest["data"]] == crashed[2:]
    assert (rest["examined"], rest["next"]) == (1, None)
    outside = reclassify(deployment.after, since="2000-01-01", until="2000-12-31").json()
    assert (outside["examined"], outside["changed"]) == (0, 0)
    today = utcnow().date().isoformat()
    inside = reclassify(deployment.after, dry_run=True, since=today, until=today).json()
    assert inside["examined"] == 3


@pytest.mark.parametrize("token", [None, "create", "report", "both", "revoked"])
def test_only_an_admin_token_may_reclassify(deployment: Deployment, token: str | None) -> None:
    with deployment.before.client("both") as client:
        crashed = crash(client, log=log_of(PROXY))
    with deployment.after.client(token) as client:
        refused = client.post("/api/v1/admin/reclassify", json={"dry_run": False})
    assert refused.status_code == (401 if token in (None, "revoked") else 403), refused.text
    if refused.status_code == 403:
        assert "lacks the scope 'admin'" in refused.json()["message"]
    assert job(deployment.after, crashed["uuid"])["cause"] is None


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ({"limit": 0}, "limit: Input should be greater than or equal to 1"),
        ({"limit": 1001}, "limit: Input should be less than or equal to 1000"),
        ({"since": "yesterday"}, "since: 'yesterday' is not an ISO 8601 date or time"),
        ({"until": 20261201}, "until: an ISO 8601 date or time, as a string"),
        ({"since": "2026-12-02", "until": "2026-12-01"}, "until: before since"),
        ({"dry_run": "yes"}, "dry_run: Input should be a valid boolean"),
        ({"after": "not-a-uuid"}, "after: Input should be a valid UUID"),
        ({"after": str(uuid.UUID(int=7))}, f"after: no job with uuid {uuid.UUID(int=7)}"),
        ({"bogus": 1}, "bogus: unknown field"),
        ([], "the body must be a JSON object"),
    ],
    ids=lambda v: str(v)[:40],
)
def test_a_bad_body_is_refused_naming_the_field(
    deployment: Deployment, body: Any, complaint: str
) -> None:
    with deployment.before.client("both") as client:
        crashed = crash(client, log=log_of(PROXY))
    with deployment.after.client("admin") as client:
        refused = client.post("/api/v1/admin/reclassify", json=body)
    assert refused.status_code == 400, refused.text
    assert complaint in refused.json()["message"]
    assert job(deployment.after, crashed["uuid"])["cause"] is None, "nothing was changed"
