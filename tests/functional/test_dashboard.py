"""What is still broken, on the dashboard and the plots of /stats, on both backends: each
cause's first and last crash, its trend and colour, new causes, the tasks that crash most,
the classification rate, and plots whose every linked mark finds exactly the jobs it counts."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta

import pytest

from execdb.db import utcnow
from execdb.jobs.schemas import JobCreate, JobReport
from execdb.services import Services
from execdb.web import format
from execdb.web.colours import CAUSE_PALETTE
from execdb.web.pages import BLAME_COLOURS
from tests.functional.test_pages import get, links, text_of
from tests.live import LiveServer
from tests.seed import EXECUTOR, TRIGGER

# A mark's link and what its aria-label says it counts: "koji.timeout, 03 Dec: 4 crashes".
MARK = re.compile(r'<a href="([^"]+)" aria-label="([^"]+?): (\d+) crashes">')


def crash(
    services: Services, when: datetime, cause: str | None, *, task: str = "rpmlint", **more: str
) -> None:
    new = JobCreate(task=task, item=f"pkg-{when.timestamp()}", item_type="koji_build")
    job, _ = services.jobs.create(new, TRIGGER, when)
    services.jobs.report(job["uuid"], JobReport(state="RUNNING"), EXECUTOR, when)
    ended = JobReport.model_validate({"state": "CRASHED", "cause": cause, **more})
    services.jobs.report(job["uuid"], ended, EXECUTOR, when + timedelta(seconds=1))


def finish(services: Services, when: datetime, *, task: str = "rpmlint") -> None:
    new = JobCreate(task=task, item=f"ok-{when.timestamp()}", item_type="koji_build")
    job, _ = services.jobs.create(new, TRIGGER, when)
    services.jobs.report(job["uuid"], JobReport(state="RUNNING"), EXECUTOR, when)
    services.jobs.report(job["uuid"], JobReport(state="FINISHED"), EXECUTOR, when)


def found(server: LiveServer, link: str) -> int:
    """How many jobs the page of a /jobs link lists (every test here stays under a page)."""
    page = get(server, link)
    assert page.status_code == 200, link
    return page.text.split("<tbody>")[1].split("</tbody>")[0].count("<tr")


def cause_row(page: str, cause: str) -> str:
    section = page.split('id="causes-title"')[1].split("</section>")[0]
    return next(r for r in re.findall(r"<tr\b.*?</tr>", section, re.S) if f"<code>{cause}<" in r)


def moment(row: str, which: str) -> str:
    found = re.search(rf'class="nowrap {which}"><time datetime="([^"]+)"', row)
    assert found, row
    return found[1]


def swatch(row: str) -> str:
    found = re.search(r'class="swatch filled".*?fill="(#[0-9a-f]{6})"', row, re.S)
    assert found, row
    return found[1]


def test_each_cause_shows_its_first_and_last_crash_and_whether_it_is_new(
    server: LiveServer,
) -> None:
    now = utcnow().replace(microsecond=0)
    services = server.services
    old_first, old_last = now - timedelta(days=40), now - timedelta(hours=2)
    for when in (old_first, now - timedelta(days=3), old_last):
        crash(services, when, "koji.timeout")
    new_first, new_last = now - timedelta(days=2), now - timedelta(hours=5)
    for when in (new_first, new_last):
        crash(services, when, "resources.oom")
    page = get(server, "/")
    assert page.status_code == 200
    old, new = cause_row(page.text, "koji.timeout"), cause_row(page.text, "resources.oom")
    assert moment(old, "first-seen") == format.iso(old_first), "older than the week shown"
    assert moment(old, "last-seen") == format.iso(old_last)
    assert moment(new, "first-seen") == format.iso(new_first)
    assert moment(new, "last-seen") == format.iso(new_last)
    assert 'class="new"' in new
    assert 'badge new">new<' in new
    assert "new<" not in old
    assert "New this week: resources.oom" in text_of(page)


def test_a_new_cause_is_listed_even_below_the_top_ten(server: LiveServer) -> None:
    now = utcnow()
    causes = list(server.services.catalogue)
    old, fresh = causes[:10], causes[10]
    for n, cause in enumerate(old):
        crash(server.services, now - timedelta(days=30), cause)
        for hours in range(2 + n % 2):
            crash(server.services, now - timedelta(hours=hours + 1), cause)
    crash(server.services, now - timedelta(hours=3), fresh)
    page = get(server, "/").text
    assert 'badge new">new<' in cause_row(page, fresh)
    assert all("new<" not in cause_row(page, cause) for cause in old)


def test_the_trend_links_each_day_to_its_crashes(server: LiveServer) -> None:
    now = utcnow()
    for days, n in ((0, 1), (2, 3), (5, 2)):
        for i in range(n):
            crash(server.services, now - timedelta(days=days, seconds=i + 1), "koji.timeout")
    crash(server.services, now - timedelta(days=2), "task.exception")
    row = cause_row(get(server, "/").text, "koji.timeout")
    marks = [(html.unescape(href), int(n)) for href, _, n in MARK.findall(row)]
    counts = sorted(n for _, n in marks)
    # Seconds before midnight may put a crash on the day before: the days sum up all the same.
    assert sum(counts) == 6
    assert len(counts) in (3, 4)
    for link, n in marks:
        assert "cause=koji.timeout" in link
        assert found(server, link) == n, link


def test_the_tasks_that_crashed_most_link_to_their_crashes(server: LiveServer) -> None:
    now = utcnow()
    for task, crashes, finished in (("depcheck", 3, 1), ("rpmlint", 1, 3), ("abicheck", 2, 0)):
        for i in range(crashes):
            crash(server.services, now - timedelta(hours=i + 1), "task.exception", task=task)
        for i in range(finished):
            finish(server.services, now - timedelta(hours=i + 1), task=task)
    crash(server.services, now - timedelta(days=9), "task.exception", task="rpmlint")
    page = get(server, "/")
    section = page.text.split('id="tasks-title"')[1].split("</section>")[0]
    words = text_of(page)
    assert (
        "Top failing tasks, last 7 days Task Crashes Of those that ended "
        "depcheck 3 75 % of 4 abicheck 2 100 % of 2 rpmlint 1 25 % of 4"
    ) in words
    searches = [html.unescape(h) for h in re.findall(r'href="([^"]+)"', section)]
    assert len(searches) == 3
    assert [found(server, link) for link in searches] == [3, 2, 1]


def test_the_classification_rate_of_the_week(server: LiveServer) -> None:
    now = utcnow()
    for cause in ("koji.timeout", "task.exception", "resources.oom"):
        crash(server.services, now - timedelta(hours=1), cause)
    crash(server.services, now - timedelta(hours=2), "gremlins.in_the_machine", blame="TASK")
    crash(server.services, now - timedelta(hours=3), "task.exception", blame="UNKNOWN")
    crash(server.services, now - timedelta(days=8), "gremlins.in_the_machine")  # not this week
    words = text_of(get(server, "/"))
    assert (
        "Classified, last 7 days 60 % 3 of 5 crashes have a cause from the catalogue and a "
        "blame other than UNKNOWN; the other 2 are uncategorized"
    ) in words


def test_still_failing_is_one_click(server: LiveServer) -> None:
    page = get(server, "/")
    link = next(h for h in links(page) if "latest=true" in h)
    assert link.startswith("/jobs?state=CRASHED&latest=true&since=")
    assert get(server, link).status_code == 200


@pytest.fixture
def month(server: LiveServer) -> dict[str, int]:
    """Crashes of the last 30 days, of several blames and causes, a few a day."""
    now = utcnow()
    made = {"koji.timeout": 0, "task.exception": 0, "resources.oom": 0}
    for day in range(0, 28, 3):
        for n, cause in enumerate(made):
            if (day + n) % 2:
                crash(server.services, now - timedelta(days=day, hours=n), cause)
                made[cause] += 1
    crash(server.services, now - timedelta(days=4), None, details="no cause said")
    return made


def test_every_linked_mark_of_the_plots_finds_exactly_its_jobs(
    server: LiveServer, month: dict[str, int]
) -> None:
    page = get(server, "/stats", period="30d")
    assert page.status_code == 200
    # The crash without a cause has a blame (UNKNOWN) and a classification (nobody).
    for plot, linked in (("crashes-by-blame", 1), ("top-causes", 0), ("classification-rate", 1)):
        svg = page.text.split(f'id="{plot}"')[1].split("</svg>")[0]
        marks = MARK.findall(svg)
        assert marks, plot
        assert sum(int(n) for _, _, n in marks) == sum(month.values()) + linked
        for href, label, n in marks:
            link = html.unescape(href)
            assert "period=" not in link, "the mark's window, not one ending at the click"
            assert found(server, link) == int(n), f"{plot}: {label}"
    tasks = page.text.split('id="crash-rate-by-task"')[1].split("</svg>")[0]
    (bar,) = re.findall(r'<a href="([^"]+)" aria-label="rpmlint: (\d+) crashes">', tasks)
    assert found(server, html.unescape(bar[0])) == int(bar[1]) == sum(month.values()) + 1


def test_a_cause_has_one_colour_on_every_page(server: LiveServer, month: dict[str, int]) -> None:
    dashboard = get(server, "/").text
    stats = get(server, "/stats", period="30d").text
    plot = stats.split('id="top-causes"')[1].split("</svg>")[0]
    colours = set()
    for cause in month:
        colour = swatch(cause_row(dashboard, cause))
        colours.add(colour)
        in_plot = re.findall(
            rf'aria-label="{re.escape(cause)}, [^"]+"><rect [^>]*fill="([^"]+)"', plot
        )
        assert in_plot, cause
        assert set(in_plot) == {colour}, cause
        assert swatch(cause_row(stats, cause)) == colour, "the table under the plot"
        assert colour in CAUSE_PALETTE
        assert colour not in BLAME_COLOURS.values()


def test_a_cause_that_just_started_is_in_top_causes_over_time(server: LiveServer) -> None:
    now = utcnow()
    old = list(server.services.catalogue)[:8]
    for n, cause in enumerate(old):
        for day in range(3, 20, 2):
            for i in range(3 + n % 3):
                crash(server.services, now - timedelta(days=day, minutes=i), cause)
    fresh = list(server.services.catalogue)[9]
    crash(server.services, now - timedelta(minutes=5), fresh)
    stats = get(server, "/stats", period="30d").text
    plot = stats.split('id="top-causes"')[1].split("</figure>")[0]
    assert f'aria-label="{fresh}, ' in plot, "smaller in all than every old cause, but new"
    assert "other causes" in plot
    shown = set(re.findall(r'aria-label="([a-z_.]+), ', plot))
    assert len(shown) == 6
    assert fresh in shown


def test_the_search_finds_crashes_by_who_classified_them(
    server: LiveServer, month: dict[str, int]
) -> None:
    with server.client("admin") as client:
        nobody = client.get("/api/v1/jobs", params={"classified_by": "nobody"}).json()["data"]
        assert [j["details"] for j in nobody] == ["no cause said"]
        both = client.get("/api/v1/jobs", params={"classified_by": "Reporter,nobody"})
        assert len(both.json()["data"]) == sum(month.values()) + 1
        refused = client.get("/api/v1/jobs", params={"classified_by": "somebody"})
        assert refused.status_code == 400
        assert "'somebody' is not one of reporter, rules, person, nobody" in refused.text
