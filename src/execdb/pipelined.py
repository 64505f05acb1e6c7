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
With psycopg's cursors in pipeline mode (every statement a turn of the wait loop and a
write of its own), a lifecycle request cost the server about 0.79 ms of CPU against 0.55
(docs/benchmarks.md).

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
        """Whether Prepared statements go here: in an open transaction, until it has left
        pipeline mode."""
        return self._conn is not None and (self.piped or not self._begun)

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


_BATCH = "execdb.pipelined"  # the key of a driver connection's Batch in its pool info


class Pipelines:
    """The pipelined transactions of one `Database`'s kept connections (PostgreSQL).

    Each driver connection's `Batch` lives in SQLAlchemy's info dictionary of that connection
    (`PoolProxiedConnection.info`), so it lasts as long as the connection and no longer.
    """

    def __init__(self, engine: Engine) -> None:
        event.listen(engine, "before_cursor_execute", self._own_statement)

    @contextmanager
    def transaction(self, conn: Connection) -> Iterator[Batch]:
        """BEGIN, queued; COMMIT with every queued statement, waited for; ROLLBACK on error."""
        info = conn.connection.info
        batch: Batch | None = info.get(_BATCH)
        if batch is None:  # a new driver connection (the first, or one after a lost one)
            raw = conn.connection.driver_connection
            assert isinstance(raw, psycopg.Connection)
            raw.autocommit = True
            batch = info[_BATCH] = Batch(raw)
        batch.begin(conn)
        try:
            yield batch
            batch.commit()
        except BaseException:
            batch.rollback()
            raise
        finally:
            batch.end()

    def _own_statement(self, conn: Connection, *args: Any) -> None:
        batch = batch_of(conn)
        if batch is not None:
            batch.before_own_statement()


def batch_of(conn: Connection) -> Batch | None:
    """The pipelined transaction open on `conn`, while it takes Prepared statements."""
    batch: Batch | None = conn.connection.info.get(_BATCH)
    return batch if batch is not None and batch.takes_statements else None
