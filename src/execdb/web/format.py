"""Small formatting helpers the page templates share: durations, times, safe links."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from markupsafe import Markup, escape

NONE = "\u2013"  # an en dash: what a page shows where there is no value
UUID_RE = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
FOLDED_LINES = 12  # JSON longer than this is shown folded


def duration(span: timedelta | float | None) -> str:
    """'850 ms', '42 s', '3 min 5 s', '2 h 14 min', '3 d 4 h': two units at most.

    People compare durations at a glance, so the coarse unit comes first and the rest is
    dropped: '2 h 14 min' says more to a reader than '8040 s'.
    """
    if span is None:
        return NONE
    seconds = span.total_seconds() if isinstance(span, timedelta) else float(span)
    if seconds < 0:
        return NONE
    if seconds < 1:
        return f"{round(seconds * 1000)} ms"
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min {secs} s" if secs else f"{minutes} min"


def between(start: datetime | None, end: datetime | None, now: datetime) -> timedelta | None:
    """The time from `start` to `end`, or to `now` while `end` has not come yet."""
    if start is None:
        return None
    return (end or now) - start


def timestamp(moment: datetime | None) -> str:
    """'2026-11-03 14:05:09 UTC': to the second, always UTC, the same on every page."""
    if moment is None:
        return NONE
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def ago(moment: datetime | None, now: datetime) -> str:
    """'5 min ago', or 'in 3 min' for a moment still to come."""
    if moment is None:
        return NONE
    span = now - moment
    if abs(span.total_seconds()) < 1:
        return "just now"
    if span.total_seconds() < 0:
        return f"in {duration(-span)}"
    return f"{duration(span)} ago"


def iso(moment: datetime) -> str:
    """A moment for URLs and `<time datetime>`: ISO 8601 to the second, with 'Z'."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_exact(moment: datetime) -> str:
    """`iso`, with the microseconds when there are any: a window's end in a link that must
    find exactly the jobs counted up to it."""
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return iso(moment)


def web_link(value: Any) -> str | None:
    """`value` if it is an http(s) URL that is safe to put in an href, else None.

    Executors send their URLs as free JSON: a `javascript:` one must never become a link.
    """
    if not isinstance(value, str) or len(value) > 2048:
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return value


def executor_log(executor: dict[str, Any] | None) -> str | None:
    """The link to a run's log that an executor reported (`log_url`, else `url`), if any."""
    if not executor:
        return None
    return web_link(executor.get("log_url")) or web_link(executor.get("url"))


def percent(part: int, whole: int) -> str:
    if whole == 0:
        return NONE
    share = 100 * part / whole
    return f"{share:.1f} %" if share < 10 else f"{share:.0f} %"


def log_lines(text: str, evidence: list[dict[str, Any]] | None) -> list[tuple[int, str, bool]]:
    """A kept log's lines for the job page: (number from 1, text, whether it is evidence)."""
    hits = {e["line"] for e in evidence or ()}
    return [(n, line, n in hits) for n, line in enumerate(text.splitlines(), 1)]


def job_links(text: str | None, root: str) -> Markup:
    """The text, escaped, with every job UUID in it a link to that job's page."""
    if not text:
        return Markup("")
    escaped = str(escape(text))  # escaping leaves UUIDs as they are
    prefix = str(escape(root))
    linked = UUID_RE.sub(lambda m: f'<a href="{prefix}/jobs/{m[0]}">{m[0]}</a>', escaped)
    return Markup(linked)  # noqa: S704 (the text was escaped; only the links are markup)


def pretty_json(value: Any) -> tuple[str, bool]:
    """The value as indented JSON, and whether it is long enough to be shown folded."""
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
    return text, text.count("\n") >= FOLDED_LINES
