"""What a report must look like for the server to take it, checked before it is sent.

The executor reports once, at the end of a build, with nobody watching: a report the server
refuses leaves the job RUNNING. So the client applies the server's own rules first. They are
copies (the client imports nothing of the server): tests/unit/test_client_text.py holds each
copy against the server's original (execdb.causes.catalogue, execdb.jobs.text) and the
server's default settings (details_max_bytes, max_body_bytes).
"""

from __future__ import annotations

import json
import re
from typing import Any

CODE_RE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
CODE_MAX_LENGTH = 100
DETAILS_MAX_BYTES = 64 * 1024
MAX_BODY_BYTES = 1024 * 1024
LOG_MAX_BYTES = 256 * 1024
# Room left in a body for everything but the log: the details (at most 64 KiB, escaping to 6
# bytes a byte at worst) and the small fields.
_LOG_ROOM = MAX_BODY_BYTES - 6 * DETAILS_MAX_BYTES - 4096

MARKER = "\n\n[... {omitted} bytes omitted by ExecDB: kept the first and last {kept} bytes ...]\n\n"

_SURROGATES = re.compile("[\ud800-\udfff]")


def is_valid_code(code: str) -> bool:
    """Whether the server takes `code` as a cause: the whole string, no trailing newline."""
    return len(code) <= CODE_MAX_LENGTH and CODE_RE.fullmatch(code) is not None


def shorten(text: str, max_bytes: int = DETAILS_MAX_BYTES) -> tuple[str, int]:
    """`text` cut to about `max_bytes` of UTF-8, keeping its head and tail around MARKER.

    Returns the text and the number of bytes left out (0 when it fitted); the same cut the
    server makes, so text shortened here is not shortened again there.
    """
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= max_bytes:
        return text, 0
    kept = (max_bytes - len(MARKER) - 32) // 2
    omitted = len(data) - 2 * kept
    head = data[:kept].decode("utf-8", "ignore")
    tail = data[-kept:].decode("utf-8", "ignore")
    return head + MARKER.format(omitted=omitted, kept=kept) + tail, omitted


def sendable(value: Any) -> Any:
    """`value` with lone surrogates replaced by U+FFFD in every string, keys included.

    They come from JSON's "\\ud800" and from command-line bytes that are not UTF-8 (Python
    keeps them as surrogates); no UTF-8 encoder takes them, so the report could not be sent.
    """
    if isinstance(value, str):
        return _SURROGATES.sub("\ufffd", value)
    if isinstance(value, dict):
        return {sendable(k): sendable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [sendable(v) for v in value]
    return value


def fit(body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """A report's body made sendable, its details cut to DETAILS_MAX_BYTES; and the bytes cut.

    With the details at most 64 KiB, the body stays far below MAX_BODY_BYTES however its
    text escapes in JSON (6 bytes per byte at worst), so the server never answers 413.
    """
    body = sendable(body)
    if isinstance(log := body.get("log"), str):
        body = body | {"log": fit_log(log)}
    details = body.get("details")
    if not isinstance(details, str):
        return body, 0
    details, omitted = shorten(details)
    return body | {"details": details}, omitted


def fit_log(log: str, room: int = _LOG_ROOM) -> str:
    """The end of `log` whose JSON string takes at most `room` bytes however it is encoded
    (escapes count: a log of control characters takes six times its size), starting on a
    line boundary. A log of ordinary text keeps its last LOG_MAX_BYTES as it was read."""
    while (size := len(json.dumps(log))) > room:
        cut = len(log) - len(log) * room // size + 1
        newline = log.find("\n", cut - 1)
        log = log[newline + 1 :] if 0 <= newline < len(log) - 1 else log[cut:]
    return log
