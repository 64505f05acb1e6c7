"""The labelled crash-log corpus (tests/corpus/) is well-formed and uses only catalogued causes.

The fresh set (fresh.jsonl, fresh-passing.jsonl) is held apart from dev and heldout: it measures
rules on logs nobody tuning them has seen, so it is checked the same way but on its own.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from execdb.causes.catalogue import load_catalogue
from execdb.jobs.states import Blame

CORPUS = Path(__file__).parents[1] / "corpus"
KEYS = {"id", "split", "blame", "cause", "source", "note", "log"}
SPLITS = {"dev", "heldout"}
MINIMUM = {
    "crashes.jsonl": 240,
    "passing.jsonl": 40,
    "fresh.jsonl": 70,
    "fresh-passing.jsonl": 15,
}
# The split each file's entries may carry.
FILE_SPLITS = {
    "crashes.jsonl": SPLITS,
    "passing.jsonl": SPLITS,
    "fresh.jsonl": {"fresh"},
    "fresh-passing.jsonl": {"fresh"},
}
CRASHES = ("crashes.jsonl", "fresh.jsonl")
PASSING = ("passing.jsonl", "fresh-passing.jsonl")


def read(name: str) -> list[dict[str, Any]]:
    entries = []
    with (CORPUS / name).open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            entry = json.loads(line)
            assert isinstance(entry, dict), f"{name}:{number}: not a JSON object"
            entries.append(entry)
    return entries


@pytest.fixture(scope="module")
def crashes() -> list[dict[str, Any]]:
    return read("crashes.jsonl")


@pytest.mark.parametrize("name", sorted(MINIMUM))
def test_entries_have_the_documented_shape(name: str) -> None:
    entries = read(name)
    assert len(entries) >= MINIMUM[name]
    for entry in entries:
        assert set(entry) == KEYS, entry.get("id")
        assert entry["split"] in FILE_SPLITS[name], entry["id"]
        for field in ("id", "source", "note", "log"):
            assert isinstance(entry[field], str), (entry["id"], field)
            assert entry[field].strip(), (entry["id"], field)
        assert 10 <= entry["log"].count("\n") + 1 <= 80, entry["id"]


def test_ids_are_unique_across_all_files() -> None:
    counts = Counter(entry["id"] for name in MINIMUM for entry in read(name))
    assert [i for i, n in counts.items() if n > 1] == []


@pytest.mark.parametrize("name", CRASHES)
def test_crashes_name_a_blame_and_a_catalogued_cause(name: str) -> None:
    catalogue = load_catalogue(None)
    for entry in read(name):
        assert entry["blame"] in Blame.__members__, entry["id"]
        cause = entry["cause"]
        assert cause is None or cause in catalogue, (entry["id"], cause)
        if cause is None:
            assert entry["blame"] == "UNKNOWN", entry["id"]


@pytest.mark.parametrize("name", PASSING)
def test_passing_runs_have_no_blame_and_no_cause(name: str) -> None:
    for entry in read(name):
        assert entry["blame"] is None, entry["id"]
        assert entry["cause"] is None, entry["id"]


def test_every_label_is_in_both_splits(crashes: list[dict[str, Any]]) -> None:
    splits: dict[tuple[str, str | None], set[str]] = {}
    for entry in crashes:
        splits.setdefault((entry["blame"], entry["cause"]), set()).add(entry["split"])
    assert {label: s for label, s in splits.items() if s != SPLITS} == {}


def test_the_fresh_set_covers_every_label_of_the_corpus(crashes: list[dict[str, Any]]) -> None:
    labels = {(entry["blame"], entry["cause"]) for entry in crashes}
    fresh = {(entry["blame"], entry["cause"]) for entry in read("fresh.jsonl")}
    assert labels - fresh == set()
