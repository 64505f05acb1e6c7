"""The pages' pure helpers: durations, safe links, plot axes, and escaping in the plots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from execdb.web import charts, format


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.25, "250 ms"),
        (4.26, "4.3 s"),
        (42, "42 s"),
        (60, "1 min"),
        (185, "3 min 5 s"),
        (3600, "1 h"),
        (8040, "2 h 14 min"),
        (86400 * 3 + 3600 * 4 + 59, "3 d 4 h"),
        (None, "\u2013"),
        (-5, "\u2013"),
    ],
)
def test_durations_read_at_a_glance(seconds: float | None, text: str) -> None:
    assert format.duration(seconds) == text
    if seconds is not None:
        assert format.duration(timedelta(seconds=seconds)) == text


def test_moments() -> None:
    now = datetime(2026, 11, 3, 14, 5, 9, 500, tzinfo=UTC)
    assert format.timestamp(now) == "2026-11-03 14:05:09 UTC"
    assert format.iso(now) == "2026-11-03T14:05:09Z"
    assert format.ago(now - timedelta(minutes=5), now) == "5 min ago"
    assert format.ago(now + timedelta(minutes=3), now) == "in 3 min"
    assert format.between(now - timedelta(seconds=30), None, now) == timedelta(seconds=30)


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("https://buildbot.example.org/#/builders/1/builds/42", True),
        ("http://10.0.0.5:8010/log", True),
        ("javascript:alert(1)", False),
        ("JAVASCRIPT:alert(1)", False),
        ("data:text/html,<script>", False),
        ("//evil.example.org/x", False),
        ("https://", False),
        ("http://[::1", False),
        (42, False),
    ],
)
def test_only_http_urls_become_links(url: object, safe: bool) -> None:
    assert (format.web_link(url) == url) is safe


def test_the_executor_log_prefers_log_url() -> None:
    both = {"url": "https://b.example.org/42", "log_url": "https://b.example.org/42/log"}
    assert format.executor_log(both) == "https://b.example.org/42/log"
    assert format.executor_log({"url": "https://b.example.org/42"}) == "https://b.example.org/42"
    assert format.executor_log({"log_url": "file:///etc/passwd"}) is None
    assert format.executor_log(None) is None


@pytest.mark.parametrize(
    ("top", "axis"), [(0, 4), (1, 4), (4, 4), (5, 8), (7, 8), (130, 200), (0.3, 4)]
)
def test_axes_end_on_round_steps(top: float, axis: float) -> None:
    assert charts.axis_top(top) == axis


def test_plots_escape_every_text() -> None:
    evil = "<script>alert(1)</script>"
    for plot in (
        charts.columns(
            ident="c",
            title=evil,
            labels=[evil],
            series=[charts.Series(evil, [1], "#000"), charts.Series("b", [2], "#111")],
            unit=evil,
            caption=evil,
        ),
        charts.lines(
            ident="l", title=evil, labels=[evil], series=[charts.Series(evil, [1], "#000")], unit=""
        ),
        charts.bars(ident="b", title=evil, rows=[charts.Bar(evil, 0.5, evil)], scale=1),
    ):
        assert "<script>" not in plot
        assert "&lt;script&gt;" in plot


def test_a_stacked_column_is_as_tall_as_its_total() -> None:
    plot = charts.columns(
        ident="c",
        title="t",
        labels=["a", "b"],
        series=[charts.Series("x", [1, 0], "#000"), charts.Series("y", [3, 0], "#111")],
        unit="jobs",
    )
    drawn = plot.split('<ul class="legend">')[0]  # the legend's swatches are rects too
    assert drawn.count("<rect") == 2, "nothing drawn for an empty column"
    assert "a: 4 (x 1, y 3)" in plot, "the column's tooltip"
