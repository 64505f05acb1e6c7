"""Rules saved in the database, over HTTP on SQLite and PostgreSQL: saving (and refusing),
versions, the backtest on a known set of stored runs, applying a rule, and a rule saved
through one server process taking effect in another."""

from __future__ import annotations

import time
from typing import Any

import httpx

from execdb.config import Settings
from execdb.services import Services
from tests.conftest import Databases, settings_for
from tests.functional.test_classification import KOJI_TIMEOUT, log_ending
from tests.helpers import events, job_in, report
from tests.live import LiveServer, StartServer, make_tokens, prepare

WIDGET = "widgetd: frobnication failed with code 7 on unit 3"
RULE: dict[str, Any] = {
    "id": "site.widget_frobnication",
    "cause": "task.exception",
    "blame": "TASK",
    "precedence": 50,
    "description": "The widget daemon could not frobnicate.",
    "match": [r"widgetd: frobnication failed with code \d+"],
    "examples": [WIDGET],
    "note": "seen on the widget tasks",
    "bug": "https://bugzilla.example.org/123",
}


def crash(client: httpx.Client, log: str, **body: Any) -> dict[str, Any]:
    job = job_in(client, "RUNNING")
    answer = report(client, job["uuid"], state="CRASHED", log=log, **body)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def finish(client: httpx.Client, log: str) -> dict[str, Any]:
    job = job_in(client, "RUNNING")
    answer = report(client, job["uuid"], state="FINISHED", log=log)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def saved(client: httpx.Client) -> list[dict[str, Any]]:
    listing = client.get("/api/v1/rules")
    assert listing.status_code == 200, listing.text
    return [r for r in listing.json()["data"] if r["origin"] == "saved"]


def test_a_pattern_re2_refuses_is_a_422_naming_it_and_nothing_is_saved(
    server: LiveServer,
) -> None:
    bad = RULE | {"match": ["fine", r"(?<=widget)d: failed"]}
    with server.client("admin") as client:
        refused = client.post("/api/v1/rules", json=bad)
        unknown_cause = client.post("/api/v1/rules", json=RULE | {"cause": "no.such"})
        tried = client.post("/api/v1/rules/try", json={"rule": {**bad, "note": None}})
        left = saved(client)
    assert refused.status_code == 422
    message = refused.json()["message"]
    assert "match pattern 2" in message
    assert "(?<=widget)d: failed" in message
    assert "RE2 cannot compile it" in message
    assert unknown_cause.status_code == 422
    assert "no.such" in unknown_cause.json()["message"]
    assert tried.status_code in (400, 422)
    assert left == []


def test_writes_need_a_token_that_may_manage_rules(server: LiveServer) -> None:
    with server.client() as anonymous, server.client("report") as reporter:
        assert anonymous.post("/api/v1/rules", json=RULE).status_code == 401
        forbidden = reporter.post("/api/v1/rules", json=RULE)
        assert reporter.post("/api/v1/rules/try", json={"rule": {}}).status_code == 403
        assert reporter.post(f"/api/v1/rules/{RULE['id']}/disable").status_code == 403
        assert saved(reporter) == []
    assert forbidden.status_code == 403
    assert "triage" in forbidden.json()["message"]


def test_the_backtest_counts_a_known_set(make_server: StartServer) -> None:
    server = make_server(finished_log_sample=1)
    draft = {k: v for k, v in RULE.items() if k not in {"id", "note", "bug"}}
    with server.client("admin") as client:
        unknown = [crash(client, log_ending(WIDGET)) for _ in range(2)]
        by_reporter = crash(client, log_ending(WIDGET), cause="dnf.install_failed")
        koji_too = crash(client, log_ending(WIDGET) + KOJI_TIMEOUT + "\n")
        passing = finish(client, log_ending(WIDGET))
        crash(client, log_ending("something else entirely"))
        finish(client, log_ending("all good"))
        found = client.post("/api/v1/rules/try", json={"id": RULE["id"], "rule": draft})
        small = client.post("/api/v1/rules/try", json={"rule": draft, "max_logs": 3})
        stored = [client.get(f"/api/v1/jobs/{j['uuid']}").json() for j in unknown]
    assert found.status_code == 200, found.text
    result = found.json()
    assert result["scanned"]["logs"] == 7
    assert (result["scanned"]["crashed"], result["scanned"]["finished"]) == (5, 2)
    assert result["scanned"]["truncated"] is False
    crashed = result["crashed"]
    assert crashed["matched"] == 4
    assert crashed["would_change"] == 2
    assert crashed["protected"] == 1
    assert crashed["unchanged"] == 1  # the koji rule wins there: its answer stays
    assert crashed["decides"] == 3
    assert {c["uuid"] for c in crashed["changes"]} == {j["uuid"] for j in unknown}
    change = crashed["changes"][0]
    assert change["from"] == {"blame": "UNKNOWN", "cause": None, "classified_by": None}
    assert change["to"]["cause"] == "task.exception"
    assert change["to"]["rule"] == RULE["id"]
    assert change["text"] == WIDGET
    assert [j["uuid"] for j in crashed["protected_jobs"]] == [by_reporter["uuid"]]
    assert result["finished"]["matched"] == 1
    assert result["finished"]["jobs"][0]["uuid"] == passing["uuid"]
    assert result["finished"]["jobs"][0]["text"] == WIDGET
    overlaps = {o["rule"]: o["logs"] for o in result["overlaps"]}
    assert overlaps[koji_too["rule_id"]] == 1
    assert all(n == 1 for n in overlaps.values())  # only the log with the koji line
    assert small.json()["scanned"] | {"since": None} == {
        "logs": 3,
        "crashed": small.json()["scanned"]["crashed"],
        "finished": small.json()["scanned"]["finished"],
        "since": None,
        "max_logs": 3,
        "truncated": True,
    }
    assert all(s["cause"] is None for s in stored)  # trying changed nothing


def test_save_change_disable_and_apply(server: LiveServer) -> None:
    with server.client("admin") as client:
        before = crash(client, log_ending(WIDGET))
        person_free = crash(client, log_ending(WIDGET), cause="dnf.install_failed")
        created = client.post("/api/v1/rules", json=RULE)
        again = client.post("/api/v1/rules", json=RULE)
        after = crash(client, log_ending(WIDGET))
        applied = client.post(f"/api/v1/rules/{RULE['id']}/apply", json={"days": 1})
        reclassified = client.get(f"/api/v1/jobs/{before['uuid']}").json()
        untouched = client.get(f"/api/v1/jobs/{person_free['uuid']}").json()
        history = events(client, before["uuid"])
        body = {k: v for k, v in RULE.items() if k != "id"}
        changed = client.put(f"/api/v1/rules/{RULE['id']}", json=body | {"precedence": 55})
        disabled = client.post(f"/api/v1/rules/{RULE['id']}/disable", json={"note": "fixed"})
        gone = crash(client, log_ending(WIDGET))
        listed = saved(client)
        one = client.get(f"/api/v1/rules/{RULE['id']}").json()
        no_such = client.put("/api/v1/rules/site.nothing", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["in_use"]["origin"] == "saved"
    assert created.json()["in_use"]["author"] == "test-admin"
    assert created.json()["in_use"]["bug"] == RULE["bug"]
    assert again.status_code == 409
    assert (before["cause"], after["cause"], after["rule_id"]) == (
        None,
        "task.exception",
        RULE["id"],
    )
    assert after["rules_version"] != before["rules_version"]
    assert applied.status_code == 200, applied.text
    assert applied.json()["changed"] == 1
    assert (reclassified["cause"], reclassified["classified_by"]) == ("task.exception", "rules")
    assert reclassified["rules_version"] == after["rules_version"]
    assert (untouched["cause"], untouched["classified_by"]) == ("dnf.install_failed", "reporter")
    last = history[-1]
    assert last["actor"] == "test-admin"
    assert last["payload"]["reclassified"]["rules_version"] == after["rules_version"]
    assert last["payload"]["reclassified"]["from"]["cause"] is None
    assert changed.status_code == 200, changed.text
    assert changed.json()["in_use"]["version"] == 2
    assert disabled.status_code == 200
    assert gone["cause"] is None
    assert listed == []
    assert [v["version"] for v in one["versions"]] == [1, 2, 3]
    assert one["versions"][2]["disabled"] is True
    assert one["versions"][2]["note"] == "fixed"
    assert one["in_use"] is None
    assert no_such.status_code == 404


def test_hits_and_stale_rules_are_listed(server: LiveServer) -> None:
    with server.client("admin") as client:
        fired = crash(client, log_ending(KOJI_TIMEOUT))
        listing = client.get("/api/v1/rules").json()
    rules = {r["id"]: r for r in listing["data"]}
    hit = rules[fired["rule_id"]]
    assert (hit["hits_7d"], hit["hits_30d"], hit["stale"]) == (1, 1, False)
    assert hit["last_hit"] is not None
    assert hit["origin"] == "shipped"
    others = [r for r in listing["data"] if r["id"] != fired["rule_id"]]
    assert all(r["stale"] and r["last_hit"] is None for r in others)
    assert fired["rule_id"] not in listing["stale"]


def _process(settings: Settings, tokens: dict[str, str] | None = None) -> LiveServer:
    """A server of its own (its own services, rules cache and connections) on `settings`'
    database, as another `execdb serve` process would be."""
    if tokens is None:
        services = prepare(settings)
        tokens = make_tokens(services)
    else:
        services = Services.build(settings)
    return LiveServer(settings, services, tokens=tokens).start()


def test_a_rule_saved_through_one_process_is_used_by_another(
    backend: str, databases: Databases
) -> None:
    url = databases.url(backend)
    first = _process(settings_for(url, rules_refresh_seconds=0.2))
    second = _process(settings_for(url, rules_refresh_seconds=0.2), first.tokens)
    try:
        with first.client("admin") as one, second.client("admin") as other:
            before = crash(other, log_ending(WIDGET))
            assert one.post("/api/v1/rules", json=RULE).status_code == 201
            deadline = time.monotonic() + 10
            found = crash(other, log_ending(WIDGET))
            while found["cause"] is None and time.monotonic() < deadline:
                time.sleep(0.1)
                found = crash(other, log_ending(WIDGET))
    finally:
        first.stop()
        second.stop()
    assert (found["cause"], found["rule_id"]) == ("task.exception", RULE["id"])
    assert found["rules_version"] != before["rules_version"]
