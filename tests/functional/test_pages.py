"""The web pages over plain HTTP, on both backends: what they say, and how they refuse."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta
from uuid import UUID, uuid4

import httpx
import pytest

from execdb.db import utcnow
from execdb.vocabulary import SYSTEM
from tests.helpers import create_job, job_in, report
from tests.live import LiveServer, StartServer
from tests.seed import Seeded, seed


@pytest.fixture
def seeded(server: LiveServer) -> Seeded:
    return seed(server.services, utcnow())


def get(server: LiveServer, path: str, **params: str | list[str]) -> httpx.Response:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        return client.get(path, params=params) if params else client.get(path)


def text_of(response: httpx.Response) -> str:
    """The page's visible text, tags dropped and spaces squeezed, for phrase checks."""
    without_tags = re.sub(r"<(script|style)\b.*?</\1>|<[^>]+>", " ", response.text, flags=re.S)
    return " ".join(html.unescape(without_tags).split())


def links(response: httpx.Response) -> list[str]:
    return [html.unescape(href) for href in re.findall(r'href="([^"]+)"', response.text)]


def test_the_job_page(server: LiveServer) -> None:
    with server.client("admin") as client:
        job = job_in(client, "CRASHED")
    page = get(server, f"/jobs/{job['uuid']}")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    words = text_of(page)
    for needle in (job["uuid"], "rpmlint", "CRASHED", "task.exception", "unhandled exception"):
        assert needle in words
    history = page.text.split('id="history-title"')[1]
    assert history.count("<li ") == 3, "the history shows create, RUNNING and CRASHED"
    assert "created" in history
    assert f"/api/v1/jobs/{job['uuid']}" in page.text


KOJI_TIMEOUT = (
    "requests.exceptions.ReadTimeout: HTTPSConnectionPool(host='koji.fedoraproject.org', "
    "port=443): Read timed out. (read timeout=43200)"
)


def test_the_job_page_shows_the_log_folded_with_its_evidence(server: LiveServer) -> None:
    log = "starting <task>\n" + "".join(f"step {n}\n" for n in range(10)) + KOJI_TIMEOUT + "\n"
    with server.client("both") as client:
        job = job_in(client, "RUNNING")
        crashed = report(client, job["uuid"], state="CRASHED", cause="task.exception", log=log)
    assert crashed.status_code == 200, crashed.text
    page = get(server, f"/jobs/{job['uuid']}")
    words = text_of(page)
    assert "Classified by the reporter" in words
    assert "The rules said THIRD_PARTY koji.timeout (the reported cause was kept)" in words
    assert f"line 12 : {KOJI_TIMEOUT}" in words
    assert '<a href="#L12">line 12</a>' in page.text
    assert '<details class="log" id="log">' in page.text  # folded
    evidence = re.findall(r'<span class="line evidence" id="L(\d+)">', page.text)
    assert evidence == ["12"]
    assert 'id="L1"><a class="ln" href="#L1" aria-label="line 1">1</a>starting &lt;task&gt;' in (
        page.text
    )
    assert "style=" not in page.text  # the CSP allows no inline style
    assert re.findall(r"<script[^>]*>", page.text) == [
        '<script src="/static/web/log.js?v=' + page.text.split("log.js?v=")[1].split('"')[0] + '">'
    ]
    assert get(server, "/static/web/log.js").status_code == 200


def test_the_job_page_shows_a_crash_the_rules_classified(server: LiveServer) -> None:
    with server.client("both") as client:
        job = job_in(client, "RUNNING")
        report(client, job["uuid"], state="CRASHED", cause="status_file.missing", log=KOJI_TIMEOUT)
        plain = job_in(client, "CRASHED")
    words = text_of(get(server, f"/jobs/{job['uuid']}"))
    assert "Classified by ExecDB's rules, from the run's log" in words
    assert "Reported no blame, status_file.missing" in words
    plain_page = get(server, f"/jobs/{plain['uuid']}")
    assert "The run's log" not in text_of(plain_page)
    assert "log.js" not in plain_page.text


def test_the_job_page_shows_times_attempts_and_links(server: LiveServer, seeded: Seeded) -> None:
    first, second, third = seeded.chain
    page = get(server, f"/jobs/{second}")
    words = text_of(page)
    assert "Queued for 1 min" in words
    assert "Ran for 2 min" in words
    assert "attempt 2" in words
    assert "Attempt 1" in words
    assert "Attempt 3" in words
    hrefs = links(page)
    assert f"/jobs/{first}" in hrefs
    assert f"/jobs/{third}" in hrefs
    assert f"https://buildbot.example.org/b/{second}" in hrefs, "the executor's log"
    assert "koji.timeout" in words
    assert "A call to Koji did not answer in time." in words, "the catalogue's description"
    assert "ResultsDB" not in words, "no resultsdb_url setting, no link"


def test_the_job_page_shows_the_trigger_data_folded_when_long(server: LiveServer) -> None:
    """What rescheduling needs: small trigger data in full, large folded under a summary."""
    small = {"build_id": 1234, "note": "<b>"}
    large = {f"key{n}": n for n in range(30)}
    with server.client("both") as client:
        shown = create_job(client, trigger_data=small)
        folded = create_job(client, trigger_data=large, msg_id="m-large")
        bare = create_job(client, msg_id="m-none")
    page = get(server, f"/jobs/{shown['uuid']}")
    assert '<pre class="trigger-data">{\n  &#34;build_id&#34;: 1234,' in page.text
    assert "&lt;b&gt;" in page.text
    page = get(server, f"/jobs/{folded['uuid']}")
    assert '<details class="trigger-data"><summary>30 keys, 32 lines</summary>' in page.text
    assert "&#34;key29&#34;: 29" in page.text
    assert "Trigger data none" in text_of(get(server, f"/jobs/{bare['uuid']}"))


def test_a_retry_reads_as_one_and_uuids_in_the_history_are_links(server: LiveServer) -> None:
    with server.client("both") as client:
        job = job_in(client, "RUNNING")
        crashed = report(client, job["uuid"], state="CRASHED", cause="koji.timeout").json()
    assert crashed["retry_at"] is not None
    due = datetime.fromisoformat(crashed["retry_at"]) + timedelta(seconds=1)
    again = server.services.jobs.claim_retry(UUID(job["uuid"]), due, SYSTEM)
    assert again is not None
    with server.client("admin") as client:
        report(client, str(again["uuid"]), state="CANCELLED")
        forced = client.post(f"/api/v1/jobs/{again['uuid']}/reschedule").json()
    page = get(server, f"/jobs/{job['uuid']}")
    words = text_of(page)
    assert f"CRASHED → retry scheduled as attempt 2 ( {again['uuid']} )" in words
    assert "CRASHED → CRASHED" not in words
    assert f'<a href="/jobs/{again["uuid"]}" class="wrap">{again["uuid"]}</a>' in page.text
    later = get(server, f"/jobs/{again['uuid']}")
    assert f"CANCELLED → rescheduled as attempt 3 ( {forced['uuid']} )" in text_of(later)
    newest = get(server, f"/jobs/{forced['uuid']}")
    history = newest.text.split('id="history-title"')[1]
    # The new attempt's "created: rescheduled of <uuid>" names its predecessor: a link.
    assert f'<a href="/jobs/{again["uuid"]}">{again["uuid"]}</a>' in history


def test_the_api_docs_link_back_to_the_pages(server: LiveServer) -> None:
    page = get(server, "/docs")
    assert page.status_code == 200
    assert {"/", "/jobs", "/stats"} <= set(links(page))


def test_the_job_page_links_to_resultsdb(make_server: StartServer) -> None:
    server: LiveServer = make_server(resultsdb_url="https://resultsdb.example.org/resultsdb/")
    with server.client("admin") as client:
        job = job_in(client, "FINISHED")
    page = get(server, f"/jobs/{job['uuid']}")
    group = f"https://resultsdb.example.org/resultsdb/api/v2.0/groups/{job['uuid']}"
    assert group in links(page)


def test_an_executor_url_that_is_not_http_is_not_a_link(server: LiveServer) -> None:
    with server.client("admin") as client:
        job = job_in(client, "SCHEDULED")
        running = {"state": "RUNNING", "executor": {"log_url": "javascript:alert(1)"}}
        assert client.patch(f"/api/v1/jobs/{job['uuid']}", json=running).status_code == 200
    page = get(server, f"/jobs/{job['uuid']}")
    assert "javascript:alert(1)" in page.text, "shown in the executor's report"
    assert not any(href.startswith("javascript:") for href in links(page))
    assert "The run's log" not in page.text


def test_the_crash_box_says_when_a_cause_is_not_in_the_catalogue(
    server: LiveServer, seeded: Seeded
) -> None:
    odd = seeded.first(cause="gremlins.in_the_machine")
    words = text_of(get(server, f"/jobs/{odd['uuid']}"))
    assert "gremlins.in_the_machine" in words
    assert "not in the catalogue" in words


@pytest.mark.parametrize("path", ["/jobs/0b5e1a7e-0000-4000-8000-000000000000", "/jobs/not-a-uuid"])
def test_an_unknown_job_is_a_404_page(server: LiveServer, path: str) -> None:
    page = get(server, path)
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "no job with uuid" in text_of(page)
    assert "Traceback" not in page.text


def test_the_job_list_filters_like_the_api(server: LiveServer, seeded: Seeded) -> None:
    page = get(server, "/jobs", state="CRASHED", blame="THIRD_PARTY", task="rpmlint")
    assert page.status_code == 200
    rows = page.text.split("<tbody>")[1].split("</tbody>")[0]
    expected = [j for j in seeded.jobs if j["state"] == "CRASHED" and j["blame"] == "THIRD_PARTY"]
    assert rows.count("<tr>") == len(expected) == 5
    for job in expected:
        assert f"/jobs/{job['uuid']}" in rows
    assert 'value="CRASHED" checked' in page.text, "the form shows the search"
    assert 'value="rpmlint"' in page.text


def test_blank_fields_mean_any(server: LiveServer, seeded: Seeded) -> None:
    """A submitted form sends every field; the empty ones must not count as filters."""
    page = get(server, "/jobs", task="", since="", cause="", state="RUNNING", limit="20")
    assert page.status_code == 200
    assert page.text.split("<tbody>")[1].count("<tr>") == 1


def test_the_job_list_pages_with_prev_and_next(server: LiveServer, seeded: Seeded) -> None:
    first = get(server, "/jobs", limit="5", task="rpmlint")
    older = [h for h in links(first) if h.startswith("/jobs?") and "cursor=" in h]
    assert len(older) == 1, "the first page has only a link to older jobs"
    assert "task=rpmlint" in older[0]
    assert "limit=5" in older[0]
    second = get(server, older[0])
    assert second.status_code == 200
    cursors = [h for h in links(second) if h.startswith("/jobs?") and "cursor=" in h]
    assert len(cursors) == 2, "newer and older"
    first_rows = re.findall(r'href="/jobs/([0-9a-f-]{36})"', first.text)
    second_rows = re.findall(r'href="/jobs/([0-9a-f-]{36})"', second.text)
    assert len(first_rows) == len(second_rows) == 5
    assert not set(first_rows) & set(second_rows)
    back = get(server, cursors[0])
    assert re.findall(r'href="/jobs/([0-9a-f-]{36})"', back.text) == first_rows


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"state": "EXPLODED"}, "state"),
        ({"since": "yesterday"}, "'yesterday' is not an ISO 8601 date or time"),
        ({"cause": "Koji Timeout"}, "is not a cause code or family"),
        ({"limit": "0"}, "limit"),
        ({"cursor": "garbage"}, "not a cursor from one of this server's links"),
        ({"colour": "red"}, "colour: unknown parameter"),
    ],
)
def test_bad_filters_are_a_400_page_with_the_form(
    server: LiveServer, params: dict[str, str], message: str
) -> None:
    page = get(server, "/jobs", **params)
    assert page.status_code == 400
    assert page.headers["content-type"].startswith("text/html")
    words = text_of(page)
    assert message in words
    assert 'role="alert"' in page.text
    assert 'role="search"' in page.text, "the form stays to put the mistake right"
    assert "Traceback" not in page.text


def test_the_dashboard(server: LiveServer, seeded: Seeded) -> None:
    page = get(server, "/")
    assert page.status_code == 200
    words = text_of(page)
    assert "Running now 1" in words
    assert "Queued now 2" in words
    # In the last 24 h: 2 koji in the chain + 1 koji, task, odd, bare = 6 crashes.
    assert "Crashed, last 24 hours 6" in words
    assert "Uncategorized crashes, last 7 days: 2" in words
    hrefs = links(page)
    assert any(h.startswith("/jobs?state=CRASHED&blame=THIRD_PARTY&since=") for h in hrefs), (
        "a blame count links to its crashes"
    )
    assert any(h.startswith("/jobs?state=CRASHED&cause=koji.timeout&since=") for h in hrefs)
    odd = seeded.first(cause="gremlins.in_the_machine")
    assert f"/jobs/{odd['uuid']}" in hrefs, "an uncategorized crash links to its job"
    # The plots the dashboard offers are of the week it speaks of, not a mostly empty month.
    assert "Plots of the last 7 days" in words
    assert "/stats?period=7d" in hrefs
    assert "the last 7 days" in text_of(get(server, "/stats?period=7d"))


def test_a_dashboard_link_finds_what_it_counted(server: LiveServer, seeded: Seeded) -> None:
    page = get(server, "/")
    link = next(h for h in links(page) if h.startswith("/jobs?state=CRASHED&blame=UNKNOWN"))
    found = get(server, link)
    assert found.status_code == 200
    assert found.text.split("<tbody>")[1].count("<tr>") == 2


def test_an_empty_dashboard(server: LiveServer) -> None:
    words = text_of(get(server, "/"))
    assert "Running now 0" in words
    assert "No crashes in the last 7 days." in words


def test_the_causes_page_links_each_cause_to_its_crashes(server: LiveServer) -> None:
    page = get(server, "/causes")
    assert page.status_code == 200
    words = text_of(page)
    assert "A call to Koji did not answer in time." in words
    hrefs = links(page)
    for code in server.services.catalogue:
        assert f"/jobs?state=CRASHED&cause={code}" in hrefs


def test_the_causes_page_counts_each_rules_hits(server: LiveServer) -> None:
    with server.client("both") as client:
        for cause in ("status_file.missing", "task.exception"):
            job = job_in(client, "RUNNING")
            report(client, job["uuid"], state="CRASHED", cause=cause, log=KOJI_TIMEOUT)
        rule = client.get(f"/api/v1/jobs/{job['uuid']}").json()["rule_id"]
    page = get(server, "/causes")
    row = page.text.split(f'<tr id="rule-{rule}">')[1].split("</tr>")[0]
    cells = re.findall(r'<td class="num">(\d+)</td>', row)
    assert cells == ["2"]
    assert "never" not in row
    other = page.text.split('<tr id="rule-')[1].split("</tr>")[0]
    assert other.startswith(rule) or "never" in other


def test_the_stats_page_shows_how_crashes_were_classified(server: LiveServer) -> None:
    with server.client("both") as client:
        job = job_in(client, "RUNNING")
        report(client, job["uuid"], state="CRASHED", log=KOJI_TIMEOUT)
        job_in(client, "CRASHED")
    page = get(server, "/stats")
    words = text_of(page)
    assert (
        "Of 2 crashes: 1 by the reporter, 1 by ExecDB's rules from the log, 0 by a person, "
        "0 by nobody" in words
    )
    assert 'id="classification-rate' in page.text


def test_the_stats_page(server: LiveServer, seeded: Seeded) -> None:
    page = get(server, "/stats")
    assert page.status_code == 200
    svgs = re.findall(r"<svg[^>]*role=\"(?:img|group)\".*?</svg>", page.text, flags=re.S)
    assert len(svgs) >= 6
    for svg in svgs:
        assert "<title" in svg
        assert "<desc" in svg
        assert "<rect" in svg or "<polyline" in svg, "the plot draws something"


def test_the_stats_page_refuses_bad_filters(server: LiveServer) -> None:
    page = get(server, "/stats", since="2026-13-01")
    assert page.status_code == 400
    assert "is not an ISO 8601 date or time" in text_of(page)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"period": "fortnight"}, "period: 'fortnight' is not a period: hours, days or weeks"),
        ({"interval": "minute"}, "interval"),
        ({"since": "2020-01-01", "interval": "hour"}, "more than"),
    ],
)
def test_the_stats_page_names_what_is_wrong(
    server: LiveServer, params: dict[str, str], message: str
) -> None:
    page = get(server, "/stats", **params)
    assert page.status_code == 400
    assert message in text_of(page)
    assert "<svg" not in page.text


def test_pages_need_a_token_when_reads_do(make_server: StartServer) -> None:
    server: LiveServer = make_server(require_token_for_reads=True)
    for path in ("/", "/jobs", "/stats", "/causes", f"/jobs/{uuid4()}"):
        page = get(server, path)
        assert page.status_code == 401, path
        assert page.headers["content-type"].startswith("text/html"), path
        assert "this request needs a token" in text_of(page)
    with server.client("admin") as client:
        assert client.get("/jobs").status_code == 200


def test_the_stats_window_follows_since(server: LiveServer, seeded: Seeded) -> None:
    start = (seeded.now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    words = text_of(get(server, "/stats", since=start))
    assert "6 crashed" in words


def test_the_duration_histograms_count_the_started_and_the_ended_jobs(
    server: LiveServer, seeded: Seeded
) -> None:
    words = text_of(get(server, "/stats", period="30d"))
    started = [j for j in seeded.jobs if j["started_at"] is not None]
    ended = [j for j in started if j["finished_at"] is not None]
    assert f"Time in the queue: {len(started)} jobs" in words
    assert f"Run time: {len(ended)} jobs" in words


def test_pages_load_their_assets_from_this_server(server: LiveServer) -> None:
    for path in ("/", "/jobs", "/stats", "/causes"):
        page = get(server, path)
        assert page.status_code == 200, path
        assets = re.findall(r'(?:src|href)="([^"]+\.(?:css|js|svg)[^"]*)"', page.text)
        assert assets, path
        for asset in assets:
            assert asset.startswith("/static/web/"), asset
            assert get(server, asset).status_code == 200, asset
        assert "<main" in page.text
        assert 'lang="en"' in page.text


def test_the_stats_page_links_only_with_the_searchs_filters(
    server: LiveServer, seeded: Seeded
) -> None:
    page = get(server, "/stats", task="rpmlint", group_by="task", uncategorized_limit="5")
    assert page.status_code == 200
    searches = [link for link in links(page) if "/jobs?" in link]
    assert searches
    for link in searches:
        assert "task=rpmlint" in link
        assert "group_by" not in link
        assert "uncategorized_limit" not in link
        assert get(server, link.removeprefix(server.url)).status_code == 200, link
