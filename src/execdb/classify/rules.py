"""Classification rules: the model, the shipped rule set and a deployment's file merged over it.

Rules are data, like the cause catalogue: `rules.toml` ships beside this module, and the file
named by the `rules_file` setting is merged over it rule by rule (a table with a shipped id
replaces that rule whole, a new id adds one, `disabled = true` removes one). Everything that
could make a rule wrong at run time is refused at load, naming the file and the rule: a
pattern RE2 cannot compile, a cause the catalogue lacks or that only names a symptom, an
example the rule does not fire on. docs/classification.md describes the format.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from execdb.causes.catalogue import Catalogue
from execdb.classify.regex import PatternError, Regex, check_line_pattern, line_pattern, lines_ahead
from execdb.vocabulary import Blame

RULE_ID_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")
RULE_ID_MAX_LENGTH = 100
PRECEDENCE_MAX = 100
WITHIN_MAX = 100
PATTERN_MAX_LENGTH = 500
PATTERNS_MAX = 50
# A rule gives up on a log after this many searches (a first line that keeps recurring without
# its second one, lines that `unless` vetoes): a log cannot make one rule cost more than that.
LOCATE_TRIES_MAX = 256

FIELDS = {
    "cause",
    "blame",
    "precedence",
    "description",
    "match",
    "then",
    "within",
    "unless",
    "examples",
    "counter_examples",
    "disabled",
}


class RulesError(ValueError):
    """A rule file is malformed; the message names the file, the rule and the field."""


@dataclass(frozen=True, slots=True)
class Hit:
    """Where a rule fired: the offset of each evidence line's match, first one first."""

    offsets: tuple[int, ...]


class _Budget:
    """The searches one rule may still make in one log."""

    def __init__(self) -> None:
        self.left = LOCATE_TRIES_MAX

    def spend(self) -> bool:
        self.left -= 1
        return self.left >= 0


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    cause: str
    blame: Blame
    precedence: int
    description: str
    match: tuple[str, ...]
    then: tuple[str, ...]
    within: int
    unless: tuple[str, ...]
    examples: tuple[str, ...]
    counter_examples: tuple[str, ...]
    origin: str
    blame_is_default: bool
    _first: Regex = field(repr=False, compare=False)
    _second: Regex | None = field(repr=False, compare=False)
    _window: Regex | None = field(repr=False, compare=False)
    _unless: Regex | None = field(repr=False, compare=False)

    def locate(self, text: bytes) -> Hit | None:
        """The earliest place this rule fires in `text`, or None."""
        budget = _Budget()
        first = self._next(self._first, text, 0, budget)
        if first is None:
            return None
        if self._second is None or self._window is None:
            return Hit((first,))
        return self._sequence(text, first, budget)

    def _next(self, regex: Regex, text: bytes, pos: int, budget: _Budget) -> int | None:
        """The offset of the next match at or after `pos` on a line `unless` does not veto."""
        while budget.spend():
            found = regex.search(text, pos)
            if found is None:
                return None
            at = found.start()
            if self._unless is None:
                return at
            start, end = text.rfind(b"\n", 0, at) + 1, _line_end(text, at)
            if self._unless.search(text, start, end) is None:
                return at
            pos = end + 1
        return None

    def _sequence(self, text: bytes, at: int, budget: _Budget) -> Hit | None:
        # The earliest first line with a second line after it, at most `within` lines down.
        # Each try looks for the next second line; a first line more than `within` lines
        # above it can never pair with it nor with any later one, so the next try starts
        # there. Every search moves forward, so the work is linear in the text.
        assert self._second is not None
        assert self._window is not None
        while True:
            below = _line_end(text, at) + 1
            if below > len(text):
                return None
            second = self._next(self._second, text, below, budget)
            if second is None:
                return None
            window = self._window.match(text, below)
            if window is not None and second <= window.end():
                return Hit((at, second))
            start = max(below, _lines_above(text, second, self.within))
            first = self._next(self._first, text, start, budget)
            if first is None:
                return None
            at = first


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...]
    version: str
    # Saved rules left out because they no longer load, each with the reason.
    skipped: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.rules)

    def get(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)


def _line_end(text: bytes, pos: int) -> int:
    end = text.find(b"\n", pos)
    return len(text) if end < 0 else end


def _lines_above(text: bytes, pos: int, count: int) -> int:
    """The start of the line `count` lines above the one holding `pos` (or of the text)."""
    start = text.rfind(b"\n", 0, pos)
    for _ in range(count):
        if start < 0:
            return 0
        start = text.rfind(b"\n", 0, start)
    return start + 1


@dataclass(frozen=True, slots=True)
class _Entry:
    """A rule as read from one file, before the merge and the checks against the catalogue."""

    id: str
    origin: str
    data: Mapping[str, Any]

    @property
    def disables(self) -> bool:
        return self.data.get("disabled") is True


def _strings(where: str, name: str, value: Any, *, required: bool) -> tuple[str, ...]:
    if value is None and not required:
        return ()
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, str) and v.strip() for v in value)
    ):
        raise RulesError(f"{where}: field {name!r} must be a non-empty list of non-empty strings")
    return tuple(value)


def _patterns(where: str, name: str, value: Any, *, required: bool) -> tuple[str, ...]:
    patterns = _strings(where, name, value, required=required)
    if len(patterns) > PATTERNS_MAX:
        raise RulesError(f"{where}: field {name!r} has more than {PATTERNS_MAX} patterns")
    for i, pattern in enumerate(patterns, 1):
        what = f"{where}: {name} pattern {i} ({pattern[:80]!r})"
        if len(pattern) > PATTERN_MAX_LENGTH:
            raise RulesError(f"{what}: longer than {PATTERN_MAX_LENGTH} characters")
        try:
            regex = check_line_pattern(pattern)
        except PatternError as exc:
            raise RulesError(f"{what}: RE2 cannot compile it: {exc}") from None
        if regex.search(b"") is not None:
            raise RulesError(f"{what}: it matches an empty line, so it would match every log")
    return patterns


def _integer(where: str, name: str, value: Any, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise RulesError(f"{where}: field {name!r} must be a whole number from {low} to {high}")
    return value


def _read(data: Mapping[str, Any], origin: str) -> dict[str, _Entry]:
    entries: dict[str, _Entry] = {}
    for rule_id, entry in data.items():
        where = f"{origin}: rule {rule_id!r}"
        if len(rule_id) > RULE_ID_MAX_LENGTH or not RULE_ID_RE.match(rule_id):
            raise RulesError(
                f"{where}: an id is lower case letters, digits and '_', parts joined by '.'"
            )
        if not isinstance(entry, dict):
            raise RulesError(f"{where}: expected a table with cause, precedence, match ...")
        unknown = set(entry) - FIELDS
        if unknown:
            raise RulesError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        if "disabled" in entry and entry["disabled"] is not True:
            raise RulesError(f"{where}: field 'disabled' can only be true (or left out)")
        if entry.get("disabled") is True and len(entry) > 1:
            raise RulesError(f"{where}: a rule that is disabled has no other field")
        entries[rule_id] = _Entry(rule_id, origin, entry)
    return entries


def _build(entry: _Entry, catalogue: Catalogue) -> Rule:
    where = f"{entry.origin}: rule {entry.id!r}"
    data = entry.data
    cause = data.get("cause")
    if not isinstance(cause, str) or cause not in catalogue:
        raise RulesError(
            f"{where}: field 'cause' must name a cause of the catalogue, got {cause!r}"
        )
    if catalogue[cause].symptom:
        raise RulesError(
            f"{where}: cause {cause!r} only describes a symptom; name what the log shows"
        )
    blame_name = data.get("blame")
    if blame_name is not None and (
        not isinstance(blame_name, str) or blame_name.upper() not in Blame.__members__
    ):
        raise RulesError(f"{where}: field 'blame' must be one of {', '.join(Blame)}")
    description = data.get("description")
    if not isinstance(description, str) or not description.strip():
        raise RulesError(f"{where}: field 'description' must be a non-empty string")
    precedence = _integer(where, "precedence", data.get("precedence"), 0, PRECEDENCE_MAX)
    match = _patterns(where, "match", data.get("match"), required=True)
    then = _patterns(where, "then", data.get("then"), required=False)
    unless = _patterns(where, "unless", data.get("unless"), required=False)
    within = 0
    if then or "within" in data:
        if not then:
            raise RulesError(f"{where}: field 'within' needs a 'then'")
        within = _integer(where, "within", data.get("within"), 1, WITHIN_MAX)
    rule = Rule(
        id=entry.id,
        cause=cause,
        blame=Blame(blame_name.upper()) if blame_name else catalogue[cause].blame,
        precedence=precedence,
        description=" ".join(description.split()),
        match=match,
        then=then,
        within=within,
        unless=unless,
        examples=_strings(where, "examples", data.get("examples"), required=True),
        counter_examples=_strings(
            where, "counter_examples", data.get("counter_examples"), required=False
        ),
        origin=entry.origin,
        blame_is_default=blame_name is None,
        _first=line_pattern(match),
        _second=line_pattern(then) if then else None,
        _window=lines_ahead(within) if then else None,
        _unless=line_pattern(unless) if unless else None,
    )
    _check_examples(rule, where)
    return rule


def _check_examples(rule: Rule, where: str) -> None:
    for i, example in enumerate(rule.examples, 1):
        if rule.locate(example.encode()) is None:
            raise RulesError(f"{where}: example {i} ({example[:80]!r}) does not match the rule")
    for i, example in enumerate(rule.counter_examples, 1):
        if rule.locate(example.encode()) is not None:
            raise RulesError(f"{where}: counter-example {i} ({example[:80]!r}) matches the rule")


def _version(rules: Sequence[Rule]) -> str:
    """A short hash of everything that decides a verdict (not descriptions nor examples), so
    that equal versions give equal answers and a changed rule shows in every verdict."""
    decisive = [
        [r.id, r.cause, str(r.blame), r.precedence, r.match, r.then, r.within, r.unless]
        for r in sorted(rules, key=lambda r: r.id)
    ]
    return hashlib.sha256(json.dumps(decisive).encode()).hexdigest()[:12]


def _load_file(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise RulesError(f"{path}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise RulesError(f"{path}: not UTF-8 text: {exc.reason}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{path}: not valid TOML: {exc}") from exc


SHIPPED = "shipped rules"


@dataclass(frozen=True, slots=True)
class Saved:
    """A rule as the database keeps it (execdb.rules): its table in the TOML format, or None
    for a rule disabled there; `origin` names it and its version in messages."""

    id: str
    origin: str
    data: Mapping[str, Any] | None


def load_rules(
    catalogue: Catalogue, extra_file: Path | None = None, saved: Sequence[Saved] = ()
) -> RuleSet:
    """The shipped rules, with `extra_file` (if any) merged over them rule by rule, and then
    the rules saved in the database, merged the same way.

    A saved rule was checked when it was saved; one that has since become wrong (its cause
    left the catalogue) is left out rather than stopping the service: `RuleSet.skipped` says
    which and why. Rules are ordered by precedence, highest first, then by id; that order is
    only for reading: which rule wins is decided per log (see execdb.classify.engine).
    """
    shipped = resources.files(__package__).joinpath("rules.toml").read_text("utf-8")
    entries = _read(tomllib.loads(shipped), SHIPPED)
    if extra_file is not None:
        for rule_id, entry in _read(_load_file(extra_file), str(extra_file)).items():
            if not entry.disables:
                entries[rule_id] = entry
            elif entries.pop(rule_id, None) is None:
                raise RulesError(
                    f"{extra_file}: rule {rule_id!r}: disables a rule that does not exist"
                )
    rules = [_build(entry, catalogue) for entry in entries.values() if not entry.disables]
    skipped: list[str] = []
    for one in saved:
        rules = [r for r in rules if r.id != one.id]
        if one.data is None:
            continue
        try:
            rules.append(build_rule(one.id, one.data, one.origin, catalogue))
        except RulesError as exc:
            skipped.append(str(exc))
    rules.sort(key=lambda r: (-r.precedence, r.id))
    return RuleSet(tuple(rules), _version(rules), tuple(skipped))


def build_rule(rule_id: str, data: Mapping[str, Any], origin: str, catalogue: Catalogue) -> Rule:
    """One rule from its table, checked as a rule file's are (RulesError naming `origin`)."""
    entry = _read({rule_id: dict(data)}, origin)[rule_id]
    if entry.disables:
        raise RulesError(f"{origin}: rule {rule_id!r}: a draft cannot be only 'disabled'")
    return _build(entry, catalogue)


def rule_table(rule: Rule) -> dict[str, Any]:
    """A rule as a table of the TOML format, the fields left at their defaults left out."""
    table: dict[str, Any] = {"cause": rule.cause}
    if not rule.blame_is_default:
        table["blame"] = str(rule.blame)
    table["precedence"] = rule.precedence
    table["description"] = rule.description
    table["match"] = list(rule.match)
    if rule.then:
        table["then"] = list(rule.then)
        table["within"] = rule.within
    if rule.unless:
        table["unless"] = list(rule.unless)
    table["examples"] = list(rule.examples)
    if rule.counter_examples:
        table["counter_examples"] = list(rule.counter_examples)
    return table


def render_markdown(rules: RuleSet) -> str:
    """docs/rules.md, generated so that the documentation cannot drift from the data."""
    lines = [
        "# Shipped classification rules",
        "",
        "<!-- Generated from src/execdb/classify/rules.toml by"
        " `python -m execdb.classify > docs/rules.md`; do not edit by hand. -->",
        "",
        f"Rules version `{rules.version}`, highest precedence first. A blame in *italics* is",
        "the cause's default from the [catalogue](causes.md); an upright one is the rule's own.",
        "[classification.md](classification.md) explains the format and how a rule wins.",
        "A deployment's `rules_file` and the rules saved in the database are merged over these;",
        "every rule in use, with its origin and hits, is on `/rules` and in `GET /api/v1/rules`",
        "([classification.md](classification.md#saved-rules)).",
        "",
        "| rule | cause | blame | precedence | what it recognises |",
        "|---|---|---|---|---|",
    ]
    for rule in rules.rules:
        blame = f"*{rule.blame}*" if rule.blame_is_default else str(rule.blame)
        lines.append(
            f"| `{rule.id}` | `{rule.cause}` | {blame} | {rule.precedence} | {rule.description} |"
        )
    return "\n".join(lines) + "\n"
