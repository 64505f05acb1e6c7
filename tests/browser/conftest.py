"""A real browser for the page tests: Debian's headless Chromium, driven by Selenium.

Chromium and its driver come from the same Debian source package (`chromium`,
`chromium-driver`), so their versions always match; nothing is downloaded. The network is
closed on CI, so every background service of Chromium that would try to reach out is off.

Screenshots of every page go to test-output/screenshots/ (git-ignored) for a person to look
at; every test fails on any error in the browser's console.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from execdb.db import utcnow
from tests.conftest import Databases, settings_for
from tests.live import LiveServer, make_tokens, prepare
from tests.seed import Seeded, seed

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",  # we run as root on CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)
LAPTOP = (1280, 900)
PHONE = (375, 812)  # the narrowest phones in common use


@pytest.fixture(scope="session")
def site(databases: Databases) -> Iterator[tuple[LiveServer, Seeded]]:
    """One server on SQLite with seeded jobs, shared by the browser tests."""
    settings = settings_for(
        databases.url("sqlite"), resultsdb_url="https://resultsdb.example.org/resultsdb"
    )
    services = prepare(settings)
    server = LiveServer(settings, services, tokens=make_tokens(services)).start()
    seeded = seed(services, utcnow())
    yield server, seeded
    server.stop()


@pytest.fixture(scope="session")
def driver() -> Iterator[webdriver.Chrome]:
    for program in (CHROMIUM, CHROMEDRIVER):
        if not Path(program).exists():
            pytest.fail(
                f"{program} is missing: install Debian's chromium and chromium-driver "
                "packages (scripts/test does)"
            )
    profile = tempfile.mkdtemp(prefix="execdb-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    browser.set_page_load_timeout(30)
    try:
        yield browser
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def browser(driver: webdriver.Chrome) -> Iterator[webdriver.Chrome]:
    """The browser at laptop size, its console checked for errors after the test."""
    driver.set_window_size(*LAPTOP)
    driver.get_log("browser")  # drop what an earlier test left
    yield driver
    assert console_errors(driver) == []


def console_errors(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = driver.get_log("browser")
    return [e for e in entries if e["level"] in ("SEVERE", "ERROR")]


@pytest.fixture(scope="session")
def screenshots(request: pytest.FixtureRequest) -> Path:
    folder = request.config.rootpath / "test-output" / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
