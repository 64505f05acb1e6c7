"""The dashboard's figures of the last 7 days, beyond its counts: each cause with its first
and last crash ever, its crashes per day and whether it is new this week; the tasks that
crashed most; and the share of the week's crashes that are classified."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from markupsafe import Markup

from execdb.stats.recent import Recent
from execdb.stats.schemas import Stats
from execdb.stats.seen import Seen
from execdb.vocabulary import State
from execdb.web import charts, format
from execdb.web.colours import cause_colour

WEEK = timedelta(days=7)
TREND_DAYS = 7
TOP_CAUSES = 10
# Causes new this week are listed even below the top ones, up to this many more.
NEW_SHOWN = 5
# The week's causes (most crashes first) whose first and last crash are read: causes are
# the task code's free text, so they are bounded.
SEEN_MAX = 50
TOP_TASKS = 10


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


def figures(week: Stats, recent: Recent, *, now: datetime, root: str) -> dict[str, Any]:
    """What the dashboard shows of `week` (the summary of the last 7 days) and `recent` (the
    same crashes by task, cause and day, and their causes' first and last crashes)."""
    new = {cause for cause, s in recent.seen.items() if s.first >= now - WEEK}
    shown = week.by_cause[:TOP_CAUSES]
    shown += [c for c in week.by_cause[TOP_CAUSES:] if c.cause in new][:NEW_SHOWN]
    # The trend's days are UTC days: today so far and the six before it.
    today = now.date()
    days = [today - timedelta(days=n) for n in range(TREND_DAYS - 1, -1, -1)]
    rows = [
        CauseRow(
            cause=c.cause,
            count=c.count,
            in_catalogue=c.in_catalogue,
            seen=recent.seen.get(c.cause) if c.cause is not None else None,
            new=c.cause in new,
            colour=cause_colour(c.cause),
            trend=_sparkline(n, c.cause, days, recent, now, root),
        )
        for n, c in enumerate(shown)
    ]
    tasks = [
        TaskRow(task, crashed, crashed + recent.finished[task])
        for task, crashed in recent.crashed.items()
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


def _sparkline(
    n: int, cause: str | None, days: list[date], recent: Recent, now: datetime, root: str
) -> Markup:
    counts = recent.by_day.get(cause)
    links: list[str | None] = []
    if cause is not None:  # the search has no filter for "no cause"
        for day in days:
            start = datetime.combine(day, time.min, now.tzinfo)
            end = min(datetime.combine(day, time.max, now.tzinfo), now)
            since = f"{format.iso(start)},{format.iso_exact(end)}"
            query = urlencode({"state": "CRASHED", "cause": cause, "since": since})
            links.append(f"{root}/jobs?{query}")
    name = cause or "no cause"
    return charts.sparkline(
        ident=f"trend-{n}",
        title=f"{name}: crashes per day (UTC), the last {TREND_DAYS} days",
        labels=[day.strftime("%a %d %b") for day in days],
        series=charts.Series(
            name, [counts[day] if counts else 0 for day in days], cause_colour(cause), links
        ),
        unit="crashes",
    )
