"""Pages bounded in bytes as well as in rows, without reading more than they hold.

A page of 1000 jobs may hold 1000 times a job's trigger_data, executor and details, and the
history of a job thousands of payloads. Cutting the page short after reading it would still
read them all into the server's memory. So the query gives the size of each row's large
columns (which the database computes without sending them) and the large values only of
rows where they are small (INLINE_BYTES, as nearly all are); the sizes decide where the
page ends, and a second query, in the same transaction, fetches the large values of the
rows on the page that have them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Integer,
    Select,
    Text,
    bindparam,
    case,
    cast,
    func,
    null,
    select,
)
from sqlalchemy.engine import Connection

from execdb.paging import Cursor, Page, keyset, page

Row = Mapping[Any, Any]
INLINE_BYTES = 4096


@dataclass(frozen=True, slots=True)
class BoundedSelect:
    """`table`'s rows, paged by `id`, with `large` columns counted against a page's bytes."""

    table: FromClause
    large: tuple[str, ...]
    slim: Select[Any]
    fetch: Select[Any]

    @classmethod
    def of(cls, table: FromClause, large: Sequence[str]) -> BoundedSelect:
        # Characters of the stored JSON or text: bytes to within the UTF-8 of non-ASCII text,
        # and cheap on both databases (SQLite keeps JSON as text; PostgreSQL prints jsonb).
        size: ColumnElement[int] = sum(
            (func.coalesce(func.length(cast(table.c[name], Text)), 0) for name in large),
            start=cast(0, Integer),
        )
        inline = size <= INLINE_BYTES
        slim = select(
            *(
                case((inline, c), else_=null()).label(c.key) if c.key in large else c
                for c in table.c
            ),
            size.label("_bytes"),
        )
        fetch = select(table.c.id, *(table.c[name] for name in large)).where(
            table.c.id.in_(bindparam("ids", expanding=True))
        )
        return cls(table, tuple(large), slim, fetch)

    def page(
        self,
        conn: Connection,
        where: Sequence[ColumnElement[bool]],
        cursor: Cursor | None,
        limit: int,
        *,
        max_bytes: int,
        descending: bool,
        key: ColumnElement[int] | None = None,
    ) -> Page[Row]:
        """A page of rows by `where`, keyed by id (or by `key`, a column equal to the id that
        the database can walk in order more cheaply: a full-text index's rowid)."""
        rows = self.rows(conn, where, cursor, limit, descending=descending, key=key)
        return self.finish(conn, rows, cursor, limit, max_bytes=max_bytes)

    def rows(
        self,
        conn: Connection,
        where: Sequence[ColumnElement[bool]],
        cursor: Cursor | None,
        limit: int,
        *,
        descending: bool,
        key: ColumnElement[int] | None = None,
    ) -> list[dict[str, Any]]:
        """The rows of a page by `where` (one more than `limit` when another page follows),
        in the order of the cursor's walk, with their large values only where they are
        small; `finish` makes them a page. A page read in parts (execdb.jobs.fulltext) is
        the rows of each part, one after the other."""
        order = self.table.c.id if key is None else key
        stmt = keyset(self.slim.where(*where), order, cursor, limit, descending=descending)
        result = conn.execute(stmt)
        keys = list(result.keys())
        # Plain dicts built in C: RowMapping's items() cost more than the query itself.
        return [dict(zip(keys, row, strict=True)) for row in result.all()]

    def finish(
        self,
        conn: Connection,
        rows: Sequence[dict[str, Any]],
        cursor: Cursor | None,
        limit: int,
        *,
        max_bytes: int,
    ) -> Page[Row]:
        """The page of `rows` (from `rows`, same cursor and limit), with the large values
        fetched for the rows on it that have them."""
        found = page(rows, _id, cursor, limit, size_of=_bytes, max_bytes=max_bytes)
        ids = [row["id"] for row in found.rows if row["_bytes"] > INLINE_BYTES]
        fetched = conn.execute(self.fetch, {"ids": ids}).all() if ids else []
        large = {key: values for key, *values in fetched}
        for row in found.rows:
            if row.pop("_bytes") > INLINE_BYTES:
                row.update(zip(self.large, large[row["id"]], strict=True))
        return Page(list(found.rows), found.prev, found.next)


def _id(row: Row) -> int:
    return int(row["id"])


def _bytes(row: Row) -> int:
    return int(row["_bytes"])
