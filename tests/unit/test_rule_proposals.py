"""Patterns proposed from a crash's lines, and rules written back as TOML: what a person gets
on /rules/new and from `execdb rules export` must load as it was."""

from __future__ import annotations

import tomllib

import pytest

from execdb.causes.catalogue import load_catalogue
from execdb.classify.regex import check_line_pattern
from execdb.classify.rules import build_rule, rule_table
from execdb.classify.toml import dump_rules
from execdb.rules.propose import escape, key_line, pattern_of, propose

LINES = [
    "requests.exceptions.ReadTimeout: HTTPSConnectionPool(host='koji.fedoraproject.org', "
    "port=443): Read timed out. (read timeout=43200)",
    "Error: Unable to find a match: python3-nosuchthing in /var/cache/dnf/x.solv",
    "[ 8811.12] Out of memory: Killed process 48211 (python3) total-vm:8388608kB",
    "minion 0b7c6a1e-57c3-4d0b-9a6e-0f2d1c1e4f00 failed at 2026-12-02 12:00:01,123 (0xdeadbeef)",
    "weird $^ chars | here [x] {y} (z) * + ? \\ end",
]


@pytest.mark.parametrize("line", LINES)
def test_a_proposed_pattern_compiles_and_matches_its_line(line: str) -> None:
    pattern = pattern_of(line)
    assert check_line_pattern(pattern).search(line.encode()) is not None


def test_variable_parts_become_classes() -> None:
    assert pattern_of(LINES[0]) == (
        r"requests\.exceptions\.ReadTimeout: HTTPSConnectionPool\(host='[\w.-]+', "
        r"port=\d+\): Read timed out\. \(read timeout=\d+\)"
    )
    other_day = LINES[3].replace("0b7c6a1e", "99999999").replace("12:00:01", "23:59:59")
    assert check_line_pattern(pattern_of(LINES[3])).search(other_day.encode()) is not None
    assert r"/\S*" in pattern_of(LINES[1])


def test_escaping_leaves_nothing_special() -> None:
    text = r"a.b*c+d?e(f)g[h]i{j}k|l^m$n\o"
    assert check_line_pattern("^" + escape(text) + "$").search(text.encode()) is not None


def test_the_key_line_is_the_last_error_below_the_last_passed_step() -> None:
    log = "\n".join(
        [
            "Error: a mirror timed out, trying another",
            "program finished with exit code 0",
            "step 2",
            "Traceback (most recent call last):",
            "ValueError: could not parse the formula",
            "cleaning up",
        ]
    )
    assert key_line(log) == "ValueError: could not parse the formula"
    assert propose([], log) == ["ValueError: could not parse the formula"]
    assert propose(["line 7 failed"], log) == [r"line \d+ failed"]
    assert propose([], "all good\n") == []


def test_a_rule_written_as_toml_loads_as_it_was() -> None:
    catalogue = load_catalogue(None)
    table = {
        "cause": "koji.error",
        "blame": "TASK",
        "precedence": 60,
        "description": "Quotes ' and \" and a tab\tin it.",
        "match": [r"koji said: \"no\" at 'x' \d+"],
        "then": [r"giving up"],
        "within": 3,
        "examples": ["koji said: \"no\" at 'x' 7\ngiving up"],
    }
    rule = build_rule("site.koji_quoted", table, "test", catalogue)
    text = dump_rules({rule.id: rule_table(rule)}, "a header\nof two lines")
    loaded = tomllib.loads(text)
    assert text.startswith("# a header\n# of two lines\n")
    again = build_rule("site.koji_quoted", loaded["site.koji_quoted"], "test", catalogue)
    assert rule_table(again) == rule_table(rule)
