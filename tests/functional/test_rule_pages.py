"""The rules pages over HTTP: /rules, and a rule made from a crash on /rules/new (proposed,
tried, saved, applied) with plain form posts; /jobs?q= shows the matching line."""

from __future__ import annotations

import html
import re

from tests.functional.test_classification import log_ending
from tests.functional.test_saved_rules import WIDGET, crash
from tests.functional.test_signin import browser as browser_of
from tests.functional.test_signin import csrf_of, sign_in
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
