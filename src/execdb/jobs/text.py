"""Cleaning what reports carry so that every database can store it and nothing is refused."""

from __future__ import annotations

import math
import re
from typing import Any

MAX_DEPTH = 32
_SURROGATES = re.compile("[\ud800-\udfff]")

MARKER = "\n\n[... {omitted} bytes omitted by ExecDB: kept the first and last {kept} bytes ...]\n\n"


def shorten(text: str, max_bytes: int) -> tuple[str, int]:
    """`text` cut to about `max_bytes` of UTF-8, keeping its head and tail around a marker.

    Returns the text and the number of bytes left out (0 when it fitted). Crash details matter
    at both ends: the head says what was running, the tail how it died.
    """
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= max_bytes:
        return text, 0
    kept = (max_bytes - len(MARKER) - 32) // 2
    omitted = len(data) - 2 * kept
    head = data[:kept].decode("utf-8", "ignore")
    tail = data[-kept:].decode("utf-8", "ignore")
    return head + MARKER.format(omitted=omitted, kept=kept) + tail, omitted


def is_unicode(text: str) -> bool:
    """False for text holding lone surrogates (JSON's "\\ud800"), which no database stores."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def storable_text(text: str) -> str:
    """`text` with what databases cannot store (NUL, lone surrogates) replaced by U+FFFD."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    return text if is_unicode(text) else _SURROGATES.sub("\ufffd", text)


def storable_json(value: Any, path: str = "", depth: int = 0) -> Any:
    """`value` with every string made storable; what JSON cannot carry is refused.

    Raises ValueError naming the path of a non-finite number (JSON has no NaN or Infinity,
    and PostgreSQL's jsonb refuses them) or of nesting deeper than MAX_DEPTH levels.
    """
    if isinstance(value, str):
        return storable_text(value)
    where = f" (at {path})" if path else ""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"NaN and Infinity are not JSON numbers{where}")
    if isinstance(value, dict | list) and depth >= MAX_DEPTH:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels{where}")
    if isinstance(value, dict):
        return {
            storable_text(str(k)): storable_json(v, f"{path}.{k}" if path else str(k), depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [storable_json(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
    return value


LOG_MARKER = "[... {omitted} bytes at the start of the log left out by ExecDB ...]\n"


def log_tail(text: str, max_bytes: int) -> tuple[str, int]:
    """The last part of a log in at most `max_bytes` of UTF-8, starting on a line boundary
    after a marker line that says how much was left out; and that number (0: all kept).

    A run's log ends with how it died; its start is the task's business. When the cut falls
    inside a line, that partial line goes too, unless it is the only line there is.
    """
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text, 0
    # Room for the marker with the largest count it could hold.
    room = max_bytes - len(LOG_MARKER.format(omitted=len(data)).encode())
    start = len(data) - room
    if data[start - 1 : start] != b"\n":
        newline = data.find(b"\n", start)
        if 0 <= newline < len(data) - 1:
            start = newline + 1
    tail = data[start:].decode("utf-8", "ignore")
    return LOG_MARKER.format(omitted=start) + tail, start
