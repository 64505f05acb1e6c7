"""The shipped rules on the labelled corpus: a regression floor, not the figures.

Issue #12 asks for 95 % right blame and 90 % right cause on the corpus as a whole; the dev
split, which the rules were written on, is held to more. docs/classification.md reports the
figures of each split, and of the fresh set, which no test holds so that nothing gets tuned
to it.
"""

from __future__ import annotations

from pathlib import Path

from execdb.causes.catalogue import load_catalogue
from execdb.classify import Engine, load_rules
from execdb.classify.corpus import evaluate, read_corpus, select

CORPUS = Path(__file__).parents[2] / "tests" / "corpus"
ENGINE = Engine(load_rules(load_catalogue()))


def test_the_crashes_are_classified_right() -> None:
    report = evaluate(ENGINE, read_corpus(CORPUS / "crashes.jsonl"))
    assert len(report.outcomes) >= 240
    misses = [(o.entry.id, o.verdict.rule) for o in report.misses]
    assert report.blame_accuracy >= 0.95, misses
    assert report.cause_accuracy >= 0.90, misses
    assert report.precision >= 0.97, misses


def test_the_dev_crashes_are_classified_right() -> None:
    report = evaluate(ENGINE, select(read_corpus(CORPUS / "crashes.jsonl"), "dev"))
    assert len(report.outcomes) >= 100
    misses = [(o.entry.id, o.verdict.rule) for o in report.misses]
    assert report.blame_accuracy >= 0.95, misses
    assert report.cause_accuracy >= 0.90, misses
    assert report.precision >= 0.97, misses


def test_no_rule_fires_on_a_passing_run() -> None:
    report = evaluate(ENGINE, read_corpus(CORPUS / "passing.jsonl"))
    assert len(report.outcomes) >= 40
    assert report.answered == 0, [(o.entry.id, o.verdict.rule) for o in report.misses]
