"""A crash's signature: its key error line with the variable parts masked, so that the same
failure on different builds, hosts and days groups together (as LUCI Analysis clusters
failures by a masked failure reason).

The key line is the rule's first evidence line when a rule recognised the log; otherwise
the line an error heuristic picks from the log: the final exception line of the last
Python traceback, or else the last line that looks like an error (`...Error`, `...Exception`,
`FAILED`, `fatal:`, `ERROR` ...), or else the log's last line; and with no log, the first
line of the details. Masked are UUIDs, URLs, dates and times, IP addresses, paths, NVRs,
host names, hex ids and numbers, in that order (the first kind that matches at a place wins).

Logs and details are hostile: everything here is RE2 (linear in the text), the heuristic
reads only the last `TAIL_BYTES` of a log, and a line is cut to `LINE_MAX_CHARS` before it
is masked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import re2  # type: ignore[import-untyped]

# The heuristic looks for the error in this much of the end of a log: where a run fails.
TAIL_BYTES = 64 * 1024
LINE_MAX_CHARS = 1000
TEXT_MAX_CHARS = 300
# How far below a traceback's header its final exception line may be.
TRACEBACK_MAX_LINES = 500
# Buildbot's line for a command that succeeded: errors above it were recovered from
# (as in execdb.classify.engine).
STEP_PASSED = "program finished with exit code 0"

_HOST_SUFFIXES = (
    "org|com|net|io|edu|gov|info|local|lan|internal|localdomain|cz|de|uk|fr|us|eu|cn|jp"
)
# (kind, pattern); the alternation is tried in this order at each place (RE2 is
# leftmost-first), so a UUID is never read as hex and numbers, nor a path as a host.
# "keep" is kept as it is: architectures read as words, not as numbers.
MASKS: tuple[tuple[str, str], ...] = (
    ("keep", r"\b(?:x86_64|aarch64|ppc64le|s390x|i686|armv7hl|noarch)\b"),
    ("uuid", r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"),
    ("url", r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+"),
    (
        "date",
        r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?",
    ),
    ("time", r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b"),
    ("ip", r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"),
    ("path", r"(?:~|\.{1,2})?/[^\s'\"`:,;()\[\]{}<>]+"),
    ("nvr", r"\b[A-Za-z0-9][A-Za-z0-9_.+-]*-[0-9][A-Za-z0-9_.+~^]*-[0-9][A-Za-z0-9_.+~^]*"),
    (
        "host",
        r"\b(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+(?:" + _HOST_SUFFIXES + r")\b(?::\d+)?",
    ),
    ("hex", r"\b0x[0-9a-fA-F]+\b"),
    ("n", r"\b\d+\b"),
    ("hex", r"\b(?:[0-9a-f]{7,}|[0-9A-F]{7,})\b"),
    ("n", r"\d+"),
)
_MASK = re2.compile("|".join(f"({pattern})" for _, pattern in MASKS))
_KINDS = tuple(kind for kind, _ in MASKS)
_SPACES = re2.compile(r"\s+")
_ERROR = re2.compile(
    r"(?m)^.*(?:\b[A-Za-z_.]*(?:Error|Exception)\b|\bFAILED\b|\bFAIL:|\bfatal:|\bFATAL\b"
    r"|\bERROR\b|\berror:|\bpanic:|\bTraceback\b|\bKilled\b|\btimed out\b).*$"
)
_TRACEBACK = re2.compile(r"(?m)^[ \t]*Traceback \(most recent call last\):[ \t]*$")


@dataclass(frozen=True, slots=True)
class Signature:
    key: str  # a short hash of `text`, for grouping and searching
    text: str  # the masked line, for showing
    line: int | None  # where the key line is in the log (1-based); None: from the details

    def as_columns(self) -> dict[str, Any]:
        return {"signature": self.key, "signature_text": self.text, "signature_line": self.line}


def mask(line: str) -> str:
    """The line with its variable parts replaced by `<kind>`, blanks squeezed."""
    masked = str(_MASK.sub(_masked, line[:LINE_MAX_CHARS]))
    return str(_SPACES.sub(" ", masked)).strip()[:TEXT_MAX_CHARS]


def _masked(match: Any) -> str:
    for number, kind in enumerate(_KINDS, start=1):
        if match.group(number) is not None:
            return str(match.group(0)) if kind == "keep" else f"<{kind}>"
    return str(match.group(0))


def of_line(line: str, number: int | None) -> Signature | None:
    text = mask(line)
    if not text:
        return None
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    return Signature(key, text, number)


def signature(log: str | None, details: str | None, evidence: Sequence[Any]) -> Signature | None:
    """The crash's signature from the rule's evidence (objects with `line` and `text`), else
    the log, else the details; None when there is nothing to go by."""
    if evidence:
        first = evidence[0]
        return of_line(str(first.text), int(first.line))
    if log and log.strip():
        line, number = key_line(log)
        return of_line(line, number)
    if details and details.strip():
        return of_line(details.strip().splitlines()[0], None)
    return None


def key_line(log: str) -> tuple[str, int]:
    """The line of the log that says what went wrong, and its number (from 1)."""
    start = max(0, len(log) - TAIL_BYTES)
    passed = log.rfind(STEP_PASSED, start)
    if passed >= 0:
        start = passed + len(STEP_PASSED)
    if start > 0:
        start = log.find("\n", start - 1) + 1 or len(log)
    tail = log[start:]
    found = _last(_ERROR, tail)
    traceback = _last(_TRACEBACK, tail)
    if traceback is not None:
        final = _final_exception(tail, traceback[1])
        if final is not None and (found is None or found[0] <= final[1]):
            found = final
    if found is None:
        last = len(tail.rstrip())
        if last == 0:
            return "", 1
        found = (tail.rfind("\n", 0, last) + 1, last)
    begin, end = found
    number = log.count("\n", 0, start + begin) + 1
    return tail[begin:end], number


def _last(pattern: Any, text: str) -> tuple[int, int] | None:
    last = None
    for match in pattern.finditer(text):
        last = (match.start(), match.end())
    return last


def _final_exception(text: str, after: int) -> tuple[int, int] | None:
    """The first unindented line below a traceback's header: its exception and message."""
    position = after
    for _ in range(TRACEBACK_MAX_LINES):
        if position < len(text) and text[position] == "\n":
            position += 1
        if position >= len(text):
            return None
        end = text.find("\n", position)
        end = len(text) if end < 0 else end
        line = text[position:end]
        if line.strip() and not line[0].isspace():
            return position, end
        position = end
    return None
