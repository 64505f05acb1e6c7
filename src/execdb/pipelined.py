"""PostgreSQL transactions in few round trips and few system calls: libpq's pipeline mode.

A report was five round trips to the server, each a wait of its call: BEGIN, SELECT ... FOR
UPDATE, UPDATE, INSERT of the event, COMMIT. On the connections that the server keeps
(execdb.db), a transaction's hot statements (`Prepared`, execdb.prepared) are sent in
pipeline mode, straight through libpq, and only what the code must read waits for its answer:

- the connection is in autocommit mode, so psycopg sends no BEGIN of its own; the transaction
  queues BEGIN itself, and it goes with the first statement;
- a statement whose row is read (`Prepared.one_or_none`) is sent, with all that is queued
  before it, and waited for;
- the statements whose answers nobody reads (`Prepared.execute`: the UPDATE, the event's
  INSERT) are queued, and go with the COMMIT, which waits for all of them.

So a report is two round trips, and so is a creation; each round trip is one write to the
socket. Each statement is prepared on the server the first time a connection runs it, and
its parameters and rows go through psycopg's own adapters (a `Transformer` of the
connection's), so the values are exactly those that psycopg's cursors would send and read.
psycopg's cursors in pipeline mode cost three times as much: every statement is a turn of
the wait loop and a write of its own.

What the code does and in which transaction is the same as without: only when an error is
seen changes. A queued statement that fails (a constraint, say) fails the COMMIT instead,
with the SQLAlchemy exception it would have raised, naming that statement, and the
transaction is rolled back whole, as it would have been.

A statement of SQLAlchemy's own (anything not `Prepared`) sends what is queued, waits for it,
and takes the connection out of pipeline mode for the rest of the transaction, which then
runs as any other. Other connections (the command line, tests, connections borrowed from the
pool) do not use it; nor does anything with `Prepared.enabled` false (the
`prepared_statements = false` setting).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import psycopg
from psycopg import errors, pq
from psycopg.abc import PQGen
from psycopg.adapt import PyFormat, Transformer
from psycopg.waiting import Ready, Wait
from sqlalchemy import Engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, StatementError

_Status = pq.ExecStatus


def database_error(
    conn: Connection, exc: Exception, sql: str, params: Mapping[str, Any], cursor: Any = None
) -> StatementError:
    """What SQLAlchemy itself would have raised for the driver's `exc`, so that callers and
    error handlers see one family of exceptions (IntegrityError, OperationalError ...); a
    connection the server has closed is dropped, as SQLAlchemy does."""
    raw = conn.connection.driver_connection
    lost = conn.dialect.is_disconnect(cast(Any, exc), raw, cursor)
    if lost:
        conn.invalidate(exc)
    return DBAPIError.instance(
        sql,
        dict(params),
        exc,
        conn.dialect.loaded_dbapi.Error,
        connection_invalidated=lost,
        dialect=conn.dialect,
    )


@dataclass(frozen=True, slots=True)
class _Sent:
    """A command sent since the last sync, for its result (one each, in order)."""

    sql: str
    params: Mapping[str, Any]
    prepares: tuple[tuple[str, tuple[int, ...]], bytes] | None = None


def _round_trip(pgconn: pq.abc.PGconn) -> PQGen[list[pq.abc.PGresult]]:
    """Send all that is queued and a sync; the results of the commands, up to the sync's."""
    pgconn.pipeline_sync()
    while pgconn.flush():  # more to send: the socket is full
        ready = yield Wait.RW
        if ready & Ready.R:  # the server may be waiting for us to read
            pgconn.consume_input()
    results: list[pq.abc.PGresult] = []
    while True:
        while pgconn.is_busy():
            yield Wait.R
            pgconn.consume_input()
        result = pgconn.get_result()
        if result is None:  # the end of one command's results
            continue
        if result.status == _Status.PIPELINE_SYNC:
            return results
        results.append(result)


class Batch:
    """The pipelined transaction of one kept driver connection (see the module)."""

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw
        self._pgconn = raw.pgconn
        self._adapt = Transformer(raw)
        self._names: dict[tuple[str, tuple[int, ...]], bytes] = {}
        self._prepares = 0  # names are never reused: one whose PREPARE failed may exist
        self._sent: list[_Sent] = []
        self._conn: Connection | None = None
        self.piped = False  # in pipeline mode, Prepared statements go here
        self._begun = False

    # -- what Prepared sends --

    def queue(self, sql: str, values: Sequence[Any], params: Mapping[str, Any]) -> None:
        """Send a statement whose answer is not read; it is checked at the next sync."""
        self._enter(begin=True)
        self._send(sql, values, params)

    def row(
        self, sql: str, values: Sequence[Any], params: Mapping[str, Any]
    ) -> tuple[Any, ...] | None:
        """Send a statement, with all that is queued, and its first row."""
        self._enter(begin=True)
        self._send(sql, values, params)
        result = self._sync()[-1]
        if not result.ntuples:
            return None
        self._adapt.set_pgresult(result)
        return self._adapt.load_row(0, tuple)

    def _send(self, sql: str, values: Sequence[Any], params: Mapping[str, Any]) -> None:
        pgconn, adapt = self._pgconn, self._adapt
        dumped = adapt.dump_sequence(values, [PyFormat.AUTO] * len(values))
        key = (sql, tuple(adapt.types or ()))
        name = self._names.get(key)
        if name is None:  # prepared on the server with the types of its first values
            self._prepares += 1
            name = b"execdb_%d" % self._prepares
            pgconn.send_prepare(name, sql.encode(), param_types=adapt.types)
            self._sent.append(_Sent(sql, params, (key, name)))
        pgconn.send_query_prepared(name, dumped, param_formats=adapt.formats)
        self._sent.append(_Sent(sql, params))

    # -- the transaction --

    def _enter(self, *, begin: bool) -> None:
        if not self.piped:
            self._pgconn.enter_pipeline_mode()
            self.piped = True
        if begin and not self._begun:
            self._command("BEGIN")
            self._begun = True

    def _command(self, sql: str) -> None:
        self._pgconn.send_query_params(sql.encode(), None)
        self._sent.append(_Sent(sql, {}))

    def _exit(self) -> None:
        if self.piped:
            self.piped = False
            self._pgconn.exit_pipeline_mode()

    def _sync(self) -> list[pq.abc.PGresult]:
        """Send what is queued and wait; the first command that failed raises its error."""
        sent, self._sent = self._sent, []
        try:
            results = self.raw.wait(_round_trip(self._pgconn))
        except psycopg.Error as exc:
            raise self._error(exc, sent[-1]) from exc
        failed: tuple[Exception, _Sent] | None = None
        for command, result in zip(sent, results, strict=True):
            if result.status == _Status.FATAL_ERROR and failed is None:
                failed = (errors.error_from_result(result, self.raw.info.encoding), command)
            elif command.prepares is not None and result.status == _Status.COMMAND_OK:
                key, name = command.prepares
                self._names[key] = name
        if failed is not None:
            raise self._error(*failed) from failed[0]
        return results

    def _error(self, exc: Exception, command: _Sent) -> StatementError:
        assert self._conn is not None
        return database_error(self._conn, exc, command.sql, command.params)

    @property
    def takes_statements(self) -> bool:
        """Whether Prepared statements go here: until the transaction has left pipeline mode."""
        return self.piped or not self._begun

    def begin(self, conn: Connection) -> None:
        self._conn = conn
        self._begun = False  # BEGIN goes with the first statement

    def before_own_statement(self) -> None:
        """A statement of SQLAlchemy's own is coming: send BEGIN and what is queued, and
        leave pipeline mode for the rest of the transaction."""
        if self.takes_statements:
            self._enter(begin=True)
            self._sync()
            self._exit()

    def commit(self) -> None:
        if not self._begun:
            return  # nothing was sent
        self._enter(begin=False)
        self._command("COMMIT")
        self._sync()
        self._exit()

    def rollback(self) -> None:
        """End the transaction whatever state it is in; errors here are not the caller's
        (what failed has been raised, and a lost connection is SQLAlchemy's to drop)."""
        if self.raw.closed:
            self._sent, self.piped = [], False
            return
        with contextlib.suppress(psycopg.Error, DBAPIError):
            if self._sent:
                self._enter(begin=False)
                self._sync()  # out of an aborted pipeline
        with contextlib.suppress(psycopg.Error, DBAPIError):
            if self._pgconn.transaction_status != pq.TransactionStatus.IDLE:
                self._enter(begin=False)
                self._command("ROLLBACK")
                self._sync()
        self._sent = []
        with contextlib.suppress(psycopg.Error):
            self._exit()

    def end(self) -> None:
        self._conn = None
        self._begun = False


class Pipelines:
    """The pipelined transactions of one `Database`'s kept connections (PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self._batches: dict[int, Batch] = {}
        self._lock = threading.Lock()
        event.listen(engine, "before_cursor_execute", self._own_statement)

    def _batch(self, raw: psycopg.Connection[Any]) -> Batch:
        batch = self._batches.get(id(raw))
        if batch is None or batch.raw is not raw:
            # A new driver connection (the first, or one made after the old one was lost).
            raw.autocommit = True
            batch = Batch(raw)
            with self._lock:
                self._batches[id(raw)] = batch
        return batch

    @contextmanager
    def transaction(self, conn: Connection) -> Iterator[Batch]:
        """BEGIN, queued; COMMIT with every queued statement, waited for; ROLLBACK on error."""
        raw = conn.connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        batch = self._batch(raw)
        batch.begin(conn)
        _active[id(raw)] = batch
        try:
            yield batch
            batch.commit()
        except BaseException:
            batch.rollback()
            raise
        finally:
            _active.pop(id(raw), None)
            batch.end()

    def _own_statement(self, conn: Connection, cursor: Any, *args: Any) -> None:
        batch = _active.get(id(cursor.connection))
        if batch is not None and batch.raw is cursor.connection:
            batch.before_own_statement()

    def close(self) -> None:
        with self._lock:
            self._batches.clear()


# The open pipelined transactions, by driver connection: each is used by the one thread or
# service call that holds its connection, so a plain dict (atomic updates) will do.
_active: dict[int, Batch] = {}


def batch_of(raw: Any) -> Batch | None:
    """The pipelined transaction open on driver connection `raw`, while it takes statements."""
    batch = _active.get(id(raw))
    return batch if batch is not None and batch.raw is raw and batch.takes_statements else None
