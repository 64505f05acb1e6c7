"""Statistics over the jobs of a time window: counts, crash rate, durations, retries.

The interface, for the API and the web pages alike:

    services.stats.summary(query: StatsQuery, *, now: datetime, base_url: str = "") -> Stats

`query` holds the job search's filters plus `group_by` and `interval` (see
`execdb.stats.schemas`); `now` ends the default window (the last 30 days) and a window given
without an end; `base_url` prefixes the links of the uncategorized crashes listed. It raises
`InvalidInput` (400) when the time series would have too many buckets. Like every service
call it is synchronous: run it through `Database.run_read` from the event loop (it can
take a while).

    services.stats.histograms(query, *, now, edges=DURATION_EDGES) -> DurationHistograms

counts the same jobs' queue and run times in bins, for plotting their distributions.

A summary is four statements in one read transaction: one GROUP BY on (state, blame, cause,
group keys, bucket) from which every count is summed up here, one for the duration
percentiles, one joining retried jobs to their next attempt, and one listing the newest
uncategorized crashes. The first two read only the index `ix_jobs_stats`, the third
the small partial index of retried jobs. The statements are the same on SQLite and PostgreSQL
but for the bucket expression and the percentiles: PostgreSQL's `percentile_cont`, and on
SQLite the same computation here on the sorted values (both interpolate linearly between the
two closest ranks; durations are the stored `queue_us` and `run_us`, in microseconds).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Float,
    String,
    case,
    cast,
    func,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.orm import InstrumentedAttribute, aliased

from execdb.causes.catalogue import Catalogue
from execdb.db import Database
from execdb.errors import InvalidInput
from execdb.jobs.models import Job
from execdb.jobs.schemas import links
from execdb.jobs.search import CLASSIFIED_BY, as_is, conditions, unseekable, window
from execdb.stats.recent import Recent, recent
from execdb.stats.schemas import (
    DEFAULT_DAYS,
    DURATION_EDGES,
    Bucket,
    CauseCount,
    DurationHistograms,
    Durations,
    Group,
    GroupKey,
    Histogram,
    Interval,
    Retries,
    RetryCount,
    Series,
    Stats,
    StatsQuery,
    Uncategorized,
    UncategorizedJob,
    Window,
)
from execdb.stats.seen import rule_hits
from execdb.vocabulary import TERMINAL, Blame, State

MAX_BUCKETS = 2000
PERCENTILES = (0.5, 0.9, 0.99)
_PERCENT = [100 * p for p in PERCENTILES]
DETAILS_SHOWN = 500

STEP = {
    Interval.hour: timedelta(hours=1),
    Interval.day: timedelta(days=1),
    Interval.week: timedelta(weeks=1),
}
_COLUMNS: dict[GroupKey, Any] = {
    GroupKey.task: Job.task,
    GroupKey.state: Job.state,
    GroupKey.blame: Job.blame,
    GroupKey.cause: Job.cause,
    GroupKey.arch: Job.arch,
    GroupKey.item_type: Job.item_type,
}

GroupValues = tuple[str | None, ...]
Microseconds = ColumnElement[int | None] | InstrumentedAttribute[int | None]


def _where(
    query: StatsQuery, start: datetime, end: datetime, *, sqlite: bool, retried: bool = False
) -> list[ColumnElement[bool]]:
    """The query's jobs created in [start, end].

    The states are always named, all of them when the query names none, so that the window
    is a few ranges of ix_jobs_stats (state, created_at, ...), an index holding every column
    the counts and the percentiles read. SQLite's planner, which has no statistics, would
    rather seek on the search indexes (task, id) or (cause, id) and then read every row they
    point to; its filters on the columns ix_jobs_stats holds are written `+column`, which no
    index can seek on. The retried jobs come from their own small partial index, unless the
    query names states (a few SCHEDULED and RUNNING jobs are found faster by their state).
    """
    state = Job.state.expression
    return [
        *conditions(
            query.model_copy(update={"since": None, "state": None}),
            _unseekable if sqlite else as_is,
        ),
        (_unseekable(state) if sqlite and retried and not query.state else state).in_(
            query.state or list(State)
        ),
        Job.created_at >= start,
        Job.created_at <= end,
    ]


def _unseekable(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """`+column` for the columns ix_jobs_stats holds, on which SQLite may then seek no index."""
    if column.key in ("item", "msg_id"):
        return column
    return unseekable(column)


def bucket_start(moment: datetime, interval: Interval) -> datetime:
    """The start of the bucket holding `moment`: the UTC hour, day, or week from Monday."""
    moment = moment.astimezone(UTC)
    if interval is Interval.hour:
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if interval is Interval.day:
        return day
    return day - timedelta(days=day.weekday())


def time_window(query: StatsQuery, now: datetime) -> tuple[datetime, datetime]:
    if query.since is None:
        return now - timedelta(days=DEFAULT_DAYS), now
    start, end = window(query.since)
    return start, end if end is not None else max(now, start)


class StatsService:
    def __init__(self, db: Database, catalogue: Catalogue) -> None:
        self.db = db
        self.catalogue = catalogue

    def summary(self, query: StatsQuery, *, now: datetime, base_url: str = "") -> Stats:
        """Statistics of the jobs matching `query`, created in its window."""
        start, end = time_window(query, now)
        keys = list(query.group_by or ())
        interval = query.interval
        if interval is not None:
            buckets = (bucket_start(end, interval) - bucket_start(start, interval)) // STEP[
                interval
            ] + 1
            if buckets > MAX_BUCKETS:
                raise InvalidInput(
                    f"interval: {buckets} {interval}s in the window, more than {MAX_BUCKETS}; "
                    "choose a longer interval or a shorter window"
                )
        where = _where(query, start, end, sqlite=self.db.is_sqlite)
        with self.db.read() as conn:
            counted = self._counts(conn, where, keys, interval)
            queue_time, run_time = self._durations(conn, where)
            retried = _where(query, start, end, sqlite=self.db.is_sqlite, retried=True)
            retries = self._retries(conn, retried)
            listed = self._uncategorized(conn, where, query.uncategorized_limit, base_url)

        total = _counts(counted)
        crashed = [row for row in counted if row["state"] == State.CRASHED]
        by_blame = dict.fromkeys(Blame, 0)
        for row in crashed:
            by_blame[row["blame"] or Blame.UNKNOWN] += row["n"]
        unclassified = [row for row in crashed if not self._categorized(row)]
        return Stats(
            **total,
            window=Window(start=start, end=end),
            group_by=keys,
            by_blame=by_blame,
            by_cause=self._by_cause(crashed),
            disagreements=sum(row["n"] for row in crashed if row["disagrees"]),
            queue_time=queue_time,
            run_time=run_time,
            retries=retries,
            uncategorized=Uncategorized(
                count=sum(row["n"] for row in unclassified),
                by_cause=self._by_cause(unclassified),
                jobs=listed,
            ),
            groups=_groups(counted, keys),
            series=(_series(counted, keys, interval, start, end) if interval is not None else None),
        )

    def histograms(
        self, query: StatsQuery, *, now: datetime, edges: Sequence[float] = DURATION_EDGES
    ) -> DurationHistograms:
        """The queue and run times of the jobs matching `query`, counted in bins."""
        start, end = time_window(query, now)
        where = _where(query, start, end, sqlite=self.db.is_sqlite)
        with self.db.read() as conn:
            queue = _histogram(conn, Job.queue_us, [*where, Job.queue_us.is_not(None)], edges)
            run = _histogram(conn, Job.run_us, [*where, Job.run_us.is_not(None)], edges)
        return DurationHistograms(
            window=Window(start=start, end=end), queue_time=queue, run_time=run
        )

    def rule_hits(self) -> dict[str, tuple[int, datetime]]:
        """For each rule that ever fired on a crash's log: how many jobs, and the newest one's
        created_at (both from the index on rule_id, created_at)."""
        with self.db.read() as conn:
            return rule_hits(conn)

    def recent(self, since: datetime, *, causes_max: int) -> Recent:
        """The crashes since `since` as the dashboard shows them (`execdb.stats.recent`)."""
        with self.db.read() as conn:
            return recent(conn, since, causes_max)

    def _categorized(self, row: Mapping[str, Any]) -> bool:
        return self._known(row["cause"]) and row["blame"] not in (None, Blame.UNKNOWN)

    def _by_cause(self, rows: Iterable[Mapping[str, Any]]) -> list[CauseCount]:
        counts: Counter[str | None] = Counter()
        for row in rows:
            counts[row["cause"]] += row["n"]
        return [
            CauseCount(cause=cause, count=n, in_catalogue=self._known(cause))
            for cause, n in sorted(counts.items(), key=lambda c: (-c[1], _order(c[0])))
        ]

    def _known(self, cause: str | None) -> bool:
        return cause is not None and cause in self.catalogue

    def _counts(
        self,
        conn: Connection,
        where: Sequence[ColumnElement[bool]],
        keys: Sequence[GroupKey],
        interval: Interval | None,
    ) -> list[dict[str, Any]]:
        """Jobs by (state, blame, cause, the group keys and the bucket): every count's source."""
        columns: dict[str, Any] = {
            "state": Job.state,
            "blame": Job.blame,
            "cause": Job.cause,
            "classified_by": Job.classified_by,
            "disagrees": case((Job.rules_cause.is_(None), 0), else_=1),
        }
        for key in keys:
            columns.setdefault(key.value, _COLUMNS[key])
        if interval is not None:
            columns["bucket"] = self._bucket(conn, interval)
        labelled = [column.label(name) for name, column in columns.items()]
        stmt = select(*labelled, func.count().label("n")).where(*where).group_by(*labelled)
        rows = [dict(row) for row in conn.execute(stmt).mappings()]
        if interval is not None:
            for row in rows:
                row["bucket"] = _parse_bucket(row["bucket"])
        return rows

    def _bucket(self, conn: Connection, interval: Interval) -> ColumnElement[Any]:
        if conn.dialect.name == "postgresql":
            utc = func.timezone("UTC", Job.created_at)
            return func.date_trunc(interval.value, utc, type_=DateTime())
        # SQLite stores datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff' text in UTC.
        if interval is Interval.hour:
            return func.substr(Job.created_at, 1, 13, type_=String())
        if interval is Interval.day:
            return func.substr(Job.created_at, 1, 10, type_=String())
        return func.date(Job.created_at, "-6 days", "weekday 1", type_=String())

    def _durations(
        self, conn: Connection, where: Sequence[ColumnElement[bool]]
    ) -> tuple[Durations, Durations]:
        if conn.dialect.name == "postgresql":
            totals = select(
                func.count(Job.queue_us),
                _percentile_cont(Job.queue_us),
                func.count(Job.run_us),
                _percentile_cont(Job.run_us),
            ).where(*where)
            nq, pq, nr, pr = conn.execute(totals).one()
            return _durations(nq, pq), _durations(nr, pr)
        # SQLite has no percentile function. Ranking the values with a window function costs
        # it several times more than handing them over, and they come as one
        # comma-separated text per column rather than as a row each: tens of thousands of
        # row tuples cost more to fetch than the index scan behind them. NumPy parses them
        # and finds the percentiles by partial sorting, the same linear interpolation as
        # percentile_cont, far faster than sorting Python ints (docs/benchmarks.md; imported
        # here: only this path needs it).
        import numpy as np

        stmt = select(func.group_concat(Job.queue_us), func.group_concat(Job.run_us)).where(
            *where, Job.queue_us.is_not(None)
        )
        queued, ran = conn.execute(stmt).one()
        found = []
        for text in (queued, ran):
            values = np.fromstring(text, dtype=np.int64, sep=",") if text else np.empty(0)
            percentiles = np.percentile(values, _PERCENT).tolist() if values.size else None
            found.append(_durations(values.size, percentiles))
        return found[0], found[1]

    def _retries(self, conn: Connection, where: Sequence[ColumnElement[bool]]) -> Retries:
        following = aliased(Job)
        stmt = (
            select(Job.cause, following.state, func.count())
            .join(following, following.uuid == Job.rescheduled_as)
            .where(*where, Job.rescheduled_as.is_not(None))
            .group_by(Job.cause, following.state)
        )
        by_cause: dict[str | None, Counter[State]] = defaultdict(Counter)
        for cause, state, n in conn.execute(stmt):
            by_cause[cause][state] += n
        total: Counter[State] = Counter()
        for states in by_cause.values():
            total.update(states)
        causes = sorted(by_cause.items(), key=lambda c: (-c[1].total(), _order(c[0])))
        return Retries(
            **_retry_figures(total),
            by_cause=[RetryCount(cause=c, **_retry_figures(states)) for c, states in causes],
        )

    def _uncategorized(
        self,
        conn: Connection,
        where: Sequence[ColumnElement[bool]],
        limit: int,
        base_url: str,
    ) -> list[UncategorizedJob]:
        if limit == 0:
            return []
        stmt = (
            select(
                Job.uuid,
                Job.task,
                Job.item,
                Job.item_type,
                Job.arch,
                Job.blame,
                Job.cause,
                func.substr(Job.details, 1, DETAILS_SHOWN, type_=String()).label("details"),
                Job.created_at,
                Job.finished_at,
            )
            .where(
                *where,
                Job.state == State.CRASHED,
                or_(
                    Job.cause.is_(None),
                    Job.blame.is_(None),
                    Job.blame == Blame.UNKNOWN,
                    Job.cause.not_in(list(self.catalogue)),
                ),
            )
            .order_by(Job.id.desc())
            .limit(limit)
        )
        found = []
        for row in conn.execute(stmt).mappings():
            href, page = links(base_url, row["uuid"])
            found.append(UncategorizedJob(href=href, page=page, **row))
        return found


def _order(value: str | None) -> tuple[bool, str]:
    """Sorts names alphabetically, None last."""
    return (value is None, value or "")


def _counts(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The fields of `Counts` for these rows.

    Groups and buckets are built with `model_construct` from these: a daily series by cause
    holds a thousand of them, and validating what was just computed here would cost more
    than the query.
    """
    by_state = dict.fromkeys(State, 0)
    by_classification = dict.fromkeys(CLASSIFIED_BY, 0)
    for row in rows:
        by_state[row["state"]] += row["n"]
        if row["state"] == State.CRASHED:
            by_classification[row["classified_by"] or "nobody"] += row["n"]
    ran = ran_to_an_outcome(by_state)
    return {
        "total": sum(by_state.values()),
        "by_state": by_state,
        "crash_rate": by_state[State.CRASHED] / ran if ran else None,
        "by_classification": by_classification,
    }


def _key(row: Mapping[str, Any], keys: Sequence[GroupKey]) -> GroupValues:
    return tuple(None if row[k.value] is None else str(row[k.value]) for k in keys)


def _groups(rows: Iterable[Mapping[str, Any]], keys: Sequence[GroupKey]) -> list[Group]:
    if not keys:
        return []
    grouped: dict[GroupValues, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[_key(row, keys)].append(row)
    groups = [
        Group.model_construct(key=dict(zip(keys, values, strict=True)), **_counts(members))
        for values, members in grouped.items()
    ]
    groups.sort(key=lambda g: (-g.total, [_order(v) for v in g.key.values()]))
    return groups


def _series(
    rows: Iterable[Mapping[str, Any]],
    keys: Sequence[GroupKey],
    interval: Interval,
    start: datetime,
    end: datetime,
) -> Series:
    by_bucket: dict[datetime, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        by_bucket[row["bucket"]].append(row)
    buckets = []
    first, step = bucket_start(start, interval), STEP[interval]
    # Counted, not stepped past the last bucket: that step may leave datetime's range.
    for n in range((bucket_start(end, interval) - first) // step + 1):
        moment = first + n * step
        members = by_bucket.get(moment, [])
        buckets.append(
            Bucket.model_construct(start=moment, groups=_groups(members, keys), **_counts(members))
        )
    return Series.model_construct(interval=interval, buckets=buckets)


def _parse_bucket(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if len(value) == 13:  # 'YYYY-MM-DD HH'
        return datetime.strptime(value, "%Y-%m-%d %H").replace(tzinfo=UTC)
    return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)


def ran_to_an_outcome(by_state: Mapping[State, int]) -> int:
    """The jobs that ended FINISHED or CRASHED: what a crash rate is a share of (cancelled
    jobs said nothing about the task)."""
    return by_state[State.FINISHED] + by_state[State.CRASHED]


def _retry_figures(states: Counter[State]) -> dict[str, Any]:
    retried = states.total()
    pending = retried - sum(states[s] for s in TERMINAL)
    decided = retried - pending
    helped = states[State.FINISHED]
    return {
        "retried": retried,
        "helped": helped,
        "pending": pending,
        "share": helped / decided if decided else None,
    }


def _percentile_cont(value: Microseconds) -> ColumnElement[list[float]]:
    fractions = cast(list(PERCENTILES), ARRAY(Float))
    return func.percentile_cont(fractions).within_group(value)


def _durations(count: int, values: Sequence[float] | None) -> Durations:
    if not count or values is None:
        return Durations(count=count, p50=None, p90=None, p99=None)
    p50, p90, p99 = (round(float(v) / 1e6, 6) for v in values)
    return Durations(count=count, p50=p50, p90=p90, p99=p99)


def _histogram(
    conn: Connection,
    value: Microseconds,
    where: Sequence[ColumnElement[bool]],
    edges: Sequence[float],
) -> Histogram:
    # Binned in a subquery and grouped on its column: PostgreSQL would not see a CASE with
    # bound edges in SELECT and in GROUP BY as the same expression.
    # `value` is in microseconds, the edges in seconds.
    which = case(*((value < edge * 1e6, i) for i, edge in enumerate(edges)), else_=len(edges))
    binned = select(which.label("bin")).where(*where).subquery()
    counts = [0] * (len(edges) + 1)
    for index, n in conn.execute(select(binned.c.bin, func.count()).group_by(binned.c.bin)):
        counts[int(index)] = n
    return Histogram(edges=list(edges), counts=counts)
