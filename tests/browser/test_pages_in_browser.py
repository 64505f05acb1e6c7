"""The pages as a person meets them: in Chromium, at laptop and phone sizes, by keyboard."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from execdb.db import utcnow
from execdb.jobs.schemas import JobCreate, JobReport
from tests.browser.conftest import LAPTOP, PHONE, console_errors
from tests.live import LiveServer
from tests.seed import EXECUTOR, TRIGGER, Seeded

pytestmark = pytest.mark.browser

Site = tuple[LiveServer, Seeded]


def visit(browser: webdriver.Chrome, url: str) -> None:
    browser.get(url)
    WebDriverWait(browser, 10).until(
        lambda b: b.execute_script("return document.readyState") == "complete"
    )


def shoot(browser: webdriver.Chrome, folder: Path, name: str) -> None:
    """A screenshot of the whole page, for a person to look at."""
    width = browser.get_window_size()["width"]
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(width, min(int(height), 6000))
    browser.save_screenshot(str(folder / f"{name}-{width}.png"))


def query_of(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


@pytest.mark.parametrize("size", [LAPTOP, PHONE], ids=["laptop", "phone"])
@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("dashboard", "/"),
        ("jobs", "/jobs"),
        ("job", "/jobs/{crashed}"),
        ("stats", "/stats"),
        ("causes", "/causes"),
        ("triage", "/triage"),
        ("signin", "/signin"),
    ],
)
def test_every_page_renders_and_fits_the_screen(
    browser: webdriver.Chrome,
    site: Site,
    screenshots: Path,
    name: str,
    path: str,
    size: tuple[int, int],
) -> None:
    server, seeded = site
    browser.set_window_size(*size)
    visit(browser, server.url + path.format(crashed=seeded.chain[1]))
    heading = browser.find_element(By.TAG_NAME, "h1")
    assert heading.is_displayed()
    assert heading.text
    assert browser.find_elements(By.CSS_SELECTOR, "main#main")
    assert browser.find_elements(By.CSS_SELECTOR, "nav[aria-label]")
    css = browser.execute_script(
        "return getComputedStyle(document.body).fontFamily + '|' + "
        "getComputedStyle(document.querySelector('.site')).backgroundColor"
    )
    assert css.split("|")[1] != "rgba(0, 0, 0, 0)", "the stylesheet is loaded"
    overflow = browser.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 1, "the page does not scroll sideways; wide parts scroll in a box"
    shoot(browser, screenshots, name)


def test_searching_with_the_form_and_following_a_job(browser: webdriver.Chrome, site: Site) -> None:
    server, seeded = site
    visit(browser, server.url + "/jobs")
    browser.find_element(By.CSS_SELECTOR, 'input[name="state"][value="CRASHED"]').click()
    task = browser.find_element(By.ID, "f-task")
    task.send_keys("rpmlint")
    browser.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
    WebDriverWait(browser, 10).until(lambda b: "state=CRASHED" in b.current_url)

    query = query_of(browser.current_url)
    assert ("state", "CRASHED") in query
    assert ("task", "rpmlint") in query
    assert all(value for _, value in query), "blank fields stay out of a shared URL"

    rows = browser.find_elements(By.CSS_SELECTOR, "tbody tr")
    expected = [j for j in seeded.jobs if j["state"] == "CRASHED" and j["task"] == "rpmlint"]
    assert len(rows) == len(expected) > 0
    assert all("CRASHED" in row.text for row in rows)
    assert browser.find_element(By.ID, "f-task").get_attribute("value") == "rpmlint"

    rows[0].find_element(By.CSS_SELECTOR, "td a").click()
    WebDriverWait(browser, 10).until(lambda b: "/jobs/" in b.current_url)
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("rpmlint on ")
    crash = browser.find_element(By.CSS_SELECTOR, "section.crash")
    assert "THIRD_PARTY" in crash.text
    assert "koji.timeout" in crash.text
    assert "A call to Koji did not answer in time." in crash.text


def test_a_bad_filter_shows_its_message(browser: webdriver.Chrome, site: Site) -> None:
    server, _ = site
    visit(browser, server.url + "/jobs")
    browser.find_element(By.ID, "f-since").send_keys("last tuesday", Keys.ENTER)
    alert = WebDriverWait(browser, 10).until(
        lambda b: b.find_element(By.CSS_SELECTOR, "[role=alert]")
    )
    assert "'last tuesday' is not an ISO 8601 date or time" in alert.text
    assert browser.find_element(By.ID, "f-since").get_attribute("value") == "last tuesday"
    # The page's own 400 is the one error the console may show here.
    logged = console_errors(browser)
    assert [e["source"] for e in logged] == ["network"]
    assert "/jobs?since=last+tuesday" in logged[0]["message"]
    assert "400" in logged[0]["message"]


def test_paging_through_the_results(browser: webdriver.Chrome, site: Site) -> None:
    server, _ = site
    visit(browser, server.url + "/jobs?limit=5")
    first = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "tbody td:nth-child(2) a")]
    browser.find_element(By.LINK_TEXT, "Older →").click()
    WebDriverWait(browser, 10).until(lambda b: "cursor=" in b.current_url)
    assert browser.find_element(By.LINK_TEXT, "← Newer")
    browser.find_element(By.LINK_TEXT, "← Newer").click()
    WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.CSS_SELECTOR, "tbody tr"))
    again = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "tbody td:nth-child(2) a")]
    assert again == first
    assert len(first) == 5


def test_the_attempt_chain_links_both_ways(browser: webdriver.Chrome, site: Site) -> None:
    server, seeded = site
    _, second, third = seeded.chain
    visit(browser, f"{server.url}/jobs/{second}")
    assert "Attempt 2 (this one)" in browser.find_element(By.CSS_SELECTOR, "ol.attempts").text
    browser.find_element(By.LINK_TEXT, "Next attempt →").click()
    WebDriverWait(browser, 10).until(lambda b: str(third) in b.current_url)
    browser.find_element(By.LINK_TEXT, "← Previous attempt").click()
    WebDriverWait(browser, 10).until(lambda b: str(second) in b.current_url)
    links = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "a")]
    assert f"https://resultsdb.example.org/resultsdb/api/v2.0/groups/{second}" in links
    assert f"https://buildbot.example.org/b/{second}" in links


def test_the_plots_are_drawn(browser: webdriver.Chrome, site: Site) -> None:
    server, _ = site
    visit(browser, server.url + "/stats?period=30d")
    plots = browser.find_elements(By.CSS_SELECTOR, "svg.chart")
    assert {p.get_attribute("id") for p in plots} >= {"crashes-by-blame", "classification-rate"}
    assert len(plots) == 6
    for plot in plots:
        size = plot.size
        assert size["width"] > 200, plot.get_attribute("id")
        assert size["height"] > 50, plot.get_attribute("id")
        marks = plot.find_elements(By.CSS_SELECTOR, "rect, polyline")
        assert marks, f"{plot.get_attribute('id')} draws nothing"
        named = browser.execute_script(
            "const ids = arguments[0].getAttribute('aria-labelledby').split(' ');"
            "return ids.map(id => document.getElementById(id).textContent.trim());",
            plot,
        )
        assert len(named) == 2
        assert all(named), "a title and a description"
    crashes = browser.find_element(By.ID, "crashes-by-blame")
    painted = browser.execute_script(
        "return [...arguments[0].querySelectorAll('rect')]"
        ".reduce((sum, r) => sum + r.getBBox().height, 0)",
        crashes,
    )
    assert painted > 0


def test_on_a_phone_the_results_come_before_the_folded_form(
    browser: webdriver.Chrome, site: Site, screenshots: Path
) -> None:
    server, _ = site
    browser.set_window_size(*PHONE)
    visit(browser, server.url + "/jobs?state=CRASHED")
    folded = browser.find_element(By.ID, "search-form")
    assert folded.get_attribute("open") is None
    summary = folded.find_element(By.TAG_NAME, "summary")
    assert "Filters (1 set)" in summary.text
    assert not browser.find_element(By.ID, "f-task").is_displayed()
    first = browser.find_element(By.CSS_SELECTOR, "table.jobs tbody tr")
    top = browser.execute_script("return arguments[0].getBoundingClientRect().top", first)
    viewport = browser.execute_script("return window.innerHeight")
    assert top < viewport / 2, "the first result shows without scrolling"
    shoot(browser, screenshots, "jobs-folded")
    summary.click()
    assert browser.find_element(By.ID, "f-task").is_displayed()
    # A refused filter keeps the form open, to be put right.
    visit(browser, server.url + "/jobs?since=whenever")
    assert browser.find_element(By.ID, "search-form").get_attribute("open") is not None
    assert browser.find_element(By.ID, "f-since").is_displayed()
    console_errors(browser)  # the page's own 400 is expected here
    # On a laptop the form is open.
    browser.set_window_size(*LAPTOP)
    visit(browser, server.url + "/jobs")
    assert browser.find_element(By.ID, "f-task").is_displayed()


def test_on_a_phone_chart_text_stays_readable(browser: webdriver.Chrome, site: Site) -> None:
    server, _ = site
    browser.set_window_size(*PHONE)
    visit(browser, server.url + "/stats?period=30d")
    smallest = browser.execute_script(
        "return Math.min(...[...document.querySelectorAll('svg.chart')].flatMap(svg => {"
        "  const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;"
        "  return [...svg.querySelectorAll('text')].map("
        "    t => parseFloat(getComputedStyle(t).fontSize) * scale);"
        "}))"
    )
    assert smallest >= 11, f"chart text is drawn at {smallest:.1f} px"
    overflow = browser.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 1, "a wide chart scrolls in its box, not the page"


def test_keyboard_and_labels(browser: webdriver.Chrome, site: Site) -> None:
    server, _ = site
    visit(browser, server.url + "/jobs")
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    skip = browser.switch_to.active_element
    assert skip.text == "Skip to the content"
    assert skip.is_displayed(), "the skip link shows when it has the focus"
    outline = browser.execute_script("return getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "the focus is visible"
    skip.send_keys(Keys.ENTER)
    assert browser.switch_to.active_element.get_attribute("id") == "main"

    # Tabbing on from the content reaches the form's summary (it folds on a phone), then
    # the form's first control.
    browser.switch_to.active_element.send_keys(Keys.TAB)
    assert browser.switch_to.active_element.tag_name == "summary"
    browser.switch_to.active_element.send_keys(Keys.TAB)
    first = browser.switch_to.active_element
    assert first.get_attribute("name") == "state"

    for page in ("/jobs", "/stats", "/", "/causes"):
        visit(browser, server.url + page)
        unlabelled = browser.execute_script(
            "return [...document.querySelectorAll('input, select, textarea, button')]"
            ".filter(c => !(c.labels && c.labels.length) && !c.getAttribute('aria-label')"
            " && !(c.tagName === 'BUTTON' && c.textContent.trim()))"
            ".map(c => c.outerHTML)"
        )
        assert unlabelled == [], page
        images = browser.execute_script(
            "return [...document.querySelectorAll('svg[role=img], img')]"
            ".filter(i => !(i.getAttribute('alt') || i.getAttribute('aria-labelledby')))"
            ".map(i => i.outerHTML.slice(0, 80))"
        )
        assert images == [], page


def test_the_dashboard_updates_itself(browser: webdriver.Chrome, site: Site) -> None:
    server, _ = site
    visit(browser, server.url + "/")

    def running() -> int:
        card = browser.find_element(By.CSS_SELECTOR, "#live-now .card a.big")
        return int(card.text)

    before = running()
    services = server.services
    now = utcnow()
    new = JobCreate(task="rpmlint", item="fresh-1.0-1.fc41", item_type="koji_build")
    job, _ = services.jobs.create(new, TRIGGER, now)
    services.jobs.report(job["uuid"], JobReport(state="RUNNING"), EXECUTOR, now)
    try:
        browser.execute_script("window.execdbRefresh()")
        # The figures' section is replaced when the update lands: look it up afresh.
        WebDriverWait(browser, 10, ignored_exceptions=[StaleElementReferenceException]).until(
            lambda b: running() == before + 1
        )
    finally:
        services.jobs.report(job["uuid"], JobReport(state="FINISHED"), EXECUTOR, utcnow())

    toggle = browser.find_element(By.ID, "auto-refresh")
    assert toggle.is_selected()
    toggle.click()
    visit(browser, server.url + "/")
    assert not browser.find_element(By.ID, "auto-refresh").is_selected(), "the choice is kept"
    browser.find_element(By.ID, "auto-refresh").click()


def test_the_api_docs_work_under_the_content_security_policy(
    browser: webdriver.Chrome, site: Site, screenshots: Path
) -> None:
    server, _ = site
    visit(browser, server.url + "/docs")
    operations = WebDriverWait(browser, 10).until(
        lambda b: b.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
    )
    paths = {o.get_attribute("data-path") or o.text for o in operations}
    assert "/api/v1/jobs/{job_uuid}" in paths
    shoot(browser, screenshots, "apidocs")
    # "Try it out" calls the API from the page (the policy's connect-src).
    browser.find_element(By.CSS_SELECTOR, "#operations-health-healthz_healthz_get button").click()
    WebDriverWait(browser, 10).until(lambda b: b.find_element(By.CSS_SELECTOR, ".try-out__btn"))
    browser.find_element(By.CSS_SELECTOR, ".try-out__btn").click()
    browser.find_element(By.CSS_SELECTOR, ".execute").click()
    status = WebDriverWait(browser, 10).until(
        lambda b: b.find_element(
            By.CSS_SELECTOR, ".live-responses-table .response .response-col_status"
        )
    )
    assert status.text.strip() == "200"


def test_the_pages_refuse_inline_script(browser: webdriver.Chrome, site: Site) -> None:
    """The policy is in force: a script slipped into a page (say, through a name that was not
    escaped) does not run."""
    server, _ = site
    visit(browser, server.url + "/causes")
    ran = browser.execute_script(
        "const s = document.createElement('script');"
        "s.textContent = 'window.injected = true';"
        "document.body.appendChild(s);"
        "return window.injected === true;"
    )
    assert ran is False
    logged = console_errors(browser)
    assert len(logged) == 1
    assert "Content Security Policy" in logged[0]["message"]
