"""Keyset paging: pages stay as fast at depth 10 000 as at depth 1.

A cursor names the id at the edge of the page it came from and the direction to go on in;
it is opaque to clients (base64) so that its form can change without breaking their links.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from sqlalchemy import ColumnElement, Select
from sqlalchemy.orm import InstrumentedAttribute

from execdb.errors import InvalidInput

Direction = Literal["after", "before"]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Cursor:
    direction: Direction
    key: int

    def encode(self) -> str:
        raw = f"{self.direction[0]}{self.key}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            direction: Direction = {"a": "after", "b": "before"}[raw[0]]  # type: ignore[assignment]
            key = int(raw[1:])
        except (binascii.Error, UnicodeDecodeError, KeyError, IndexError, ValueError):
            raise InvalidInput("cursor: not a cursor from one of this server's links") from None
        if not 0 <= key < 2**63:
            raise InvalidInput("cursor: not a cursor from one of this server's links")
        return cls(direction, key)


# A cursor past every row: the page before it holds the newest rows (oldest first).
NEWEST = Cursor("before", 2**63 - 1)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    rows: list[T]
    prev: Cursor | None
    next: Cursor | None


def keyset(
    stmt: Select[Any],
    key: ColumnElement[int] | InstrumentedAttribute[int],
    cursor: Cursor | None,
    limit: int,
    *,
    descending: bool,
) -> Select[Any]:
    """`stmt` limited to one page (plus one row, to tell whether another page follows)."""
    backward = cursor is not None and cursor.direction == "before"
    if cursor is not None:
        newer = (cursor.direction == "before") == descending
        stmt = stmt.where(key > cursor.key if newer else key < cursor.key)
    ascending = descending == backward
    return stmt.order_by(key.asc() if ascending else key.desc()).limit(limit + 1)


def page(
    rows: Sequence[T],
    key_of: Callable[[T], int],
    cursor: Cursor | None,
    limit: int,
    *,
    size_of: Callable[[T], int] | None = None,
    max_bytes: int | None = None,
) -> Page[T]:
    """The page for rows fetched with `keyset` (same cursor and limit).

    With `size_of` and `max_bytes`, the page also ends before the row that would take it
    over `max_bytes` (it always holds one row, so that paging goes on), and links on to it.
    """
    more = len(rows) > limit
    kept = list(rows[:limit])
    if size_of is not None and max_bytes is not None:
        total = 0
        for count, row in enumerate(kept):
            total += size_of(row)
            if total > max_bytes and count > 0:
                kept, more = kept[:count], True
                break
    if cursor is not None and cursor.direction == "before":
        kept.reverse()
        return Page(
            kept,
            prev=Cursor("before", key_of(kept[0])) if more else None,
            next=Cursor("after", key_of(kept[-1]) if kept else cursor.key),
        )
    return Page(
        kept,
        prev=Cursor("before", key_of(kept[0]) if kept else cursor.key) if cursor else None,
        next=Cursor("after", key_of(kept[-1])) if more else None,
    )
