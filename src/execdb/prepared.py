"""Hot statements compiled once per dialect and run straight on the DB-API cursor.

SQLAlchemy's execution path (execution context, result objects, event dispatch) costs several
times SQLite's own work on a short statement, and was most of the cost of a report
(docs/benchmarks.md). The few statements every report and creation runs skip it. What makes
them correct stays SQLAlchemy's: the SQL comes from its compiler for the connection's
dialect, and every value goes through its type's own bind and result processors, so UUIDs,
UTC datetimes, enums and JSON are stored exactly as the rest of the code stores them.
Everything else uses SQLAlchemy Core as usual.

On PostgreSQL, inside a pipelined transaction of a connection the server keeps, they skip
psycopg's cursors too: they go to the transaction's `Batch` (execdb.pipelined), which sends
them through libpq, prepared on the server.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, cast

from sqlalchemy import Dialect
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler

from execdb.pipelined import batch_of, database_error

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    positional: bool
    binds: tuple[tuple[str, Processor], ...]
    columns: tuple[tuple[str, Processor], ...]
    numbered: str  # with $1, $2 ... for PostgreSQL's own protocol (execdb.pipelined)


_PYFORMAT = re.compile(r"%\((\w+)\)s|%%")


def _numbered(sql: str, names: Sequence[str]) -> str:
    """`sql` with psycopg's %(name)s placeholders as PostgreSQL's $n, and %% as %."""
    number = {name: i for i, name in enumerate(names, 1)}

    def placeholder(m: re.Match[str]) -> str:
        return f"${number[m[1]]}" if m[1] else "%"

    return _PYFORMAT.sub(placeholder, sql)


class Prepared:
    """`statement`, for INSERT and UPDATE with exactly the `column_keys` in its VALUES or SET.

    With `Prepared.enabled` false (the `prepared_statements = false` setting, for comparing
    in bench/lifecycle.py), they go through SQLAlchemy's own execution path instead.
    """

    enabled: ClassVar[bool] = True

    def __init__(self, statement: ClauseElement, column_keys: Sequence[str] = ()) -> None:
        self.statement = statement
        self.column_keys = list(column_keys)
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, dialect: Dialect) -> _Compiled:
        done = self._compiled.get(dialect.name)
        if done is None:
            compiled = cast(
                SQLCompiler,
                self.statement.compile(dialect=dialect, column_keys=self.column_keys or None),
            )
            names = compiled.positiontup or list(compiled.binds)
            binds = tuple(
                (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
                for name in names
            )
            # What a SELECT selects, or what an INSERT ... RETURNING returns.
            selected = getattr(self.statement, "exported_columns", ())
            columns = tuple(
                (c.key, c.type.dialect_impl(dialect).result_processor(dialect, None))
                for c in selected
            )
            numbered = "" if dialect.positional else _numbered(compiled.string, names)
            done = _Compiled(compiled.string, dialect.positional, binds, columns, numbered)
            self._compiled[dialect.name] = done
        return done

    @staticmethod
    def _values(c: _Compiled, params: Mapping[str, Any]) -> list[Any]:
        return [p(params[n]) if p else params[n] for n, p in c.binds]

    def _run(self, conn: Connection, params: Mapping[str, Any]) -> tuple[_Compiled, Any]:
        c = self._for(conn.dialect)
        values = self._values(c, params)
        raw = conn.connection.driver_connection
        cursor = raw.cursor()  # type: ignore[union-attr]
        try:
            if c.positional:
                cursor.execute(c.sql, values)
            else:
                cursor.execute(c.sql, {n: v for (n, _), v in zip(c.binds, values, strict=True)})
        except conn.dialect.loaded_dbapi.Error as exc:
            cursor.close()
            raise database_error(conn, exc, c.sql, params, cursor) from exc
        return c, cursor

    def execute(self, conn: Connection, params: Mapping[str, Any]) -> None:
        """Run the statement; in a pipeline (execdb.pipelined) it is only queued, and goes,
        and fails if it fails, with the next statement that is waited for."""
        if not Prepared.enabled:
            conn.execute(cast(Executable, self.statement), dict(params))
            return
        batch = batch_of(conn)
        if batch is not None:
            c = self._for(conn.dialect)
            batch.queue(c.numbered, self._values(c, params), params)
            return
        _, cursor = self._run(conn, params)
        cursor.close()

    def one_or_none(self, conn: Connection, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """The first row, as a dict by column name with values of their Python types."""
        if not Prepared.enabled:
            found = conn.execute(cast(Executable, self.statement), dict(params)).mappings().first()
            return dict(found) if found is not None else None
        batch = batch_of(conn)
        if batch is not None:
            c = self._for(conn.dialect)
            row = batch.row(c.numbered, self._values(c, params), params)
        else:
            c, cursor = self._run(conn, params)
            try:
                row = cursor.fetchone()
            except conn.dialect.loaded_dbapi.Error as exc:
                raise database_error(conn, exc, c.sql, params, cursor) from exc
            finally:
                cursor.close()
        if row is None:
            return None
        return {k: p(v) if p else v for (k, p), v in zip(c.columns, row, strict=True)}
