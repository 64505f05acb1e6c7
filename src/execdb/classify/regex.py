"""RE2, typed: line patterns over bytes, and one set that finds which of many patterns match.

Logs are hostile input, so nothing here backtracks: RE2 matches in time linear in the text
whatever the pattern. Every pattern is compiled with `never_nl`, so that no pattern matches
across a line end (`\\s` and `[^x]` included), and in multi-line mode, so that `^` and `$`
are the ends of a line: a pattern means one line, and the whole log can be scanned in one call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, cast

import re2  # type: ignore[import-untyped]

# The set's DFA is built lazily while it scans; more memory means fewer cache resets on a
# log that visits many states. RE2's default (8 MiB) is for one pattern, not tens at once.
SET_MAX_MEM = 64 << 20


class PatternError(ValueError):
    """RE2 refuses a pattern; the message is RE2's."""


class Match(Protocol):
    def start(self) -> int: ...
    def end(self) -> int: ...


class Regex(Protocol):
    def search(self, text: bytes, pos: int = ..., endpos: int = ...) -> Match | None: ...
    def match(self, text: bytes, pos: int = ..., endpos: int = ...) -> Match | None: ...


def _options(*, line_bound: bool, max_mem: int | None = None) -> object:
    options = re2.Options()
    options.never_nl = line_bound
    # Only where a match starts matters; without groups to report RE2 can find it with its
    # DFA, where submatches would need its NFA (tens of times slower on a long line).
    options.never_capture = True
    options.log_errors = False  # refusals are raised with RE2's message, not printed
    if max_mem is not None:
        options.max_mem = max_mem
    return options


def _compile(pattern: bytes, *, line_bound: bool) -> Regex:
    try:
        return cast(Regex, re2.compile(pattern, _options(line_bound=line_bound)))
    except re2.error as exc:
        detail = exc.args[0] if exc.args else "invalid pattern"
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise PatternError(str(detail)) from None


def line_pattern(patterns: Sequence[str]) -> Regex:
    """One regex matching a line that any of `patterns` matches (each in a group of its own,
    so that an inline flag such as `(?i)` stays with its pattern)."""
    joined = "|".join(f"(?:{p})" for p in patterns)
    return _compile(f"(?m){joined}".encode(), line_bound=True)


def check_line_pattern(pattern: str) -> Regex:
    """Compile one pattern alone, so that a refusal names it and not its neighbours."""
    return line_pattern([pattern])


def lines_ahead(count: int) -> Regex:
    """Matches, from the start of a line, that line and the `count - 1` lines after it."""
    return _compile(rb"(?:[^\n]*\n){0,%d}[^\n]*" % (count - 1), line_bound=False)


class PatternSet:
    """Which of many line patterns match somewhere in a text, in one pass over it.

    RE2's set reports nothing, not an error, when its DFA gives up; a last pattern that can
    only match at the very end of the text tells a finished scan from an abandoned one.
    """

    def __init__(self, patterns: Sequence[Sequence[str]]) -> None:
        self._set = re2.Set.SearchSet(_options(line_bound=True, max_mem=SET_MAX_MEM))
        for group in patterns:
            joined = "|".join(f"(?:{p})" for p in group)
            self._set.Add(f"(?m){joined}".encode())
        self._sentinel = self._set.Add(rb"\z")
        self._set.Compile()

    def matching(self, text: bytes) -> set[int] | None:
        """The indexes of the groups that match, or None when RE2 could not finish the scan."""
        found = set(cast(list[int], self._set.Match(text) or []))
        if self._sentinel not in found:
            return None
        found.discard(self._sentinel)
        return found
