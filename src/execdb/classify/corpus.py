"""How well the rules do on a labelled corpus: accuracy, per-cause precision and recall, misses.

A corpus is JSON lines, one crashed (or passing) run each: `log`, the labelled `blame` and
`cause` (null: nothing recognisable, UNKNOWN), and optionally `id`, `split` (dev or heldout),
`source` and `note`. Every log goes through the same bounded tail the command line reads.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from execdb.causes.catalogue import is_valid_code
from execdb.classify.engine import Engine, Verdict, as_bytes
from execdb.classify.logs import cut
from execdb.vocabulary import Blame

NO_CAUSE = "(none)"


class CorpusError(ValueError):
    """A corpus file is malformed; the message names the file, the line and the key."""


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    blame: Blame
    cause: str | None
    log: str
    split: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    entry: Entry
    verdict: Verdict

    @property
    def blame_right(self) -> bool:
        return self.verdict.blame is self.entry.blame

    @property
    def cause_right(self) -> bool:
        return self.verdict.cause == self.entry.cause


@dataclass(frozen=True, slots=True)
class Score:
    """One cause's counts: answered right, answered at all, and labelled."""

    right: int = 0
    answered: int = 0
    labelled: int = 0

    @property
    def precision(self) -> float | None:
        return self.right / self.answered if self.answered else None

    @property
    def recall(self) -> float | None:
        return self.right / self.labelled if self.labelled else None


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 1.0


@dataclass(frozen=True, slots=True)
class Report:
    outcomes: tuple[Outcome, ...]
    version: str
    scores: dict[str, Score] = field(default_factory=dict)

    @property
    def blame_accuracy(self) -> float:
        return _ratio(sum(o.blame_right for o in self.outcomes), len(self.outcomes))

    @property
    def cause_accuracy(self) -> float:
        return _ratio(sum(o.cause_right for o in self.outcomes), len(self.outcomes))

    @property
    def answered(self) -> int:
        """Entries the rules gave a cause to."""
        return sum(o.verdict.cause is not None for o in self.outcomes)

    @property
    def wrong_answers(self) -> int:
        """Entries given a cause that is not their label: the errors that cost the most."""
        return sum(o.verdict.cause is not None and not o.cause_right for o in self.outcomes)

    @property
    def precision(self) -> float:
        """Of the entries given a cause, the share given the right one."""
        return _ratio(self.answered - self.wrong_answers, self.answered)

    @property
    def confusions(self) -> Counter[tuple[str, str]]:
        """(labelled, answered) cause pairs of the entries whose cause is wrong."""
        return Counter(
            (o.entry.cause or NO_CAUSE, o.verdict.cause or NO_CAUSE)
            for o in self.outcomes
            if not o.cause_right
        )

    @property
    def misses(self) -> list[Outcome]:
        return [o for o in self.outcomes if not (o.cause_right and o.blame_right)]

    def as_dict(self) -> dict[str, Any]:
        return {
            "entries": len(self.outcomes),
            "rules_version": self.version,
            "blame_accuracy": self.blame_accuracy,
            "cause_accuracy": self.cause_accuracy,
            "answered": self.answered,
            "wrong_answers": self.wrong_answers,
            "precision": self.precision,
            "causes": {
                cause: {
                    "precision": s.precision,
                    "recall": s.recall,
                    "answered": s.answered,
                    "labelled": s.labelled,
                }
                for cause, s in self.scores.items()
            },
            "confusions": [
                {"labelled": labelled, "answered": answered, "count": count}
                for (labelled, answered), count in self.confusions.most_common()
            ],
            "misses": [
                {
                    "id": o.entry.id,
                    "labelled": {"blame": str(o.entry.blame), "cause": o.entry.cause},
                    "answered": o.verdict.as_dict(),
                }
                for o in self.misses
            ],
        }


def _entry(data: Any, where: str) -> Entry:
    if not isinstance(data, dict):
        raise CorpusError(f"{where}: expected a JSON object")
    log = data.get("log")
    if not isinstance(log, str):
        raise CorpusError(f"{where}: key 'log' must be a string")
    blame = data.get("blame") or "UNKNOWN"
    if not isinstance(blame, str) or blame.upper() not in Blame.__members__:
        raise CorpusError(f"{where}: key 'blame' must be one of {', '.join(Blame)} or null")
    cause = data.get("cause")
    if cause is not None and (not isinstance(cause, str) or not is_valid_code(cause)):
        raise CorpusError(f"{where}: key 'cause' must be a cause code or null")
    split = data.get("split")
    if split is not None and not isinstance(split, str):
        raise CorpusError(f"{where}: key 'split' must be a string")
    return Entry(str(data.get("id", where)), Blame(blame.upper()), cause, log, split)


def read_corpus(path: Path) -> list[Entry]:
    entries = []
    try:
        with path.open(encoding="utf-8", errors="surrogateescape") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                where = f"{path}:{number}"
                try:
                    data = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise CorpusError(f"{where}: not JSON: {exc.msg}") from None
                entries.append(_entry(data, where))
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read: {exc.strerror}") from exc
    return entries


def evaluate(engine: Engine, entries: Iterable[Entry]) -> Report:
    outcomes = tuple(
        Outcome(entry, engine.classify(cut(as_bytes(entry.log)).text)) for entry in entries
    )
    right: Counter[str] = Counter()
    answered: Counter[str] = Counter()
    labelled: Counter[str] = Counter()
    for o in outcomes:
        labelled[o.entry.cause or NO_CAUSE] += 1
        answered[o.verdict.cause or NO_CAUSE] += 1
        if o.cause_right:
            right[o.entry.cause or NO_CAUSE] += 1
    scores = {
        cause: Score(right[cause], answered[cause], labelled[cause])
        for cause in sorted(labelled.keys() | answered.keys())
    }
    return Report(outcomes, engine.version, scores)


def select(entries: Sequence[Entry], split: str | None) -> list[Entry]:
    return [e for e in entries if split is None or e.split == split]
