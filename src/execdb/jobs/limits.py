"""How much of what reports carry ExecDB keeps, so that no answer or page grows without bound.

Sizes are those of compact JSON in UTF-8 (`json_size`), the form a client would send. What a
job keeps is refused when too large (the sender learns of it); what only the history keeps of
a refused or repeated report is shortened instead, since such a report is recorded whatever
it holds, and it changed nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from execdb.errors import PayloadTooLarge
from execdb.jobs.text import shorten

NOTE = "[{size} bytes of JSON left out by ExecDB]"
# Values up to this size stay whole in a shortened payload: state, blame, cause.
_SMALL = 256
_MIN_TEXT = 256


@dataclass(frozen=True, slots=True)
class Limits:
    details_max_bytes: int = 65536
    executor_max_bytes: int = 16384
    trigger_data_max_bytes: int = 65536
    history_payload_max_bytes: int = 4096
    page_max_bytes: int = 1024 * 1024
    log_max_bytes: int = 256 * 1024
    # 1 in this many FINISHED reports keeps its log (0: none), chosen by the job's uuid.
    finished_log_sample: int = 10


def json_size(value: Any) -> int:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return len(text.encode("utf-8", "surrogatepass"))


def check_size(field: str, value: Any, max_bytes: int) -> None:
    """Raise PayloadTooLarge (413) naming `field` when `value` is over `max_bytes`."""
    if value is None:
        return
    size = json_size(value)
    if size > max_bytes:
        raise PayloadTooLarge(
            f"{field}: {size} bytes of JSON, over the {max_bytes}-byte limit", field=field
        )


def shortened(payload: dict[str, Any], max_bytes: int) -> dict[str, Any]:
    """`payload` in at most `max_bytes` (for max_bytes of 1024 or more): small values whole,
    `details` shortened head and tail, any other large value replaced by a note of its size."""
    if json_size(payload) <= max_bytes:
        return payload
    kept: dict[str, Any] = {}
    for key, value in payload.items():
        if key == "details" and isinstance(value, str):
            kept[key] = ""  # its room is what the others leave
            continue
        size = json_size(value)
        kept[key] = value if size <= _SMALL else NOTE.format(size=size)
    details = payload.get("details")
    if isinstance(details, str):
        kept["details"] = _fit(details, max_bytes - json_size(kept))
    return kept


def _fit(text: str, room: int) -> str:
    """`text` shortened until its JSON string takes at most `room` bytes (escapes count)."""
    budget = room
    while budget >= _MIN_TEXT:
        cut, _ = shorten(text, budget)
        size = json_size(cut) - 2  # the quotes are already counted in the room
        if size <= room:
            return cut
        budget = budget * room // size - 1
    return NOTE.format(size=json_size(text))
