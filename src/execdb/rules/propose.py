"""Patterns proposed for a new rule: from a crash, its evidence lines or its key error line;
from a group of crashes of one signature, the signature itself.

Each line's variable parts become RE2 classes, so that the pattern matches the same failure
on another build, host or day; everything else is escaped and so matched literally. A
signature already says which parts vary (its `<kind>` marks, execdb.classify.signature), so
its pattern puts a class where each mark is; it is kept only if it matches every example line
of the group. The person edits them before anything is saved.
"""

from __future__ import annotations

from collections.abc import Sequence

import re2  # type: ignore[import-untyped]

from execdb.classify.regex import PatternError, check_line_pattern
from execdb.classify.rules import PATTERN_MAX_LENGTH
from execdb.classify.signature import TEXT_MAX_CHARS

# Longest part of a line a proposed pattern is made from.
LINE_MAX_CHARS = 200
# A line that says an error happened, for a crash no rule recognised.
_ERRORISH = re2.compile(
    r"(?i)\b(error|exception|failed|failure|fatal|timed? ?out|refused|denied|killed|"
    r"cannot|could not|unable|no such|not found)\b"
)
_TRACEBACK_HEAD = "Traceback (most recent call last)"
_STEP_PASSED = "program finished with exit code 0"
_HEX_WORD = r"\b[0-9a-f]{7,}\b"
# Variable parts, most specific first; each with the RE2 class it becomes.
_MASKS: tuple[tuple[str, str], ...] = (
    (r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", r"[0-9a-f-]+"),
    (r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?", r"[0-9:., T-]+"),
    (r"(?:/[\w.+-]+){2,}/?", r"/\S*"),
    (r"\b(?:[a-zA-Z0-9-]+\.)+(?:org|com|net|io|edu|local|lan|internal)\b", r"[\w.-]+"),
    (r"\b0x[0-9a-fA-F]+\b", r"0x[0-9a-f]+"),
    (r"\b\d+\b", r"\d+"),
    # A hex id: a word of 7 or more hex digits; pure numbers are taken just above, and a
    # word of letters only ("defaced") is kept as text (pattern_of).
    (_HEX_WORD, r"[0-9a-f]+"),
    (r"\d+", r"\d+"),
)
_MASK = re2.compile("|".join(f"({m})" for m, _ in _MASKS))
_SPECIAL = set(r"\.^$|?*+()[]{}")


def escape(text: str) -> str:
    """`text` as an RE2 pattern matching it literally (only RE2's special characters are
    escaped: RE2 refuses an escaped letter such as `\\q`)."""
    return "".join("\\" + c if c in _SPECIAL else c for c in text)


def pattern_of(line: str) -> str:
    """A line pattern for `line`: its variable parts masked, the rest literal."""
    line = line.strip()[:LINE_MAX_CHARS]
    out: list[str] = []
    pos = 0
    for found in _MASK.finditer(line):
        mask, masked = _MASKS[(found.lastindex or len(_MASKS)) - 1]
        if mask == _HEX_WORD and not any(c.isdigit() for c in found.group(0)):
            continue
        out.append(escape(line[pos : found.start()]))
        out.append(masked)
        pos = found.end()
    out.append(escape(line[pos:]))
    return "".join(out)[:PATTERN_MAX_LENGTH].rstrip("\\")


def key_line(log: str) -> str | None:
    """The line an error heuristic picks: the last line saying something failed, below the
    last step that passed, but not a traceback's first line."""
    lines = log.splitlines()
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].strip() == _STEP_PASSED:
            lines = lines[i + 1 :]
            break
    for line in reversed(lines):
        if _ERRORISH.search(line) and _TRACEBACK_HEAD not in line:
            return line
    return None


def propose(evidence: Sequence[str], log: str | None) -> list[str]:
    """Patterns for a new rule from a crash: one per evidence line, else one for the key
    error line of its log (none when there is nothing to go on)."""
    lines = [line for line in evidence if line.strip()]
    if not lines and log:
        found = key_line(log)
        lines = [found] if found else []
    return list(dict.fromkeys(pattern_of(line) for line in lines if pattern_of(line)))


# What each mark of a signature stands for (execdb.classify.signature.MASKS), as an RE2
# class that matches what the mark replaced; short rather than exact, for a person to read.
_KIND_CLASSES = {
    "uuid": r"[0-9a-fA-F-]+",
    "url": r"\S+",
    "date": r"[0-9][0-9:., TZ+-]*",
    "time": r"[0-9:.,]+",
    "ip": r"[0-9.:]+",
    "path": r"\S+",
    "nvr": r"\S+",
    "host": r"[\w.:-]+",
    "hex": r"(?:0x)?[0-9a-fA-F]+",
    "n": r"\d+",
}
_MARK = re2.compile("<(" + "|".join(_KIND_CLASSES) + ")>")
_PARTIAL_MARK = re2.compile(r"<[a-z]*$")


def of_signature(text: str) -> str:
    """A line pattern for a signature's masked text: a class for each mark, the rest
    literal (a text cut at its maximum loses a mark cut in two)."""
    if len(text) >= TEXT_MAX_CHARS:
        text = _PARTIAL_MARK.sub("", text)
    out: list[str] = []
    pos = 0
    for found in _MARK.finditer(text):
        out.append(escape(text[pos : found.start()]))
        out.append(_KIND_CLASSES[found.group(1)])
        pos = found.end()
    out.append(escape(text[pos:]))
    return "".join(out).strip()


def matches_all(pattern: str, lines: Sequence[str]) -> bool:
    """Whether RE2, as the rules use it, finds `pattern` in each of `lines`."""
    if not pattern or len(pattern) > PATTERN_MAX_LENGTH:
        return False
    try:
        compiled = check_line_pattern(pattern)
    except PatternError:
        return False
    return all(compiled.search(line.encode()) is not None for line in lines)


def propose_for_group(signature_text: str, lines: Sequence[str]) -> list[str]:
    """Patterns for a rule from a group: the signature's, when it matches every example
    line; else one per example line (`pattern_of`)."""
    wanted = [line for line in lines if line.strip()]
    pattern = of_signature(signature_text)
    if wanted and matches_all(pattern, wanted):
        return [pattern]
    return list(dict.fromkeys(p for line in wanted if (p := pattern_of(line))))
