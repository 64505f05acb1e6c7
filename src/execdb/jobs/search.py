"""Job search: the query parameters, following ResultsDB's conventions, and their SQL.

Comma lists mean OR (`state=CRASHED,RUNNING`, or the parameter repeated); `task:like` and
`item:like` take `*` wildcards; `since=START[,END]` bounds created_at (ISO 8601, UTC unless a
zone is given), or `period=7d` the window ending now (`with_period` turns it into `since`,
given the time); `cause=koji` matches the whole family (`koji`, `koji.timeout` ...).

Every filter is bounded (docs/api.md, "Limits"): building and compiling the SQL of a long
list holds the event loop (3,000 causes took about a second and, past SQLite's expression
depth, failed), so a request over a bound is refused before any of that work.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator
from sqlalchemy import ColumnElement, and_, or_
from sqlalchemy.sql.expression import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from execdb.causes.catalogue import FAMILY_RE
from execdb.jobs import fulltext
from execdb.jobs.models import Job
from execdb.jobs.text import is_unicode
from execdb.vocabulary import Blame, ClassifiedBy, State

_CONTROL = re.compile("[\x00-\x1f\x7f]")
# A crash signature as jobs store it (execdb.classify.signature): 16 hex digits.
SIGNATURE = re.compile("[0-9a-f]{16}")

VALUES_MAX = 100
LIKE_PATTERN_MAX = 256
LIKE_WILDCARDS_MAX = 16
PERIOD_RE = re.compile(r"([1-9][0-9]{0,5})([hdw])\Z")
PERIOD_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
PERIOD_MAX = timedelta(days=3660)


def _split(value: Any) -> Any:
    """'a,b' or ['a,b', 'c'] -> ['a', 'b', 'c'] (blank entries dropped).

    At most VALUES_MAX values, however given (comma lists, the parameter repeated). Stored
    names hold no control characters and are valid Unicode, so a value that is not cannot
    match anything: it is refused rather than sent to the database (PostgreSQL rejects NUL
    outright).
    """
    if value is None:
        return None
    parts = value if isinstance(value, list) else [value]
    values = [p.strip() for part in parts for p in str(part).split(",") if p.strip()]
    if len(values) > VALUES_MAX:
        raise ValueError(f"at most {VALUES_MAX} values (got {len(values)})")
    for v in values:
        if _CONTROL.search(v) or not is_unicode(v):
            raise ValueError(f"{v!r} holds control characters or is not valid Unicode")
    return values or None


# Who classified a crash, as a search names it: a `ClassifiedBy`, or nobody (null).
NOBODY = "nobody"
CLASSIFIED_BY = (*(c.value for c in ClassifiedBy), NOBODY)


def _split_patterns(value: Any) -> Any:
    patterns = _split(value)
    for p in patterns or ():
        if len(p) > LIKE_PATTERN_MAX:
            raise ValueError(f"at most {LIKE_PATTERN_MAX} characters in a pattern (got {len(p)})")
        if p.count("*") > LIKE_WILDCARDS_MAX:
            raise ValueError(
                f"at most {LIKE_WILDCARDS_MAX} wildcards in a pattern (got {p.count('*')})"
            )
    return patterns


def _split_lower(value: Any) -> Any:
    values = _split(value)
    return [v.lower() for v in values] if values else values


def _split_upper(value: Any) -> Any:
    values = _split(value)
    return [v.upper() for v in values] if values else values


CommaList = Annotated[list[str] | None, BeforeValidator(_split)]
PatternList = Annotated[list[str] | None, BeforeValidator(_split_patterns)]


def parse_time(text: str, *, end: bool) -> datetime:
    try:
        if len(text) == 10:  # a bare date means the whole day
            day = date.fromisoformat(text)
            moment = datetime.combine(day, time.max if end else time.min)
        else:
            moment = datetime.fromisoformat(text)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 date or time") from None
    except OverflowError:
        raise ValueError(f"{text!r} is out of range") from None


def period_span(period: str) -> timedelta:
    """'24h', '7d', '2w' -> how long a window ending now is; ValueError saying what is wrong.

    The one parser of periods: the API's searches and statistics and the statistics page.
    """
    found = PERIOD_RE.match(period.strip())
    if not found:
        raise ValueError(f"{period!r} is not a period: hours, days or weeks, e.g. 24h, 7d, 2w")
    span = int(found[1]) * PERIOD_UNITS[found[2]]
    if span > PERIOD_MAX:
        raise ValueError(f"{period!r} is longer than {PERIOD_MAX.days} days")
    return span


class JobFilters(BaseModel):
    """The filters of a job search, shared by every query over a set of jobs (statistics too)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    state: Annotated[list[State] | None, BeforeValidator(_split_upper)] = Field(
        default=None, description="Comma list of states."
    )
    task: CommaList = None
    item: CommaList = None
    item_type: CommaList = None
    arch: CommaList = None
    blame: Annotated[list[Blame] | None, BeforeValidator(_split_upper)] = None
    cause: CommaList = Field(
        default=None, description="Comma list of cause codes or families (`koji`)."
    )
    msg_id: CommaList = None
    task_like: PatternList = Field(
        default=None, alias="task:like", description="Task name pattern, `*` is a wildcard."
    )
    item_like: PatternList = Field(
        default=None, alias="item:like", description="Item pattern, `*` is a wildcard."
    )
    since: str | None = Field(
        default=None, description="START[,END] on created_at, ISO 8601, inclusive."
    )
    period: str | None = Field(
        default=None,
        description="Instead of `since`: the window ending now, in hours, days or weeks "
        "(`24h`, `7d`, `2w`).",
    )
    signature: CommaList = Field(
        default=None,
        description="Comma list of crash signatures (16 hex digits, as a job's `signature`).",
    )
    classified_by: Annotated[list[str] | None, BeforeValidator(_split_lower)] = Field(
        default=None,
        description="Comma list of who classified a crash: reporter, rules, person, or nobody "
        "(a job with no classified_by).",
    )
    latest: bool | None = Field(
        default=None,
        description="true: only the newest attempt of each chain of retries (false or "
        "missing: every attempt).",
    )

    @field_validator("signature")
    @classmethod
    def _check_signatures(cls, signatures: list[str] | None) -> list[str] | None:
        for signature in signatures or ():
            if not SIGNATURE.fullmatch(signature):
                raise ValueError(f"{signature!r} is not a signature (16 hex digits)")
        return signatures

    @field_validator("cause")
    @classmethod
    def _check_causes(cls, causes: list[str] | None) -> list[str] | None:
        for cause in causes or ():
            if not FAMILY_RE.match(cause):
                raise ValueError(f"{cause!r} is not a cause code or family")
        return causes

    @field_validator("classified_by")
    @classmethod
    def _check_classified_by(cls, values: list[str] | None) -> list[str] | None:
        for value in values or ():
            if value not in CLASSIFIED_BY:
                raise ValueError(f"{value!r} is not one of {', '.join(CLASSIFIED_BY)}")
        return values

    @field_validator("since")
    @classmethod
    def _check_since(cls, since: str | None) -> str | None:
        if since is not None:
            window(since)
        return since

    @field_validator("period")
    @classmethod
    def _check_period(cls, period: str | None, info: ValidationInfo) -> str | None:
        if period is None:
            return None
        if info.data.get("since") is not None:
            raise ValueError("give period or since, not both")
        period_span(period)
        return period.strip()


Filters = TypeVar("Filters", bound=JobFilters)


def with_period(filters: Filters, now: datetime) -> Filters:
    """The filters with their `period` turned into the `since` it stands for at `now`."""
    if filters.period is None:
        return filters
    start = (now - period_span(filters.period)).astimezone(UTC)
    return filters.model_copy(update={"period": None, "since": start.isoformat()})


class JobSearch(JobFilters):
    """Query parameters of GET /api/v1/jobs."""

    limit: int = Field(default=20, ge=1, le=1000)
    cursor: str | None = Field(default=None, description="From a `prev` or `next` link.")
    q: str | None = Field(
        default=None,
        description="Words that the crash's details or kept log must all hold (full-text; "
        "quotes and operators are only separators).",
    )

    @field_validator("q")
    @classmethod
    def _check_q(cls, q: str | None) -> str | None:
        if q is not None and not q.strip():
            return None
        if q is not None:
            fulltext.terms(q)
        return q


def window(since: str) -> tuple[datetime, datetime | None]:
    start, _, end = since.partition(",")
    begin = parse_time(start.strip(), end=False)
    finish = parse_time(end.strip(), end=True) if end.strip() else None
    if finish is not None and finish < begin:
        raise ValueError("the end of the window is before its start")
    return begin, finish


def _like(pattern: str) -> str:
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def as_is(column: ColumnElement[Any]) -> ColumnElement[Any]:
    return column


def unseekable(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """`+column`: the same value, on which SQLite can seek no index. SQLite's planner keeps no
    statistics, and this is how a query tells it which index not to take."""
    return UnaryExpression(column, operator=custom_op("+"), type_=column.type)


def search_column(
    search: JobFilters, *, sqlite: bool
) -> Callable[[ColumnElement[Any]], ColumnElement[Any]]:
    """How a job search passes its columns to `conditions`.

    SQLite's planner, without statistics, would take the window's two columns of ix_jobs_stats
    (state, created_at) over (state, id) for a search by state and window, and sort every job
    of the window; by (state, id) the newest page is the first rows it reads. So there, such a
    search compares `+created_at`, which can seek on no index.
    """
    if sqlite and search.state and search.since:
        return _plus_created_at
    return as_is


def _plus_created_at(column: ColumnElement[Any]) -> ColumnElement[Any]:
    return unseekable(column) if column.key == "created_at" else column


def conditions(
    search: JobFilters, column: Callable[[ColumnElement[Any]], ColumnElement[Any]] = as_is
) -> list[ColumnElement[bool]]:
    """The filters as SQL on the jobs table, each column a filter compares passed through
    `column` (statistics use it to choose which indexes SQLite may seek on)."""
    if search.period is not None:
        raise ValueError("a period must be turned into since first (with_period)")
    where: list[ColumnElement[bool]] = []
    for attribute, values in (
        (Job.state, search.state),
        (Job.blame, search.blame),
        (Job.task, search.task),
        (Job.item, search.item),
        (Job.item_type, search.item_type),
        (Job.arch, search.arch),
        (Job.msg_id, search.msg_id),
        (Job.signature, search.signature),
    ):
        if values:
            where.append(column(attribute.expression).in_(values))
    if search.cause:
        # A range, not LIKE 'koji.%': it uses the index on every backend ('/' follows '.').
        cause = column(Job.cause.expression)
        where.append(
            or_(*(or_(cause == c, and_(cause > c + ".", cause < c + "/")) for c in search.cause))
        )
    for attribute, patterns in ((Job.task, search.task_like), (Job.item, search.item_like)):
        if patterns:
            like = column(attribute.expression)
            where.append(or_(*(like.ilike(_like(p), escape="\\") for p in patterns)))
    if search.classified_by:
        who = column(Job.classified_by.expression)
        named = [v for v in search.classified_by if v != NOBODY]
        alternatives = [who.in_(named)] if named else []
        if NOBODY in search.classified_by:
            alternatives.append(who.is_(None))
        where.append(or_(*alternatives))
    if search.latest:
        # The newest attempt of a chain is the one not rescheduled (yet).
        where.append(Job.rescheduled_as.is_(None))
    if search.since:
        begin, finish = window(search.since)
        created_at = column(Job.created_at.expression)
        where.append(created_at >= begin)
        if finish is not None:
            where.append(created_at <= finish)
    return where
