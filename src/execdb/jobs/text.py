"""Cleaning what reports carry so that every database can store it and nothing is refused."""

from __future__ import annotations

import math
from typing import Any

MARKER = "\n\n[... {omitted} bytes omitted by ExecDB: kept the first and last {kept} bytes ...]\n\n"


def shorten(text: str, max_bytes: int) -> tuple[str, int]:
    """`text` cut to about `max_bytes` of UTF-8, keeping its head and tail around a marker.

    Returns the text and the number of bytes left out (0 when it fitted). Crash details matter
    at both ends: the head says what was running, the tail how it died.
    """
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text, 0
    kept = (max_bytes - len(MARKER) - 32) // 2
    omitted = len(data) - 2 * kept
    head = data[:kept].decode("utf-8", "ignore")
    tail = data[-kept:].decode("utf-8", "ignore")
    return head + MARKER.format(omitted=omitted, kept=kept) + tail, omitted


def storable_text(text: str) -> str:
    """PostgreSQL text cannot hold NUL; a replacement character keeps the rest readable."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def storable_json(value: Any, path: str = "") -> Any:
    """`value` with NULs replaced in every string; non-finite numbers are refused.

    Raises ValueError naming the path of the offending number: JSON has no NaN or Infinity,
    and PostgreSQL's jsonb refuses them.
    """
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, float) and not math.isfinite(value):
        where = f" (at {path})" if path else ""
        raise ValueError(f"NaN and Infinity are not JSON numbers{where}")
    if isinstance(value, dict):
        return {
            storable_text(str(k)): storable_json(v, f"{path}.{k}" if path else str(k))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [storable_json(v, f"{path}[{i}]") for i, v in enumerate(value)]
    return value
