"""PostgreSQL transactions in fewer round trips: psycopg's pipeline mode.

A report was five round trips to the server, each a wait of its call: BEGIN (which psycopg
sends on its own, and waits for), SELECT ... FOR UPDATE, UPDATE, INSERT of the event,
COMMIT. On the connections that the server's calls keep (execdb.loopcalls), statements are
sent in pipeline mode, and only what the code must read waits for its answer:

- the connection is in autocommit mode, so psycopg sends no BEGIN of its own; the transaction
  sends BEGIN itself, queued, and it goes with the first statement;
- a statement whose rows are read (`Prepared.one_or_none`, or anything through SQLAlchemy's
  own execution, which looks at the result at once) is sent and waited for;
- the statements whose answers nobody reads (`Prepared.execute`: the UPDATE, the event's
  INSERT) are queued, and go with the COMMIT, which waits for all of them.

So a report is two round trips, and so is a creation. What the code does and in which
transaction is the same as without: only when an error is seen changes. A queued statement
that fails (a constraint, say) fails the COMMIT instead, with the same SQLAlchemy exception,
and the transaction is rolled back whole, as it would have been.

Other connections (the command line, tests, connections borrowed from the pool) do not use
it. `Prepared.enabled` false (the `prepared_statements = false` setting) switches it off
too, since then no statement is left unread.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import Engine, event
from sqlalchemy.engine import Connection

from execdb.prepared import Prepared, database_error


@dataclass(slots=True)
class _Entered:
    raw: psycopg.Connection[Any]
    manager: AbstractContextManager[psycopg.Pipeline]
    pipeline: psycopg.Pipeline
    in_transaction: bool = False


class Pipelines:
    """The pipelined transactions of one `Database`'s kept connections (PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self._entered: dict[int, _Entered] = {}
        self._lock = threading.Lock()
        event.listen(engine, "after_cursor_execute", self._synced)

    def _pipeline(self, raw: psycopg.Connection[Any]) -> _Entered:
        entered = self._entered.get(id(raw))
        if entered is None or entered.raw is not raw:
            # A new driver connection (the first, or one made after the old one was lost).
            raw.autocommit = True
            manager = raw.pipeline()
            entered = _Entered(raw, manager, manager.__enter__())
            with self._lock:
                self._entered[id(raw)] = entered
        return entered

    @contextmanager
    def transaction(self, conn: Connection) -> Iterator[None]:
        """BEGIN, queued; COMMIT with every queued statement, waited for; ROLLBACK on error."""
        if not Prepared.enabled:
            yield
            return
        raw = conn.connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        entered = self._pipeline(raw)
        pipeline = entered.pipeline
        cursor = raw.cursor()
        cursor.execute("BEGIN")
        entered.in_transaction = True
        try:
            yield
            try:
                cursor.execute("COMMIT")
                pipeline.sync()
            except psycopg.Error as exc:
                raise database_error(conn, exc, "COMMIT", {}, cursor) from exc
        except BaseException:
            self._rollback(raw, pipeline, cursor)
            raise
        finally:
            entered.in_transaction = False

    def _rollback(
        self, raw: psycopg.Connection[Any], pipeline: psycopg.Pipeline, cursor: psycopg.Cursor[Any]
    ) -> None:
        if raw.closed:
            return
        with contextlib.suppress(psycopg.Error):
            pipeline.sync()  # out of an aborted pipeline; what failed has been raised
        # On a connection lost, SQLAlchemy has been told by the error that said so.
        with contextlib.suppress(psycopg.Error):
            if raw.pgconn.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                cursor.execute("ROLLBACK")
                pipeline.sync()

    def _synced(self, conn: Connection, cursor: Any, statement: str, *args: Any) -> None:
        """After SQLAlchemy's own execution of a statement in a pipelined transaction: wait
        for its answer, which SQLAlchemy reads at once."""
        entered = self._entered.get(id(cursor.connection))
        if entered is not None and entered.raw is cursor.connection and entered.in_transaction:
            entered.pipeline.sync()

    def close(self) -> None:
        """Leave pipeline mode (before the connections are closed)."""
        with self._lock:
            for entered in self._entered.values():
                if not entered.raw.closed:
                    with contextlib.suppress(psycopg.Error):
                        entered.manager.__exit__(None, None, None)
            self._entered.clear()
