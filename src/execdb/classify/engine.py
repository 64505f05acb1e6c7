"""Classify a crashed run's log: which known failure it shows, who to blame, and the evidence.

Matching is two steps, both linear in the log's size: one RE2 set scans the whole text once
and says which rules' patterns appear anywhere; only those rules are then located, each with
one search (or a bounded few for a `then` rule). No loop over lines in Python: a 100 000-line
log costs the same few calls as a 100-line one.

Root cause wins. Of the rules that fire, the one with the highest precedence gives the
answer; between equal precedences, the one whose evidence comes first in the log (the first
error, not the teardown errors after it); then the rule id, so that the answer never depends
on the order of a file. Precision comes first: a log no rule recognises is UNKNOWN with no
cause, never a guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from execdb.classify.regex import PatternSet
from execdb.classify.rules import Rule, RuleSet
from execdb.classify.signature import Signature, signature
from execdb.vocabulary import Blame

# Evidence shows at most this much of a line: enough to read, never a whole hostile line.
EVIDENCE_MAX_CHARS = 500
# A long line is shown from a little before the match, so the match itself is in view.
EVIDENCE_LEAD_CHARS = 100
# Buildbot's last line for a command that succeeded. Whatever went wrong above it was
# recovered from (one mirror timed out and another answered, a script probed for an optional
# package and went on), so only the text below the last such line can say why a run crashed.
STEP_PASSED = b"program finished with exit code 0"
# Where to stop looking for that line when hostile text repeats it in the middle of lines.
STEP_PASSED_TRIES = 8


@dataclass(frozen=True, slots=True)
class Evidence:
    line: int  # 1-based, in the text given to classify
    text: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "text": self.text}


@dataclass(frozen=True, slots=True)
class Finding:
    """A rule that fired, with its evidence (the first line is where it fired)."""

    rule: Rule
    evidence: tuple[Evidence, ...]

    @property
    def line(self) -> int:
        return self.evidence[0].line

    def describe(self) -> str:
        return f"rule {self.rule.id} (precedence {self.rule.precedence}, line {self.line})"


@dataclass(frozen=True, slots=True)
class Verdict:
    blame: Blame
    cause: str | None
    rule: str | None
    version: str
    evidence: tuple[Evidence, ...]
    # Every rule that fired, the winner first, in the order that decided it.
    findings: tuple[Finding, ...] = ()

    @property
    def explanation(self) -> str:
        if not self.findings:
            return "no rule matched"
        winner, *others = self.findings
        if not others:
            return f"{winner.describe()} was the only one to match"
        return f"{winner.describe()} beat " + ", ".join(f.describe() for f in others)

    def as_dict(self) -> dict[str, Any]:
        return {
            "blame": str(self.blame),
            "cause": self.cause,
            "rule": self.rule,
            "rules_version": self.version,
            "evidence": [e.as_dict() for e in self.evidence],
            "explanation": self.explanation,
        }


def as_bytes(log: bytes | str) -> bytes:
    """The log's bytes; text decoded with `surrogateescape` gets its undecodable bytes back."""
    if isinstance(log, bytes):
        return log
    try:
        return log.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # lone surrogates that no decoding produced
        return log.encode("utf-8", "replace")


def _evidence(text: bytes, offset: int) -> Evidence:
    start = text.rfind(b"\n", 0, offset) + 1
    end = text.find(b"\n", offset)
    end = len(text) if end < 0 else end
    if end - start > EVIDENCE_MAX_CHARS:
        # Cut in bytes, four per character at most, then in characters once decoded.
        start = max(start, offset - 4 * EVIDENCE_LEAD_CHARS)
        end = min(end, start + 4 * EVIDENCE_MAX_CHARS)
    shown = text[start:end].decode("utf-8", "replace").rstrip("\r")
    if len(shown) > EVIDENCE_MAX_CHARS:
        lead = len(text[start:offset].decode("utf-8", "replace"))
        cut = max(0, min(lead - EVIDENCE_LEAD_CHARS, len(shown) - EVIDENCE_MAX_CHARS))
        shown = shown[cut : cut + EVIDENCE_MAX_CHARS]
    return Evidence(text.count(b"\n", 0, offset) + 1, shown)


def _after_passed_step(text: bytes) -> int:
    """The offset just below the last line saying a command succeeded, or 0 if none."""
    end = len(text)
    for _ in range(STEP_PASSED_TRIES):
        at = text.rfind(STEP_PASSED, 0, end)
        if at < 0:
            return 0
        below = text.find(b"\n", at)
        below = len(text) if below < 0 else below
        rest = text[at + len(STEP_PASSED) : below].strip()
        if (at == 0 or text[at - 1 : at] == b"\n") and not rest:
            return min(below + 1, len(text))
        end = at
    return 0


class Engine:
    """Compiled rules, ready to classify any number of logs (safe to share between threads)."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        groups: list[Sequence[str]] = []
        # For each rule, the set's index of its `match` patterns and of its `then` patterns.
        self._parts: list[tuple[Rule, int, int | None]] = []
        for rule in rules.rules:
            first = len(groups)
            groups.append(rule.match)
            second = None
            if rule.then:
                second = len(groups)
                groups.append(rule.then)
            self._parts.append((rule, first, second))
        self._set = PatternSet(groups)

    @property
    def version(self) -> str:
        return self.rules.version

    def _candidates(self, text: bytes) -> list[Rule]:
        found = self._set.matching(text)
        if found is None:
            # RE2 gave up on this text (its DFA ran out of memory): locate every rule one by
            # one, which is slower but still linear, rather than answer from nothing.
            return list(self.rules.rules)
        return [
            rule
            for rule, first, second in self._parts
            if first in found and (second is None or second in found)
        ]

    def findings(self, log: bytes | str) -> list[Finding]:
        """Every rule that fires on `log`, the winner first."""
        text = as_bytes(log)
        start = _after_passed_step(text)
        body = text[start:] if start else text
        findings = []
        for rule in self._candidates(body):
            hit = rule.locate(body)
            if hit is not None:
                evidence = tuple(_evidence(text, start + offset) for offset in hit.offsets)
                findings.append(Finding(rule, evidence))
        findings.sort(key=lambda f: (-f.rule.precedence, f.line, f.rule.id))
        return findings

    def classify(self, log: bytes | str) -> Verdict:
        """The verdict on one log: the winning rule's cause and blame, or UNKNOWN."""
        findings = self.findings(log)
        if not findings:
            return Verdict(Blame.UNKNOWN, None, None, self.version, ())
        winner = findings[0]
        return Verdict(
            blame=winner.rule.blame,
            cause=winner.rule.cause,
            rule=winner.rule.id,
            version=self.version,
            evidence=winner.evidence,
            findings=tuple(findings),
        )

    def signature(
        self, log: str | None, details: str | None, evidence: Sequence[Any]
    ) -> Signature | None:
        """The crash's signature (execdb.classify.signature): from the evidence of the rule
        that fired, else from the log, else from the details."""
        return signature(log, details, evidence)
