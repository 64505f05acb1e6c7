"""Statistics over the jobs of a time window: counts, crash rate, durations, retries.

The interface, for the API and the web pages alike:

    services.stats.summary(query: StatsQuery, *, now: datetime, base_url: str = "") -> Stats

`query` holds the job search's filters plus `group_by` and `interval` (see
`execdb.stats.schemas`); `now` ends the default window (the last 30 days) and a window given
without an end; `base_url` prefixes the links of the uncategorized crashes listed. It raises
`InvalidInput` (400) when the time series would have too many buckets. Like every service
call it is synchronous: run it through `Database.run` from the event loop.

    services.stats.histograms(query, *, now, edges=DURATION_EDGES) -> DurationHistograms

counts the same jobs' queue and run times in bins, for plotting their distributions.

A summary is four statements in one read transaction, each one pass over the window's jobs:
one GROUP BY on (state, blame, cause, group keys, bucket) from which every count is summed up
here, one for the duration percentiles, one joining retried jobs to their next attempt, and one
listing the newest uncategorized crashes. The statements are the same on SQLite and PostgreSQL
but for the bucket expression and the percentiles (`percentile_cont` on PostgreSQL, a window
function on SQLite, both interpolating linearly between the closest ranks).
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
    Integer,
    String,
    case,
    cast,
    func,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.orm import aliased

from execdb.causes.catalogue import Catalogue
from execdb.db import Database
from execdb.errors import InvalidInput
from execdb.jobs.models import Job
from execdb.jobs.search import conditions, window
from execdb.jobs.states import Blame, State
from execdb.stats.schemas import (
    DEFAULT_DAYS,
    DURATION_EDGES,
    Bucket,
    CauseCount,
    Counts,
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

MAX_BUCKETS = 2000
PERCENTILES = (0.5, 0.9, 0.99)
DETAILS_SHOWN = 500

_STEP = {
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
_ENDED = frozenset({State.FINISHED, State.CRASHED, State.CANCELLED})

GroupValues = tuple[str | None, ...]


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
            buckets = (bucket_start(end, interval) - bucket_start(start, interval)) // _STEP[
                interval
            ] + 1
            if buckets > MAX_BUCKETS:
                raise InvalidInput(
                    f"interval: {buckets} {interval}s in the window, more than {MAX_BUCKETS}; "
                    "choose a longer interval or a shorter window"
                )
        where = [
            *conditions(query.model_copy(update={"since": None})),
            Job.created_at >= start,
            Job.created_at <= end,
        ]
        with self.db.read() as conn:
            counted = self._counts(conn, where, keys, interval)
            queue_time, run_time = self._durations(conn, where)
            retries = self._retries(conn, where)
            listed = self._uncategorized(conn, where, query.uncategorized_limit, base_url)

        total = _counts(row for row in counted)
        crashed = [row for row in counted if row["state"] == State.CRASHED]
        by_blame = dict.fromkeys(Blame, 0)
        for row in crashed:
            by_blame[row["blame"] or Blame.UNKNOWN] += row["n"]
        unclassified = [row for row in crashed if not self._categorized(row)]
        return Stats(
            **total.model_dump(),
            window=Window(start=start, end=end),
            group_by=keys,
            by_blame=by_blame,
            by_cause=self._by_cause(crashed),
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
        where = [
            *conditions(query.model_copy(update={"since": None})),
            Job.created_at >= start,
            Job.created_at <= end,
        ]
        with self.db.read() as conn:
            seconds = _seconds_pg if conn.dialect.name == "postgresql" else _seconds_sqlite
            queue = _histogram(
                conn,
                seconds(Job.created_at, Job.started_at),
                [*where, Job.started_at.is_not(None)],
                edges,
            )
            run = _histogram(
                conn,
                seconds(Job.started_at, Job.finished_at),
                [*where, Job.started_at.is_not(None), Job.finished_at.is_not(None)],
                edges,
            )
        return DurationHistograms(
            window=Window(start=start, end=end), queue_time=queue, run_time=run
        )

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
        columns: dict[str, Any] = {"state": Job.state, "blame": Job.blame, "cause": Job.cause}
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
            queue = _seconds_pg(Job.created_at, Job.started_at)
            run = _seconds_pg(Job.started_at, Job.finished_at)
            stmt = select(
                func.count(queue),
                _percentile_cont(queue),
                func.count(run),
                _percentile_cont(run),
            ).where(*where)
            nq, pq, nr, pr = conn.execute(stmt).one()
            return _durations(nq, pq), _durations(nr, pr)
        queue = _seconds_sqlite(Job.created_at, Job.started_at)
        run = _seconds_sqlite(Job.started_at, Job.finished_at)
        return (
            _percentiles_sqlite(conn, queue, [*where, Job.started_at.is_not(None)]),
            _percentiles_sqlite(
                conn, run, [*where, Job.started_at.is_not(None), Job.finished_at.is_not(None)]
            ),
        )

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
        return [
            UncategorizedJob(
                href=f"{base_url}/api/v1/jobs/{row['uuid']}",
                page=f"{base_url}/jobs/{row['uuid']}",
                **row,
            )
            for row in conn.execute(stmt).mappings()
        ]


def _order(value: str | None) -> tuple[bool, str]:
    """Sorts names alphabetically, None last."""
    return (value is None, value or "")


def _counts(rows: Iterable[Mapping[str, Any]]) -> Counts:
    by_state = dict.fromkeys(State, 0)
    for row in rows:
        by_state[row["state"]] += row["n"]
    ran = by_state[State.FINISHED] + by_state[State.CRASHED]
    return Counts(
        total=sum(by_state.values()),
        by_state=by_state,
        crash_rate=by_state[State.CRASHED] / ran if ran else None,
    )


def _key(row: Mapping[str, Any], keys: Sequence[GroupKey]) -> GroupValues:
    return tuple(None if row[k.value] is None else str(row[k.value]) for k in keys)


def _groups(rows: Iterable[Mapping[str, Any]], keys: Sequence[GroupKey]) -> list[Group]:
    if not keys:
        return []
    grouped: dict[GroupValues, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[_key(row, keys)].append(row)
    groups = [
        Group(key=dict(zip(keys, values, strict=True)), **_counts(members).model_dump())
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
    moment, last, step = bucket_start(start, interval), bucket_start(end, interval), _STEP[interval]
    while moment <= last:
        members = by_bucket.get(moment, [])
        buckets.append(
            Bucket(start=moment, groups=_groups(members, keys), **_counts(members).model_dump())
        )
        moment += step
    return Series(interval=interval, buckets=buckets)


def _parse_bucket(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if len(value) == 13:  # 'YYYY-MM-DD HH'
        return datetime.strptime(value, "%Y-%m-%d %H").replace(tzinfo=UTC)
    return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)


def _retry_figures(states: Counter[State]) -> dict[str, Any]:
    retried = states.total()
    pending = retried - sum(states[s] for s in _ENDED)
    decided = retried - pending
    helped = states[State.FINISHED]
    return {
        "retried": retried,
        "helped": helped,
        "pending": pending,
        "share": helped / decided if decided else None,
    }


def _seconds_pg(begin: Any, end: Any) -> ColumnElement[float]:
    return cast(func.extract("epoch", end) - func.extract("epoch", begin), Float)


def _seconds_sqlite(begin: Any, end: Any) -> ColumnElement[float]:
    # Whole seconds and the '.ffffff' fraction apart: julianday() alone is a double counted
    # in days, some 50 microseconds coarse, which would make SQLite's figures differ.
    whole = cast(func.strftime("%s", end), Integer) - cast(func.strftime("%s", begin), Integer)
    fraction = cast(func.substr(end, 20), Float) - cast(func.substr(begin, 20), Float)
    return whole + fraction


def _percentile_cont(value: ColumnElement[float]) -> ColumnElement[list[float]]:
    fractions = cast(list(PERCENTILES), ARRAY(Float))
    return func.percentile_cont(fractions).within_group(value)


def _durations(count: int, values: Sequence[float] | None) -> Durations:
    if not count or values is None:
        return Durations(count=count, p50=None, p90=None, p99=None)
    p50, p90, p99 = (round(float(v), 6) for v in values)
    return Durations(count=count, p50=p50, p90=p90, p99=p99)


def _percentiles_sqlite(
    conn: Connection, value: ColumnElement[float], where: Sequence[ColumnElement[bool]]
) -> Durations:
    """Percentile_cont by hand: rank the values once, keep the rows on either side of each
    percentile's position, interpolate here.

    The positions are computed in SQL from the count, `(n - 1) * p`, in the same double
    arithmetic as Python's, so `int()` of it here names the same rows.
    """
    values = select(value.label("v")).where(*where).subquery()
    ranked = select(
        values.c.v,
        (func.row_number().over(order_by=values.c.v) - 1).label("i"),
        func.count().over().label("n"),
    ).subquery()
    wanted = []
    for p in PERCENTILES:
        floor = cast((ranked.c.n - 1) * p, Integer)
        wanted += [ranked.c.i == floor, ranked.c.i == floor + 1]
    rows = conn.execute(select(ranked.c.i, ranked.c.n, ranked.c.v).where(or_(*wanted))).all()
    if not rows:
        return Durations(count=0, p50=None, p90=None, p99=None)
    n = rows[0].n
    at = {row.i: float(row.v) for row in rows}
    found = []
    for p in PERCENTILES:
        position = (n - 1) * p
        low = int(position)
        high = min(low + 1, n - 1)
        found.append(round(at[low] + (position - low) * (at[high] - at[low]), 6))
    return Durations(count=n, p50=found[0], p90=found[1], p99=found[2])


def _histogram(
    conn: Connection,
    value: ColumnElement[float],
    where: Sequence[ColumnElement[bool]],
    edges: Sequence[float],
) -> Histogram:
    # Binned in a subquery and grouped on its column: PostgreSQL would not see a CASE with
    # bound edges in SELECT and in GROUP BY as the same expression.
    which = case(*((value < edge, i) for i, edge in enumerate(edges)), else_=len(edges))
    binned = select(which.label("bin")).where(*where).subquery()
    counts = [0] * (len(edges) + 1)
    for index, n in conn.execute(select(binned.c.bin, func.count()).group_by(binned.c.bin)):
        counts[int(index)] = n
    return Histogram(edges=list(edges), counts=counts)
