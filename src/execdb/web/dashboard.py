"""The dashboard's figures of the last 7 days, beyond its counts: each cause with its first
and last crash ever, its crashes per day and whether it is new this week; the tasks that
crashed most; and the share of the week's crashes that are classified."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from markupsafe import Markup

from execdb.stats.schemas import GroupKey, Interval, Stats
from execdb.stats.seen import Seen
from execdb.stats.service import bucket_start, ran_to_an_outcome
from execdb.vocabulary import State
from execdb.web import charts
from execdb.web.colours import cause_colour
from execdb.web.plots import bucket_window

WEEK = timedelta(days=7)
TREND_DAYS = 7
TOP_CAUSES = 10
# Causes new this week are listed even below the top ones, up to this many more.
NEW_SHOWN = 5
# The week's causes (most crashes first) whose first and last crash are read: causes are
# the task code's free text, so they are bounded.
SEEN_MAX = 50
TOP_TASKS = 10


def trend_start(now: datetime) -> datetime:
    """The trend's days are UTC days: today so far and the six before it."""
    return bucket_start(now, Interval.day) - timedelta(days=TREND_DAYS - 1)


@dataclass(frozen=True, slots=True)
class CauseRow:
    cause: str | None
    count: int
    in_catalogue: bool
    seen: Seen | None
    new: bool
    colour: str
    trend: Markup


@dataclass(frozen=True, slots=True)
class TaskRow:
    task: str
    crashed: int
    ran: int  # jobs that ended FINISHED or CRASHED


def figures(
    week: Stats, trend: Stats, seen: dict[str, Seen], *, now: datetime, root: str
) -> dict[str, Any]:
    """What the dashboard shows of `week` (the last 7 days, by task), `trend` (crashes by
    cause per day since `trend_start`) and `seen` (causes' first and last crashes)."""
    new = {cause for cause, s in seen.items() if s.first >= now - WEEK}
    shown = week.by_cause[:TOP_CAUSES]
    shown += [c for c in week.by_cause[TOP_CAUSES:] if c.cause in new][:NEW_SHOWN]
    days = _per_day(trend)
    rows = [
        CauseRow(
            cause=c.cause,
            count=c.count,
            in_catalogue=c.in_catalogue,
            seen=seen.get(c.cause) if c.cause is not None else None,
            new=c.cause in new,
            colour=cause_colour(c.cause),
            trend=_sparkline(n, c.cause, trend, days.get(c.cause, []), root),
        )
        for n, c in enumerate(shown)
    ]
    tasks = [
        TaskRow(str(g.key[GroupKey.task]), g.by_state[State.CRASHED], ran_to_an_outcome(g.by_state))
        for g in week.groups
        if g.by_state[State.CRASHED]
    ]
    tasks.sort(key=lambda t: (-t.crashed, t.task))
    crashed = week.by_state[State.CRASHED]
    return {
        "cause_rows": rows,
        "new_causes": sorted(new),
        "failing_tasks": tasks[:TOP_TASKS],
        "crashed_week": crashed,
        "classified_week": crashed - week.uncategorized.count,
    }


def _per_day(trend: Stats) -> dict[str | None, list[float]]:
    assert trend.series is not None
    buckets = trend.series.buckets
    found: dict[str | None, list[float]] = {}
    for i, bucket in enumerate(buckets):
        for group in bucket.groups:
            cause = group.key[GroupKey.cause]
            found.setdefault(cause, [0.0] * len(buckets))[i] += group.by_state[State.CRASHED]
    return found


def _sparkline(n: int, cause: str | None, trend: Stats, values: list[float], root: str) -> Markup:
    assert trend.series is not None
    buckets = trend.series.buckets
    start, end = trend.window.start, trend.window.end
    labels = [b.start.strftime("%a %d %b") for b in buckets]
    links: list[str | None] = []
    if cause is not None:  # the search has no filter for "no cause"
        for b in buckets:
            since = bucket_window(b.start, timedelta(days=1), start, end)
            query = urlencode({"state": "CRASHED", "cause": cause, "since": since})
            links.append(f"{root}/jobs?{query}")
    name = cause or "no cause"
    return charts.sparkline(
        ident=f"trend-{n}",
        title=f"{name}: crashes per day (UTC), the last {TREND_DAYS} days",
        labels=labels,
        series=charts.Series(name, values or [0.0] * len(buckets), cause_colour(cause), links),
        unit="crashes",
    )
