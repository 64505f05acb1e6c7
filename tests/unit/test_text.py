"""Shortening long details and cleaning JSON so every database can store it."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from execdb.jobs.text import shorten, storable_json, storable_text


@given(st.text(), st.integers(min_value=1024, max_value=8192))
def test_shorten_fits_and_keeps_both_ends(text: str, limit: int) -> None:
    short, omitted = shorten(text, limit)
    assert len(short.encode()) <= limit
    if len(text.encode()) <= limit:
        assert (short, omitted) == (text, 0)
    else:
        assert omitted > 0
        head, _, tail = short.partition("\n\n[... ")
        assert text.startswith(head)
        assert text.endswith(tail.split("...]\n\n", 1)[1])
        assert len(head.encode()) >= limit // 2 - 200


def test_shorten_does_not_split_characters() -> None:
    short, _ = shorten("€" * 5000, 1024)
    short.encode("utf-8")  # would raise on a broken surrogate
    assert "€" in short


def test_storable_json_replaces_nul_everywhere() -> None:
    assert storable_json({"a\x00": ["b\x00", {"c": "\x00"}], "n": 1.5}) == {
        "a\ufffd": ["b\ufffd", {"c": "\ufffd"}],
        "n": 1.5,
    }
    assert storable_text("plain") == "plain"


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_storable_json_refuses_non_numbers_naming_where(number: float) -> None:
    with pytest.raises(ValueError, match=r"at a\.b\[1\]"):
        storable_json({"a": {"b": [1, number]}})


def test_lone_surrogates_are_replaced_in_text_and_json() -> None:
    assert storable_text("a\ud800b\udfff") == "a\ufffdb\ufffd"
    assert storable_json({"\ud800": ["\udfff"]}) == {"\ufffd": ["\ufffd"]}
    short, _ = shorten("\ud800" * 10, 1024)
    assert short == "\ud800" * 10, "shorten leaves short text alone"


def test_deep_nesting_is_refused_naming_where() -> None:
    deep: list[object] = []
    value: list[object] = deep
    for _ in range(40):
        value.append([])
        value = value[0]  # type: ignore[assignment]
    with pytest.raises(ValueError, match=r"deeper than 32 levels \(at a\[0\]"):
        storable_json({"a": deep})
    assert storable_json({"a": [[[1]]]}) == {"a": [[[1]]]}
