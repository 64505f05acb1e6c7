"""The watchdog's verdict on a job that may have been abandoned. Pure: the clock is an argument.

- SCHEDULED longer than its limit: no executor ever started it (watchdog.not_started).
- RUNNING and it has sent heartbeats, but none for the heartbeat limit: its executor is gone
  (executor.lost). This catches a dead executor within minutes instead of hours.
- RUNNING longer than its limit: watchdog.timeout.

The limits are `[watchdog]` settings, per task pattern in `[watchdog.tasks]`. All three crash
the job with blame TASKOTRON, as ExecDB's own verdict: the executor's own terminal report,
should it come after all, replaces it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from execdb.automation.settings import WatchdogSettings
from execdb.jobs.schemas import JobReport
from execdb.vocabulary import Blame, State


def verdict(job: Mapping[str, Any], settings: WatchdogSettings, now: datetime) -> JobReport | None:
    """The CRASHED report the watchdog makes about `job`, or None if it is within its limits."""
    running, scheduled = settings.limits(job["task"])
    if job["state"] == State.SCHEDULED:
        if now - job["created_at"] > scheduled:
            return _crash(
                "watchdog.not_started",
                f"SCHEDULED since {job['created_at']:%Y-%m-%d %H:%M:%S} UTC, longer than the "
                f"{_human(scheduled)} limit: no executor started it",
            )
    elif job["state"] == State.RUNNING:
        beat: datetime | None = job["heartbeat_at"]
        if beat is not None and now - beat > settings.heartbeat:
            return _crash(
                "executor.lost",
                f"no heartbeat since {beat:%Y-%m-%d %H:%M:%S} UTC, longer than the "
                f"{_human(settings.heartbeat)} heartbeat limit: the executor is gone",
            )
        started: datetime | None = job["started_at"]
        if started is not None and now - started > running:
            return _crash(
                "watchdog.timeout",
                f"RUNNING since {started:%Y-%m-%d %H:%M:%S} UTC, longer than the "
                f"{_human(running)} limit",
            )
    return None


def _crash(cause: str, details: str) -> JobReport:
    return JobReport(state=State.CRASHED, blame=Blame.TASKOTRON, cause=cause, details=details)


def _human(duration: timedelta) -> str:
    seconds = int(duration.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
