"""The statistics page's figures: from `services.stats` answers to plots and small tables.

The page takes the statistics API's parameters (`StatsQuery`: the job search's filters,
`since`, `interval`) plus `period`, a moving window ('the last 7 days') for when no `since`
is given, so that a bookmarked page stays current.
"""

from __future__ import annotations

from collections.abc import Callable
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
from execdb.stats.service import STEP, ran_to_an_outcome, time_window
from execdb.vocabulary import Blame, State
from execdb.web import charts, format
from execdb.web.colours import OTHER, cause_colour
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
# Of them, up to this many are causes that first crashed in the window's last NEW_BUCKETS
# buckets: a cause that just started failing is not pushed out by the big old ones.
NEW_SLOTS = 2
NEW_BUCKETS = 2
TOP_TASKS = 15
MICROSECOND = timedelta(microseconds=1)
Link = Callable[..., str]


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
    crashes, causes = _crashes_over_time(series)
    top = top_causes(causes)
    interval = series.interval.value
    # The job search's own filters, and only those: a link with another parameter is a 400.
    # Its window is the link's `since`; a `period` would replace it by one ending at the click.
    filters = {k: v for k, v in params.items() if k in _JOB_FILTERS - {"since", "period"}}
    window = f"{format.iso(start)},{format.iso(end)}"

    def jobs_link(since: str = window, **extra: str) -> str:
        return f"{root}/jobs?" + urlencode({**filters, **extra, "since": since}, doseq=True)

    # Each bucket's own window, cut to the page's: its column's link finds exactly its jobs.
    step = STEP[series.interval]
    windows = [bucket_window(b.start, step, start, end) for b in series.buckets]

    def bucket_links(**extra: str) -> list[str | None]:
        return [jobs_link(since=w, state="CRASHED", **extra) for w in windows]

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
            series=[
                charts.Series(b, crashes[b], BLAME_COLOURS[b], bucket_links(blame=b)) for b in Blame
            ],
            unit="crashes",
            caption=f"Stacked from the bottom: {', '.join(Blame)}. Each part of a column "
            "links to its crashes.",
        ),
        "causes_plot": _causes(labels, causes, top, interval, bucket_links),
        "top_causes": top,
        "classification_plot": _classification(series, labels, interval, bucket_links),
        "queue_plot": _histogram("queue-time", "Time in the queue", durations.queue_time),
        "run_plot": _histogram("run-time", "Run time", durations.run_time),
        "tasks_plot": _crash_rates(tasks, jobs_link),
        "tasks": tasks,
    }


def bucket_window(bucket: datetime, step: timedelta, start: datetime, end: datetime) -> str:
    """`since` of the jobs of the bucket starting at `bucket`, within [start, end]."""
    last = min(bucket + step - MICROSECOND, end)
    return f"{format.iso_exact(max(bucket, start))},{format.iso_exact(last)}"


def top_causes(causes: dict[str | None, list[float]]) -> list[str | None]:
    """The causes "top causes over time" names, the rest being its "other" band.

    Ranked by their largest bucket (then their total): a cause that crashed much on one day
    shows even if the window is long. Up to NEW_SLOTS of the places go first to causes whose
    first crash of the window is in one of its last NEW_BUCKETS buckets, largest first, so
    that what just started failing is seen before it has had time to add up.
    """
    if not causes:
        return []
    buckets = len(next(iter(causes.values())))

    def first(values: list[float]) -> int:
        return next(i for i, v in enumerate(values) if v)

    def size(cause: str | None) -> tuple[float, float, bool, str]:
        values = causes[cause]
        return (-max(values), -sum(values), cause is None, cause or "")

    present = [c for c, values in causes.items() if any(values)]
    new = sorted((c for c in present if first(causes[c]) >= buckets - NEW_BUCKETS), key=size)
    new = new[:NEW_SLOTS] if len(present) > TOP_CAUSES else []
    rest = sorted((c for c in present if c not in new), key=size)
    return rest[: TOP_CAUSES - len(new)] + new


def _causes(
    labels: list[str],
    causes: dict[str | None, list[float]],
    top: list[str | None],
    interval: str,
    bucket_links: Callable[..., list[str | None]],
) -> Markup:
    shown = [
        charts.Series(
            cause or "no cause",
            causes[cause],
            cause_colour(cause),
            # The search has no filter for "no cause": that part links nowhere.
            bucket_links(cause=cause) if cause is not None else (),
        )
        for cause in top
    ]
    rest = [values for cause, values in causes.items() if cause not in top]
    if rest:
        other = [sum(column) for column in zip(*rest, strict=True)]
        shown.append(charts.Series(f"other causes ({len(rest)})", other, OTHER))
    order = ", ".join(s.name for s in shown)
    return charts.columns(
        ident="top-causes",
        title=f"Crashes per {interval}, by cause",
        labels=labels,
        series=shown,
        unit="crashes",
        caption=f"Stacked from the bottom: {order}. The causes with the largest "
        f"{interval}, and up to {NEW_SLOTS} that only started in the last {NEW_BUCKETS} "
        f"{interval}s; each cause has its colour on every page.",
    )


def _classification(
    series: Series,
    labels: list[str],
    interval: str,
    bucket_links: Callable[..., list[str | None]],
) -> str:
    return charts.columns(
        ident="classification-rate",
        title=f"Crashes per {interval}, by who classified them",
        labels=labels,
        series=[
            charts.Series(
                who,
                [b.by_classification[who] for b in series.buckets],
                colour,
                bucket_links(classified_by=who),
            )
            for who, colour in CLASSIFIED_COLOURS.items()
        ],
        unit="crashes",
        caption="Stacked from the bottom: the cause the reporter named, the cause ExecDB's "
        "rules found in the log, those a person classified, and crashes nobody classified.",
    )


def _crashes_over_time(
    series: Series,
) -> tuple[dict[Blame, list[float]], dict[str | None, list[float]]]:
    """Per bucket of the series: crashes by blame, and crashes by cause (every cause that
    crashed in the window)."""
    crashes: dict[Blame, list[float]] = {blame: [0.0] * len(series.buckets) for blame in Blame}
    causes: dict[str | None, list[float]] = {}
    for i, bucket in enumerate(series.buckets):
        for group in bucket.groups:
            n = group.by_state[State.CRASHED]
            if not n:
                continue
            crashes[Blame(group.key[GroupKey.blame] or Blame.UNKNOWN)][i] += n
            cause = group.key[GroupKey.cause]
            causes.setdefault(cause, [0.0] * len(series.buckets))[i] += n
    return crashes, causes


def _crash_rates(tasks: list[Group], jobs_link: Link) -> Markup:
    rows = []
    for g in tasks:
        ran = ran_to_an_outcome(g.by_state)
        task = str(g.key[GroupKey.task])
        crashed = g.by_state[State.CRASHED]
        shown = f"{format.percent(crashed, ran)} of {ran}"
        link = jobs_link(state="CRASHED", task=task)
        rows.append(
            charts.Bar(
                task, g.crash_rate or 0, shown, "#c62828", link, f"{task}: {crashed} crashes"
            )
        )
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
