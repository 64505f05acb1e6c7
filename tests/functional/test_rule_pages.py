"""The rules pages over HTTP: /rules, and a rule made from a crash or from a group of one
signature on /rules/new (proposed, tried, saved, applied) with plain form posts; /jobs?q=
shows the matching line."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx

from tests.functional.test_classification import log_ending
from tests.functional.test_pages import text_of
from tests.functional.test_saved_rules import WIDGET, crash, finish
from tests.functional.test_signin import browser as browser_of
from tests.functional.test_signin import csrf_of, sign_in
from tests.helpers import events, job_in, report
from tests.live import LiveServer

PROPOSED = r"widgetd: frobnication failed with code \d+ on unit \d+"


def field(page: str, name: str) -> str:
    found = re.search(rf'<textarea id="r-{name}" name="{name}"[^>]*>([^<]*)</textarea>', page)
    if found is None:
        found = re.search(rf'<input id="r-{name}" name="{name}" type="\w+" value="([^"]*)"', page)
    assert found is not None, name
    return html.unescape(found.group(1))


def test_a_rule_made_from_a_crash_is_tried_saved_and_applied(server: LiveServer) -> None:
    with (
        server.client("admin") as client,
        browser_of(server) as browser,
        browser_of(server) as stranger,
    ):
        job = crash(client, log_ending(WIDGET))
        other = crash(client, log_ending(WIDGET))
        page = browser.get("/rules/new", params={"job": job["uuid"]})
        form = {
            "id": "site.widget",
            "cause": "task.exception",
            "precedence": "50",
            "description": field(page.text, "description"),
            "match": field(page.text, "match"),
            "examples": field(page.text, "examples"),
            "note": "from the page",
        }
        unsigned = stranger.post("/rules/new", data=form | {"action": "save"})
        sign_in(browser, server, "triage", "/rules/new")
        csrf = csrf_of(browser.get("/rules/new", params={"job": job["uuid"]}))
        forged = browser.post("/rules/new", data=form | {"action": "save", "csrf": "forged"})
        tried = browser.post("/rules/new", data=form | {"action": "try", "csrf": csrf})
        bad = browser.post(
            "/rules/new", data=form | {"match": "(?<=x)y", "action": "try", "csrf": csrf}
        )
        saved = browser.post("/rules/new", data=form | {"action": "save", "csrf": csrf})
        applied = browser.post("/rules/site.widget/apply", data={"csrf": csrf_of(saved)})
        forged_apply = browser.post("/rules/site.widget/apply", data={"csrf": "forged"})
        after = client.get(f"/api/v1/jobs/{other['uuid']}").json()
        listed = browser.get("/rules")
    assert page.status_code == 200
    assert field(page.text, "match") == PROPOSED
    assert field(page.text, "examples") == WIDGET
    assert unsigned.status_code == 401
    assert "Sign in" in page.text, "the form says how to be allowed to send it"
    assert forged.status_code == 403
    assert tried.status_code == 200
    assert "it would change <strong>2</strong>" in tried.text
    assert bad.status_code == 422
    assert "RE2 cannot compile it" in html.unescape(bad.text)
    assert saved.status_code == 200, saved.text
    assert "Saved: <code>site.widget</code>" in saved.text
    assert applied.status_code == 200
    assert "reclassified <strong>2</strong>" in applied.text
    assert forged_apply.status_code == 403
    assert (after["cause"], after["rule_id"]) == ("task.exception", "site.widget")
    assert "site.widget" in listed.text
    assert "v1 by test-triage" in listed.text


def test_the_jobs_form_searches_text_and_shows_the_line(server: LiveServer) -> None:
    with server.client("admin") as client:
        job = crash(client, log_ending(WIDGET))
        page = client.get("/jobs", params={"q": "frobnication"})
        none = client.get("/jobs", params={"q": "nothing_like_it"})
        hostile = client.get("/jobs", params={"q": "\x00"})
    assert page.status_code == 200
    assert job["uuid"] in page.text
    assert f"<code>{WIDGET}</code>" in page.text
    assert "No jobs match" in none.text
    assert hostile.status_code == 400


# A failure no shipped rule knows, on other builds, hosts and paths each time.
STUCK = "sprocketd: build {n} stuck on host qa{n}.qa.fedoraproject.org in /srv/work/{n}/tmp"
STUCK_PATTERN = r"sprocketd: build \d+ stuck on host [\w.:-]+ in \S+"


def stuck(client: httpx.Client, n: int, task: str) -> dict[str, Any]:
    job = job_in(client, "RUNNING", task=task, item=f"pkg{n}-1.0-{n}.fc41")
    answer = report(client, job["uuid"], state="CRASHED", log=log_ending(STUCK.format(n=n)))
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def test_a_rule_made_from_a_group_classifies_it_and_the_group_leaves_triage(
    server: LiveServer,
) -> None:
    with server.client("both") as client:
        group = [stuck(client, n, "rpmlint" if n % 3 else "depcheck") for n in range(1, 7)]
        passed = finish(client, log_ending("sprocketd: build 9 done on host qa9.example.org"))
    signature = group[0]["signature"]
    assert {j["signature"] for j in group} == {signature}
    with browser_of(server) as browser:
        triage = browser.get("/triage")
        link = f"/rules/new?signature={signature}"
        page = browser.get(link)
        sign_in(browser, server, "triage", link)
        csrf = csrf_of(browser.get(link))
        form = {
            name: field(page.text, name)
            for name in ("id", "precedence", "description", "match", "examples")
        }
        form |= {"cause": "task.exception", "signature": signature, "csrf": csrf}
        tried = browser.post("/rules/new", data=form | {"action": "try"})
        saved = browser.post("/rules/new", data=form | {"action": "save"})
        rule_id = form["id"]
        applied = browser.post(f"/rules/{rule_id}/apply", data={"csrf": csrf_of(saved)})
        after = browser.get("/triage")
    assert f'href="{link}"' in triage.text, "the triage page links to the group's draft"
    assert page.status_code == 200
    assert "From the group of 6 unclassified crashes" in text_of(page)
    assert form["match"] == STUCK_PATTERN, "the signature's pattern, a class for each mark"
    assert form["examples"].splitlines() == [STUCK.format(n=n) for n in (6, 5, 4)]
    assert form["id"] == f"site.rpmlint_{signature[:8]}"
    assert form["description"].startswith(
        '6 crashes of the signature "sprocketd: build <n> stuck on host <host> in <path>" from '
    )
    assert form["description"].endswith(", in rpmlint (4), depcheck (2).")
    assert "it would change <strong>6</strong>" in tried.text
    assert "Passing runs it matches: 0" in text_of(tried)
    assert passed["state"] == "FINISHED"
    assert saved.status_code == 200, saved.text
    assert "Apply it to the 6 stored crashes" in text_of(saved)
    assert applied.status_code == 200
    assert "reclassified <strong>6</strong>" in applied.text
    assert "sprocketd" not in text_of(after), "the group has left the triage page"
    with server.client() as api:
        for job in group:
            stored = api.get(f"/api/v1/jobs/{job['uuid']}").json()
            assert (stored["cause"], stored["rule_id"]) == ("task.exception", rule_id)
            last = events(api, job["uuid"])[-1]
            assert last["actor"] == "test-triage"
            assert f"(rule {rule_id})" in last["message"]


def test_a_signature_with_no_crashes_is_a_404_naming_it(server: LiveServer) -> None:
    with server.client("both") as client:
        job = job_in(client, "RUNNING")
        report(client, job["uuid"], state="CRASHED", details="sprocketd: gone for 5 minutes")
        from_details = client.get(f"/api/v1/jobs/{job['uuid']}").json()["signature"]
    with browser_of(server) as browser:
        unknown = browser.get("/rules/new", params={"signature": "0123456789abcdef"})
        bogus = browser.get("/rules/new", params={"signature": "<script>"})
        no_log = browser.get("/rules/new", params={"signature": from_details})
    assert unknown.status_code == 404
    assert "no crash has the signature '0123456789abcdef'" in text_of(unknown)
    assert bogus.status_code == 404
    assert "<script>" not in bogus.text
    assert no_log.status_code == 200
    assert "None of these crashes has a kept log" in text_of(no_log)
    assert field(no_log.text, "examples") == "sprocketd: gone for 5 minutes"
