"""What the statistics API takes (`StatsQuery`) and gives (`Stats`).

The filters are the job search's own (`execdb.jobs.search.JobFilters`), so a number on a
statistics page and the list of jobs behind it are always the same set: a link from one to
the other only has to carry the same parameters over.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, Field, field_validator

from execdb.jobs.search import JobFilters, _split
from execdb.vocabulary import Blame, State


class GroupKey(StrEnum):
    """A column jobs can be grouped by."""

    task = "task"
    state = "state"
    blame = "blame"
    cause = "cause"
    arch = "arch"
    item_type = "item_type"


class Interval(StrEnum):
    """The width of a time series bucket; buckets start on UTC hours, days and Mondays."""

    hour = "hour"
    day = "day"
    week = "week"


def _split_lower(value: Any) -> Any:
    values = _split(value)
    return [v.lower() for v in values] if values else values


DEFAULT_DAYS = 30
UNCATEGORIZED_LIMIT = 20


class StatsQuery(JobFilters):
    """Query parameters of GET /api/v1/stats: the job search's filters, plus how to group.

    From Python: `StatsQuery.model_validate({"group_by": "cause", "interval": "day"})`, or
    keyword arguments (`StatsQuery(group_by=[GroupKey.cause], interval=Interval.day)`).
    """

    since: str | None = Field(
        default=None,
        description="START[,END] on created_at, ISO 8601, inclusive; END defaults to now. "
        f"Without it: the last {DEFAULT_DAYS} days.",
    )
    group_by: Annotated[list[GroupKey] | None, BeforeValidator(_split_lower)] = Field(
        default=None,
        description="One or two of task, state, blame, cause, arch, item_type (comma list).",
    )
    interval: Interval | None = Field(
        default=None, description="With it, a time series: hour, day or week buckets."
    )
    uncategorized_limit: int = Field(
        default=UNCATEGORIZED_LIMIT,
        ge=0,
        le=1000,
        description="How many of the newest uncategorized crashes to list.",
    )

    @field_validator("group_by")
    @classmethod
    def _check_group_by(cls, keys: list[GroupKey] | None) -> list[GroupKey] | None:
        if keys is not None:
            if len(keys) > 2:
                raise ValueError("at most two keys")
            if len(set(keys)) != len(keys):
                raise ValueError("a key is given twice")
        return keys


class Window(BaseModel):
    start: datetime = Field(description="Jobs created at or after this time count.")
    end: datetime = Field(description="Jobs created at or before this time count.")


class Durations(BaseModel):
    """Percentiles of a duration in seconds (linear interpolation between the closest ranks,
    like PostgreSQL's percentile_cont); null when no job has it."""

    count: int = Field(description="How many jobs have this duration.")
    p50: float | None
    p90: float | None
    p99: float | None


class CauseCount(BaseModel):
    cause: str | None = Field(description="The cause code; null for crashes without one.")
    count: int
    in_catalogue: bool = Field(description="Whether the cause is in the cause catalogue.")


class Counts(BaseModel):
    """How many jobs of a set there are, by state."""

    total: int
    by_state: dict[State, int] = Field(description="Every state, zeros included.")
    crash_rate: float | None = Field(
        description="CRASHED / (FINISHED + CRASHED): of the jobs that ran to an outcome, the "
        "share that crashed; null when there are none."
    )
    by_classification: dict[str, int] = Field(
        description="CRASHED jobs by who gave them their blame and cause: reporter (a cause "
        "the report named), rules (ExecDB's log classification), person (by hand), nobody."
    )


class Group(Counts):
    key: dict[GroupKey, str | None] = Field(
        description='The group\'s value of each group_by key, e.g. {"cause": "koji.timeout"}.'
    )


class Bucket(Counts):
    start: datetime = Field(description="The bucket covers [start, start + interval).")
    groups: list[Group] = Field(
        description="With group_by: the bucket's jobs by group, groups without jobs left out."
    )


class Series(BaseModel):
    interval: Interval
    buckets: list[Bucket] = Field(
        description="Every bucket from the one holding the window's start to the one holding "
        "its end, oldest first, empty ones included; the first and last may be partial."
    )


class RetryFigures(BaseModel):
    retried: int = Field(description="Jobs with rescheduled_as set.")
    helped: int = Field(description="Of them, those whose next attempt FINISHED.")
    pending: int = Field(description="Of them, those whose next attempt has not ended yet.")
    share: float | None = Field(
        description="helped / (retried - pending): how often a retry helped; null when no "
        "retry has ended."
    )


class RetryCount(RetryFigures):
    cause: str | None = Field(description="The retried attempt's cause (null: none).")


class Retries(RetryFigures):
    """Retried jobs of the window (the attempt that was retried matches the filters)."""

    by_cause: list[RetryCount] = Field(description="By the retried attempt's cause.")


class UncategorizedJob(BaseModel):
    uuid: UUID
    href: str
    page: str
    task: str
    item: str
    item_type: str
    arch: str | None
    blame: Blame | None
    cause: str | None
    details: str | None = Field(description="The first 500 characters of the details.")
    created_at: datetime
    finished_at: datetime | None


class Uncategorized(BaseModel):
    """Crashes nobody has classified yet: no cause, blame UNKNOWN, or a cause missing from
    the catalogue."""

    count: int
    by_cause: list[CauseCount]
    jobs: list[UncategorizedJob] = Field(description="The newest ones, newest first.")


class Stats(Counts):
    """The answer of GET /api/v1/stats."""

    window: Window
    group_by: list[GroupKey]
    by_blame: dict[Blame, int] = Field(description="CRASHED jobs by blame, zeros included.")
    by_cause: list[CauseCount] = Field(description="CRASHED jobs by cause, most first.")
    disagreements: int = Field(
        description="CRASHED jobs whose log the rules classified otherwise than the cause the "
        "report named (which was kept): rules_blame and rules_cause on the job."
    )
    queue_time: Durations = Field(description="created_at to started_at, for started jobs.")
    run_time: Durations = Field(description="started_at to finished_at, for ended jobs.")
    retries: Retries
    uncategorized: Uncategorized
    groups: list[Group] = Field(description="With group_by: every group, largest first.")
    series: Series | None = Field(description="With interval: the time series.")


# Bin edges for duration histograms, in seconds: 10 s, 30 s, 1, 2, 5, 10, 20, 30 min, 1, 2, 4 h.
# Durations spread over orders of magnitude, so the bins widen as they go.
DURATION_EDGES = (10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0)


class Histogram(BaseModel):
    """How many jobs took how long: `counts[i]` jobs took from `edges[i - 1]` (0 for the first
    bin) up to but not including `edges[i]` seconds; the last bin has no end."""

    edges: list[float]
    counts: list[int] = Field(description="One more than there are edges.")


class DurationHistograms(BaseModel):
    window: Window
    queue_time: Histogram = Field(description="created_at to started_at, for started jobs.")
    run_time: Histogram = Field(description="started_at to finished_at, for ended jobs.")
