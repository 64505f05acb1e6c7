"""The rules pages over HTTP: /rules, and a rule made from a crash on /rules/new (proposed,
tried, saved, applied) with plain form posts; /jobs?q= shows the matching line."""

from __future__ import annotations

import html
import re

from tests.functional.test_classification import log_ending
from tests.functional.test_saved_rules import WIDGET, crash
from tests.live import LiveServer

PROPOSED = r"widgetd: frobnication failed with code \d+ on unit \d+"


def field(page: str, name: str) -> str:
    found = re.search(rf'<textarea id="r-{name}" name="{name}"[^>]*>([^<]*)</textarea>', page)
    if found is None:
        found = re.search(rf'<input id="r-{name}" name="{name}" type="\w+" value="([^"]*)"', page)
    assert found is not None, name
    return html.unescape(found.group(1))


def test_a_rule_made_from_a_crash_is_tried_saved_and_applied(server: LiveServer) -> None:
    with server.client("admin") as client, server.client() as browser:
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
        unsigned = browser.post("/rules/new", data=form | {"action": "save"})
        token = server.tokens["admin"]
        tried = browser.post("/rules/new", data=form | {"action": "try", "token": token})
        bad = browser.post(
            "/rules/new", data=form | {"match": "(?<=x)y", "action": "try", "token": token}
        )
        saved = browser.post("/rules/new", data=form | {"action": "save", "token": token})
        applied = browser.post("/rules/site.widget/apply", data={"token": token})
        forged = browser.post("/rules/site.widget/apply", data={"token": "execdb_nope"})
        after = client.get(f"/api/v1/jobs/{other['uuid']}").json()
        listed = browser.get("/rules")
    assert page.status_code == 200
    assert field(page.text, "match") == PROPOSED
    assert field(page.text, "examples") == WIDGET
    assert unsigned.status_code == 401
    assert tried.status_code == 200
    assert "it would change <strong>2</strong>" in tried.text
    assert bad.status_code == 422
    assert "RE2 cannot compile it" in html.unescape(bad.text)
    assert saved.status_code == 200, saved.text
    assert "Saved: <code>site.widget</code>" in saved.text
    assert applied.status_code == 200
    assert "reclassified <strong>2</strong>" in applied.text
    assert forged.status_code == 401
    assert (after["cause"], after["rule_id"]) == ("task.exception", "site.widget")
    assert "site.widget" in listed.text
    assert "v1 by test-admin" in listed.text


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
