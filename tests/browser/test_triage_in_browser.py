"""Acting from the pages in Chromium: sign in, classify a crash from its page, classify a
group on /triage and see it leave the page, sign out; make a rule from a group, try it on the
stored data, save and apply it, and see the group leave the page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.test_pages_in_browser import shoot, visit
from tests.conftest import Databases, settings_for
from tests.functional.test_classification import log_ending
from tests.helpers import events, job_in, report
from tests.live import LiveServer, make_tokens, prepare

pytestmark = pytest.mark.browser

JAM = "frobnicator {n} jammed in /var/tmp/taskotron/{n}/x: giving up"
# Twelve crashes of a kind nobody knows yet: the same line, other numbers, hosts and paths.
STUCK = "sprocketd: build {n} stuck on host minion{n}.qa.fedoraproject.org in /srv/work/{n}/out"
TASKS = ("rpmlint", "depcheck", "abicheck")
DONE = "sprocketd: build 7 done on host minion7.qa.fedoraproject.org in /srv/work/7/out"


@pytest.fixture(scope="module")
def server(databases: Databases) -> Iterator[LiveServer]:
    """A server of its own: what these tests classify must not change the other pages'.
    It keeps every passing run's log, so that a rule's backtest reads them."""
    settings = settings_for(databases.url("sqlite"), finished_log_sample=1)
    services = prepare(settings)
    live = LiveServer(settings, services, tokens=make_tokens(services)).start()
    yield live
    live.stop()


def crash(server: LiveServer, line: str, n: int) -> dict[str, Any]:
    with server.client("both") as client:
        job = job_in(client, "RUNNING", item=f"pkg-{n}.0-{n}.fc41")
        answer = report(client, job["uuid"], state="CRASHED", log=log_ending(line.format(n=n)))
        assert answer.status_code == 200, answer.text
        crashed: dict[str, Any] = answer.json()
        return crashed


def wait_for(browser: webdriver.Chrome, text: str) -> None:
    """Until the page (the next one, once a form is sent) says `text`."""
    WebDriverWait(browser, 10, ignored_exceptions=[StaleElementReferenceException]).until(
        lambda b: text in b.find_element(By.TAG_NAME, "main").text
    )


def sign_in(browser: webdriver.Chrome, server: LiveServer) -> None:
    visit(browser, server.url + "/")
    browser.find_element(By.LINK_TEXT, "Sign in").click()
    WebDriverWait(browser, 10).until(lambda b: "/signin" in b.current_url)
    browser.find_element(By.ID, "f-token").send_keys(server.tokens["triage"])
    browser.find_element(By.CSS_SELECTOR, "form.signin button").click()
    WebDriverWait(browser, 10).until(lambda b: "/signin" not in b.current_url)
    assert "Signed in as test-triage" in browser.find_element(By.CSS_SELECTOR, ".who").text


def test_sign_in_classify_a_crash_and_a_group_then_sign_out(
    browser: webdriver.Chrome, server: LiveServer, screenshots: Path
) -> None:
    one = crash(server, "widget {n} sprocket slipped off", 1)
    group = [crash(server, JAM, n) for n in (2, 3, 4)]
    sign_in(browser, server)

    visit(browser, f"{server.url}/jobs/{one['uuid']}")
    form = browser.find_element(By.ID, "classify")
    form.find_element(By.ID, "f-cause").send_keys("task.exception")
    form.find_element(By.ID, "f-note").send_keys("the task's own bug")
    shoot(browser, screenshots, "classify-form")
    form.find_element(By.CSS_SELECTOR, "button").click()
    wait_for(browser, "Classify this crash?")
    assert "No retry is due, and none will be." in browser.find_element(By.ID, "effect").text
    browser.find_element(By.CSS_SELECTOR, "#confirm button").click()
    WebDriverWait(browser, 10).until(lambda b: "#crash-title" in b.current_url)
    crash_box = browser.find_element(By.CSS_SELECTOR, "section.crash")
    assert "a person, test-triage" in crash_box.text
    assert "task.exception" in crash_box.text

    visit(browser, f"{server.url}/triage")
    sections = browser.find_elements(By.CSS_SELECTOR, "section.group")
    assert len(sections) == 1, "the crash classified above has left the page"
    jam = sections[0]
    assert jam.find_element(By.TAG_NAME, "h2").text.startswith("3 \u00d7 frobnicator <n> jammed")
    example = jam.find_element(By.PARTIAL_LINK_TEXT, "rpmlint on")
    assert example.get_attribute("href").endswith(f"/jobs/{group[-1]['uuid']}#L42")
    shoot(browser, screenshots, "triage")
    jam.find_element(By.CSS_SELECTOR, "select[name=blame] option[value=TASK]").click()
    jam.find_element(By.CSS_SELECTOR, "input[name=cause]").send_keys("task.exception")
    jam.find_element(By.CSS_SELECTOR, "form.act button").click()
    wait_for(browser, "This will classify 3 crashes")
    browser.find_element(By.CSS_SELECTOR, "#confirm button").click()
    WebDriverWait(browser, 10).until(lambda b: "classified=3" in b.current_url)
    assert (
        "Classified 3 crashes as task.exception" in browser.find_element(By.ID, "classified").text
    )
    assert browser.find_elements(By.CSS_SELECTOR, "section.group") == []
    assert "0 crashes with no cause" in browser.find_element(By.TAG_NAME, "main").text

    browser.find_element(By.CSS_SELECTOR, ".who button").click()
    wait_for(browser, "You have signed out.")
    visit(browser, f"{server.url}/jobs/{one['uuid']}")
    assert browser.find_elements(By.ID, "classify") == []
    assert browser.find_element(By.LINK_TEXT, "Sign in")


def stuck(server: LiveServer, n: int) -> dict[str, Any]:
    with server.client("both") as client:
        job = job_in(client, "RUNNING", task=TASKS[n % 3], item=f"pkg{n}-1.{n}-1.fc41")
        answer = report(client, job["uuid"], state="CRASHED", log=log_ending(STUCK.format(n=n)))
        assert answer.status_code == 200, answer.text
        crashed: dict[str, Any] = answer.json()
        return crashed


def test_a_rule_made_from_a_group_is_tried_saved_applied_and_the_group_leaves(
    browser: webdriver.Chrome, server: LiveServer, screenshots: Path
) -> None:
    group = [stuck(server, n) for n in range(100, 112)]
    with server.client("both") as client:
        job = job_in(client, "RUNNING")
        passed = report(client, job["uuid"], state="FINISHED", log=log_ending(DONE))
        assert passed.status_code == 200, passed.text
    sign_in(browser, server)

    visit(browser, f"{server.url}/triage")
    (section,) = [
        s
        for s in browser.find_elements(By.CSS_SELECTOR, "section.group")
        if "sprocketd" in s.find_element(By.TAG_NAME, "h2").text
    ]
    heading = section.find_element(By.TAG_NAME, "h2").text
    assert heading == "12 \u00d7 sprocketd: build <n> stuck on host <host> in <path>"
    section.find_element(By.LINK_TEXT, "Make a rule from it").click()
    wait_for(browser, "From the group of 12 unclassified crashes")
    assert "signature=" in browser.current_url
    patterns = browser.find_element(By.ID, "r-match").get_attribute("value")
    assert patterns == r"sprocketd: build \d+ stuck on host [\w.:-]+ in \S+"
    description = browser.find_element(By.ID, "r-description").get_attribute("value")
    assert "in abicheck (4), depcheck (4), rpmlint (4)." in description
    browser.find_element(By.ID, "r-cause").send_keys("task.exception")
    rule_id = browser.find_element(By.ID, "r-id").get_attribute("value")

    browser.find_element(By.CSS_SELECTOR, "button[value=try]").click()
    wait_for(browser, "What it would do")
    backtest = browser.find_element(By.CSS_SELECTOR, "section[aria-labelledby=backtest-title]")
    assert "Crashes it fires on: 12" in backtest.text
    assert "it would change 12" in backtest.text
    assert len(backtest.find_elements(By.CSS_SELECTOR, "table.changes tbody tr")) == 12
    assert "crashed, 1 finished)" in backtest.text, "the passing run is scanned too"
    assert "Passing runs it matches: 0" in backtest.text
    shoot(browser, screenshots, "rule-from-group-backtest")

    browser.find_element(By.CSS_SELECTOR, "button[value=save]").click()
    wait_for(browser, f"Saved: {rule_id}")
    browser.find_element(By.XPATH, "//button[starts-with(., 'Apply it to the 12')]").click()
    wait_for(browser, "reclassified 12 crashes")
    browser.find_element(By.LINK_TEXT, "Triage").click()
    wait_for(browser, "Triage: crashes nobody has classified")
    assert "sprocketd" not in browser.find_element(By.TAG_NAME, "main").text

    visit(browser, f"{server.url}/jobs/{group[0]['uuid']}")
    assert f"(rule {rule_id})" in browser.find_element(By.TAG_NAME, "main").text
    with server.client() as client:
        for crashed in group:
            last = events(client, crashed["uuid"])[-1]
            assert last["actor"] == "test-triage"
            assert f"(rule {rule_id})" in last["message"]
