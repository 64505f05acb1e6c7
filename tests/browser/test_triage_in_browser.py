"""Acting from the pages in Chromium: sign in, classify a crash from its page, classify a
group on /triage and see it leave the page, sign out."""

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
from tests.helpers import job_in, report
from tests.live import LiveServer, make_tokens, prepare

pytestmark = pytest.mark.browser

JAM = "frobnicator {n} jammed in /var/tmp/taskotron/{n}/x: giving up"


@pytest.fixture(scope="module")
def server(databases: Databases) -> Iterator[LiveServer]:
    """A server of its own: what these tests classify must not change the other pages'."""
    settings = settings_for(databases.url("sqlite"))
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
