"""Cursors and time-ordered ids."""

from __future__ import annotations

import uuid

import pytest

from execdb.errors import InvalidInput
from execdb.ids import uuid7
from execdb.paging import Cursor, page


@pytest.mark.parametrize("cursor", [Cursor("after", 0), Cursor("before", 2**62)])
def test_cursors_round_trip(cursor: Cursor) -> None:
    assert Cursor.decode(cursor.encode()) == cursor


@pytest.mark.parametrize("text", ["", "!!!", "eDE", "YTE5OTk5OTk5OTk5OTk5OTk5OTk5OTk", "YS0x"])
def test_a_forged_cursor_is_invalid_input(text: str) -> None:
    with pytest.raises(InvalidInput, match="cursor"):
        Cursor.decode(text)


def test_page_links() -> None:
    first = page([5, 4, 3], int, None, 2)
    assert (first.rows, first.prev, first.next) == ([5, 4], None, Cursor("after", 4))
    back = page([6, 7, 8], int, Cursor("before", 5), 2)
    assert back.rows == [7, 6]
    assert (back.prev, back.next) == (Cursor("before", 7), Cursor("after", 6))
    empty = page([], int, Cursor("after", 1), 2)
    assert (empty.prev, empty.next) == (Cursor("before", 1), None)


def test_uuid7_is_version_7_and_ordered_by_time() -> None:
    ids = [uuid7(now_ns=1_700_000_000_000_000_000 + n * 1_000_000) for n in range(100)]
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == 100
    assert uuid7().bytes[:6] > ids[-1].bytes[:6]


def test_a_page_ends_before_its_bytes_run_over() -> None:
    size = {5: 40, 4: 40, 3: 40, 2: 1000, 1: 1}.__getitem__
    first = page([5, 4, 3, 2, 1], int, None, 10, size_of=size, max_bytes=100)
    assert (first.rows, first.prev, first.next) == ([5, 4], None, Cursor("after", 4))
    alone = page([2, 1], int, Cursor("after", 3), 10, size_of=size, max_bytes=100)
    assert alone.rows == [2], "a row larger than the budget still makes a page of its own"
    assert alone.next == Cursor("after", 2)
    back = page([3, 4, 5], int, Cursor("before", 2), 10, size_of=size, max_bytes=100)
    assert back.rows == [4, 3], "going back, the rows next to the cursor are the ones kept"
    assert (back.prev, back.next) == (Cursor("before", 4), Cursor("after", 3))
    whole = page([5, 4, 3], int, None, 10, size_of=size, max_bytes=120)
    assert (whole.rows, whole.next) == ([5, 4, 3], None)
