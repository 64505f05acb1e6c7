"""The statistics page's figures: from `services.stats` answers to plots and small tables.

The page takes the statistics API's parameters (`StatsQuery`: the job search's filters,
`since`, `interval`) plus `period`, a moving window ('the last 7 days') for when no `since`
is given, so that a bookmarked page stays current.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from markupsafe import Markup

from execdb.causes.catalogue import Catalogue
from execdb.jobs.search import JobFilters, with_period
from execdb.services import Services
from execdb.stats.schemas import (
    DurationHistograms,
    Group,
    GroupKey,
    Histogram,
    Interval,
    Series,
    Stats,
    StatsQuery,
)
from execdb.stats.service import ran_to_an_outcome, time_window
from execdb.vocabulary import Blame, State
from execdb.web import charts, format
from execdb.web.pages import BLAME_COLOURS

PERIODS = {"24h": ("the last 24 hours", 1), "7d": ("the last 7 days", 7)}
PERIODS |= {"30d": ("the last 30 days", 30), "90d": ("the last 90 days", 90)}
PERIODS |= {"365d": ("the last year", 365)}
DEFAULT_PERIOD = "30d"
CLASSIFIED_COLOURS = {
    "reporter": "#0072b2",
    "rules": "#009e73",
    "person": "#cc79a7",
    "nobody": "#737373",
}
FORM = {"PERIODS": PERIODS, "INTERVALS": list(Interval)}
TOP_CAUSES = 6
TOP_TASKS = 15
# Okabe & Ito's palette again, in an order whose neighbours differ in lightness as well.
CAUSE_COLOURS = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#d55e00", "#56b4e9", "#737373")


def parse(params: dict[str, str | list[str]], now: datetime) -> tuple[StatsQuery, str | None]:
    """The page's query: `period` (the API's, any of 24h, 7d, 2w ...) becomes a `since`
    ending now; raises ValidationError with the message to show."""
    wanted = dict(params)
    if "since" in wanted:
        wanted.pop("period", None)
    else:
        wanted.setdefault("period", DEFAULT_PERIOD)
    query = StatsQuery.model_validate(wanted)
    period = query.period
    query = with_period(query, now)
    if query.interval is None:
        query = query.model_copy(update={"interval": _interval(query, now)})
    return query, period


def _interval(query: StatsQuery, now: datetime) -> Interval:
    start, end = time_window(query, now)
    span = end - start
    if span <= timedelta(days=2):
        return Interval.hour
    return Interval.day if span <= timedelta(days=120) else Interval.week


_JOB_FILTERS = frozenset(f.alias or name for name, f in JobFilters.model_fields.items())


def gather(
    services: Services, query: StatsQuery, now: datetime
) -> tuple[Stats, Stats, DurationHistograms]:
    """What the page shows, in three calls: crashes by blame and cause over time, jobs by task,
    and the duration histograms."""
    stats = services.stats
    unlisted = {"uncategorized_limit": 0}  # the page lists no uncategorized crashes
    by_kind = query.model_copy(update={"group_by": [GroupKey.blame, GroupKey.cause], **unlisted})
    by_task = query.model_copy(update={"group_by": [GroupKey.task], "interval": None, **unlisted})
    return (
        stats.summary(by_kind, now=now),
        stats.summary(by_task, now=now),
        stats.histograms(query, now=now),
    )


def _label(moment: datetime, interval: Interval, span: timedelta) -> str:
    if interval is Interval.hour:
        return moment.strftime("%H:00" if span <= timedelta(days=1) else "%d %b %H:00")
    return moment.strftime("%d %b")


def figures(
    by_kind: Stats,
    by_task: Stats,
    durations: DurationHistograms,
    params: dict[str, str | list[str]],
    catalogue: Catalogue,
    root: str,
) -> dict[str, Any]:
    series = by_kind.series
    assert series is not None
    start, end = by_kind.window.start, by_kind.window.end
    labels = [_label(b.start, series.interval, end - start) for b in series.buckets]
    top = [c.cause for c in by_kind.by_cause[:TOP_CAUSES]]
    crashes, causes = _crashes_over_time(series, top)
    interval = series.interval.value
    # The job search's own filters, and only those: a link with another parameter is a 400.
    filters = {k: v for k, v in params.items() if k in _JOB_FILTERS and k != "since"}
    window = f"{format.iso(start)},{format.iso(end)}"

    def jobs_link(**extra: str) -> str:
        return f"{root}/jobs?" + urlencode({**filters, **extra, "since": window}, doseq=True)

    tasks = [g for g in by_task.groups if g.crash_rate is not None][:TOP_TASKS]
    return {
        "stats": by_kind,
        "window": window,
        "jobs_link": jobs_link,
        "catalogue": catalogue,
        "crashes_plot": charts.columns(
            ident="crashes-by-blame",
            title=f"Crashes per {interval}, by blame",
            labels=labels,
            series=[charts.Series(b, crashes[b], BLAME_COLOURS[b]) for b in Blame],
            unit="crashes",
            caption=f"Stacked from the bottom: {', '.join(Blame)}.",
        ),
        "causes_plot": charts.lines(
            ident="top-causes",
            title=f"Crashes per {interval} of the most frequent causes",
            labels=labels,
            series=[
                charts.Series(c or "no cause", causes[c], CAUSE_COLOURS[i % len(CAUSE_COLOURS)])
                for i, c in enumerate(top)
            ],
            unit="crashes",
        ),
        "classification_plot": _classification(series, labels, interval),
        "queue_plot": _histogram("queue-time", "Time in the queue", durations.queue_time),
        "run_plot": _histogram("run-time", "Run time", durations.run_time),
        "tasks_plot": _crash_rates(tasks),
        "tasks": tasks,
    }


def _classification(series: Series, labels: list[str], interval: str) -> str:
    return charts.columns(
        ident="classification-rate",
        title=f"Crashes per {interval}, by who classified them",
        labels=labels,
        series=[
            charts.Series(who, [b.by_classification[who] for b in series.buckets], colour)
            for who, colour in CLASSIFIED_COLOURS.items()
        ],
        unit="crashes",
        caption="Stacked from the bottom: the cause the reporter named, the cause ExecDB's "
        "rules found in the log, those a person classified, and crashes nobody classified.",
    )


def _crashes_over_time(
    series: Series, top: list[str | None]
) -> tuple[dict[Blame, list[float]], dict[str | None, list[float]]]:
    """Per bucket of the series: crashes by blame, and crashes of each of the `top` causes."""
    crashes: dict[Blame, list[float]] = {blame: [] for blame in Blame}
    causes: dict[str | None, list[float]] = {cause: [] for cause in top}
    for bucket in series.buckets:
        blames: dict[Blame, float] = defaultdict(float)
        counted: dict[str | None, float] = defaultdict(float)
        for group in bucket.groups:
            n = group.by_state[State.CRASHED]
            blames[Blame(group.key[GroupKey.blame] or Blame.UNKNOWN)] += n
            counted[group.key[GroupKey.cause]] += n
        for blame in Blame:
            crashes[blame].append(blames[blame])
        for cause in top:
            causes[cause].append(counted[cause])
    return crashes, causes


def _crash_rates(tasks: list[Group]) -> Markup:
    rows = []
    for g in tasks:
        ran = ran_to_an_outcome(g.by_state)
        shown = f"{format.percent(g.by_state[State.CRASHED], ran)} of {ran}"
        rows.append(charts.Bar(str(g.key[GroupKey.task]), g.crash_rate or 0, shown, "#c62828"))
    return charts.bars(
        ident="crash-rate-by-task",
        title="Crash rate by task",
        rows=rows,
        scale=1.0,
        caption="Of the jobs that ran to an outcome (FINISHED or CRASHED), the share that "
        f"crashed; the {TOP_TASKS} tasks with the most jobs.",
    )


def _histogram(ident: str, title: str, histogram: Histogram) -> Markup:
    edges = [format.duration(e) for e in histogram.edges]
    labels = [f"<{edges[0]}", *edges[:-1], f"≥{edges[-1]}"]
    total = sum(histogram.counts)
    return charts.columns(
        ident=ident,
        title=f"{title}: {total} jobs",
        labels=labels,
        series=[charts.Series("jobs", histogram.counts, "#0072b2")],
        unit="jobs",
        caption="Each column counts the jobs from its label up to the next one's.",
    )
