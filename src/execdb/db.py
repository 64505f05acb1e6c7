"""Storage plumbing: the declarative base, column types, and the `Database` handle.

The service layer is synchronous SQLAlchemy Core on ORM-mapped tables, one short transaction
per call; the server reaches it through `Database.run`, which runs the call on the event
loop's thread on both backends:

- On SQLite the call runs right on the event loop. A transaction takes a fraction of a
  millisecond, SQLite admits one writer at a time anyway, and a database thread would cost
  more than it saves (a wake-up, and a fight over the GIL each time: docs/benchmarks.md).
- On PostgreSQL the call runs in a greenlet of its own, on a connection of its own, and its
  waits for the server are the loop's (execdb.loopcalls): while a statement is in flight the
  loop goes on serving, and a slow statement holds only its own call. Their transactions
  send what they need not wait for in pipeline mode (execdb.pipelined).

The API's writes go through `Database.run_write`. On SQLite the writes that arrive in one
turn of the event loop share one transaction (group commit): each runs in a savepoint of its
own, so a call that fails undoes only its own work, and none of them is answered before the
commit that keeps it: beginning and committing cost more than a short write's statements,
and the database's share of a report's CPU time about halved (docs/benchmarks.md). If the
commit fails, or SQLite rolls the whole transaction back (a full disk, an I/O error), every
call of the group fails with it, and nothing of any of them is kept. On PostgreSQL,
`run_write` is `run`: a group there would hold row locks of unrelated jobs together.

Reads that can take long (statistics, the dashboard's and the stats page's summaries: tens
to hundreds of milliseconds at a million jobs) go through `Database.run_read`, which runs
them on reader threads, each keeping a connection of its own, so that the Python part of
their work does not hold the loop either. On a SQLite file (one to four threads: one per
core but the loop's) the connections can only read: WAL lets them read a snapshot while the
loop goes on writing, and sqlite3 releases the GIL while SQLite steps through a statement, so
the reports are served meanwhile. They run at a lower priority (nice 10), so that on a busy
machine the reports come first and the statistics take longer.
PostgreSQL has POSTGRES_READERS of them, at the same priority. In in-memory SQLite,
`run_read` is `run`.

Write transactions on SQLite start with BEGIN IMMEDIATE, so that two processes sharing the
file wait for the lock up front instead of failing when a reader tries to upgrade.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import fcntl
import functools
import os
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, ParamSpec, TypeVar

from sqlalchemy import JSON, DateTime, Dialect, Engine, Enum, MetaData, create_engine, event, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, RootTransaction
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

from execdb.loopcalls import LoopCalls, call_connection, use_loop_connections
from execdb.pipelined import Pipelines
from execdb.prepared import Prepared

P = ParamSpec("P")
T = TypeVar("T")


def _reader_count() -> int:
    """One core for the event loop, the others (up to four) for long reads."""
    affinity = getattr(os, "sched_getaffinity", None)
    cores = len(affinity(0)) if affinity else os.cpu_count() or 1
    return min(4, max(1, cores - 1))


# Threads for `run_read` on a SQLite file. On two cores a second reader only took the CPU
# from the loop and from the first: bench/lifecycle.py --readers 2 (docs/benchmarks.md).
SQLITE_READERS = _reader_count()
# The readers' scheduling priority (Linux: nice, per thread); see the module docstring.
READER_NICENESS = 10
# Threads for `run_read` on PostgreSQL, where a long read's work is mostly the server's.
POSTGRES_READERS = 4

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite has no time zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; ExecDB stores aware UTC datetimes only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: JSONType,
        list[str]: JSONType,
    }


def string_enum(enum: type[StrEnum], name: str) -> Enum:
    """An enum column stored as plain strings with a CHECK constraint: portable, readable in
    SQL, and a new value is a small migration rather than an ALTER TYPE."""
    return Enum(
        enum,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


def utcnow() -> datetime:
    return datetime.now(UTC)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, record: ConnectionPoolEntry) -> None:
        # Take transaction control from the driver so that BEGIN is ours to choose.
        dbapi_conn.isolation_level = None
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",  # durable across process crashes; WAL makes it safe
            "foreign_keys=ON",
            "busy_timeout=10000",
            "cache_size=-65536",
        ):
            dbapi_conn.execute(f"PRAGMA {pragma}")

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("execdb_write", False)
        # Straight to the driver: this runs once per transaction, on the hot path.
        conn.connection.driver_connection.execute(  # type: ignore[union-attr]
            "BEGIN IMMEDIATE" if write else "BEGIN"
        )


def make_engine(url: str, *, pool_size: int = 8) -> Engine:
    """An engine for a SQLAlchemy URL; on PostgreSQL, `pool_size` connections for the calls
    on the event loop and POSTGRES_READERS for the long reads, plus a few to borrow."""
    if url.startswith("sqlite"):
        # The kept connections (the loop's and the readers') stay checked out of the pool.
        engine = create_engine(
            url, connect_args={"check_same_thread": False}, pool_size=2 + SQLITE_READERS
        )
        _configure_sqlite(engine)
        return engine
    engine = create_engine(
        url,
        pool_size=pool_size + POSTGRES_READERS,
        max_overflow=4,
        pool_pre_ping=True,
        pool_recycle=1800,
    )
    use_loop_connections(engine)  # psycopg 3, the driver ExecDB ships (execdb.config)
    return engine


class Database:
    """An engine plus the threads and calls that talk to it; one per process.

    The event loop's thread (SQLite), the calls (PostgreSQL: up to `connections`) and the
    reader threads keep their connections for good: a check-out per request costs more than
    its transaction. Others (the command line, tests) borrow one per transaction.
    """

    def __init__(self, engine: Engine, *, connections: int = 8, group_commit: bool = True) -> None:
        self.engine = engine
        self.group_commit = group_commit
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._local = threading.local()
        database_file = sqlite_path(self.engine.url.render_as_string()) if self.is_sqlite else None
        self._lock_path = f"{database_file}-writer.lock" if database_file else None
        self._kept: list[Connection] = []
        self._lock_fds: list[int] = []
        self._kept_lock = threading.Lock()
        self._calls = None if self.is_sqlite else LoopCalls(engine, connections)
        self._pipelines = None if self.is_sqlite or not Prepared.enabled else Pipelines(engine)
        readers = POSTGRES_READERS if self._calls else SQLITE_READERS if database_file else 0
        self._readers: ThreadPoolExecutor | None = None  # in-memory SQLite: one connection
        if readers:
            self._readers = ThreadPoolExecutor(
                readers, thread_name_prefix="execdb-reader", initializer=self._start_reader
            )

    def _start_reader(self) -> None:
        if sys.platform == "linux":  # where a thread's priority is its own
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), READER_NICENESS)
        self._keep_connection(read_only=self.is_sqlite)

    def _keep_connection(self, read_only: bool = False) -> None:
        conn = self.engine.connect()
        if read_only:
            # A write slipped into a long read would hold the writers' lock all along.
            driver = conn.connection.driver_connection
            driver.execute("PRAGMA query_only = ON")  # type: ignore[union-attr]
        self._local.conn = conn
        with self._kept_lock:
            self._kept.append(conn)

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Connection]:
        group: _Group | None = getattr(self._local, "group", None)
        if group is not None:
            with group.transaction(write=write) as conn:
                yield conn
            return
        with self._writer_turn() if write else nullcontext():
            kept: Connection | None = call_connection() or getattr(self._local, "conn", None)
            if kept is not None:
                kept.execution_options(execdb_write=write)
                pipelined = self._pipelines.transaction(kept) if self._pipelines else nullcontext()
                with kept.begin(), pipelined:
                    yield kept
                return
            with self.engine.connect() as conn:
                conn.execution_options(execdb_write=write)
                with conn.begin():
                    yield conn

    @contextmanager
    def _writer_turn(self) -> Iterator[None]:
        """On a SQLite file, wait for this writer's turn on an flock beside the database.

        SQLite's own wait for its write lock sleeps and polls (1 ms, 2 ms, 5 ms ... apart);
        the kernel hands an flock over the moment it is released, so server processes sharing
        one file take turns without idling. Each thread has its own descriptor: flock excludes
        open files, not processes.
        """
        if self._lock_path is None:
            yield
            return
        fd: int | None = getattr(self._local, "lock_fd", None)
        if fd is None:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            self._local.lock_fd = fd
            with self._kept_lock:
                self._lock_fds.append(fd)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def write(self) -> AbstractContextManager[Connection]:
        """A connection in a write transaction, committed when the block ends without error."""
        return self._transaction(write=True)

    def read(self) -> AbstractContextManager[Connection]:
        """A connection in a read-only transaction."""
        return self._transaction(write=False)

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a synchronous service call from the event loop (see the module docstring)."""
        if self._calls is not None:
            return await self._calls.run(fn, *args, **kwargs)
        self._loop_connection()
        return fn(*args, **kwargs)

    async def run_read(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """`run` for a read that can take long: on a reader thread, so that the event loop
        goes on serving writes meanwhile (see the module docstring)."""
        if self._readers is None:
            return await self.run(fn, *args, **kwargs)
        loop = asyncio.get_running_loop()
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        return await loop.run_in_executor(self._readers, call)

    async def run_write(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """`run` for a call that writes: on SQLite, committed together with the other writes
        of this turn of the event loop (see the module docstring)."""
        if self._calls is not None or not self.group_commit:
            return await self.run(fn, *args, **kwargs)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        # The writes waiting for this loop's next group commit. A loop runs in one thread and
        # commits on that thread's connection; a queue left by a loop that stopped before its
        # commit came round is not this loop's.
        queue: _Queue | None = getattr(self._local, "queue", None)
        if queue is None or queue.loop is not loop:
            queue = self._local.queue = _Queue(loop)
            loop.call_soon(self._commit_queued, queue)
        # Each call runs in its own request's context (logging, tracing), not the first's.
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        queue.calls.append((call, future))
        return await future

    def _loop_connection(self) -> Connection:
        if getattr(self._local, "conn", None) is None:
            self._keep_connection()
        return self._local.conn  # type: ignore[no-any-return]

    def _commit_queued(self, queue: _Queue) -> None:
        if getattr(self._local, "queue", None) is queue:
            self._local.queue = None
        group: _Group | None = None
        outcomes: list[tuple[asyncio.Future[Any], Any, Exception | None]] = []
        try:
            group = self._local.group = _Group(self, self._loop_connection())
            for call, future in queue.calls:
                if future.cancelled():  # its request is gone: do nothing in its name
                    continue
                try:
                    outcomes.append((future, call(), None))
                except Exception as exc:  # the caller's to handle
                    if group.lost:
                        raise  # and every other call's: the whole transaction is gone
                    outcomes.append((future, None, exc))
            group.commit()
        except BaseException as exc:
            if group is not None:
                group.rollback()
            for _, future in queue.calls:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        finally:
            self._local.group = None
        for future, result, error in outcomes:
            if future.cancelled():
                continue
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)

    def close(self) -> None:
        if self._readers is not None:
            self._readers.shutdown(wait=True)
        if self._calls is not None:
            self._calls.close()
        with self._kept_lock:
            for conn in self._kept:
                conn.close()
            self._kept.clear()
            for fd in self._lock_fds:
                os.close(fd)
            self._lock_fds.clear()
        self.engine.dispose()


@dataclass(slots=True)
class _Queue:
    """The write calls waiting for one event loop's next group commit."""

    loop: asyncio.AbstractEventLoop
    calls: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = field(default_factory=list)


class _Group:
    """The transaction that the writes queued in one turn of the event loop share (SQLite).

    It begins (writer's turn, BEGIN IMMEDIATE) with the first write. Each write runs in a
    savepoint; a read made inside the group sees the writes made before it. Some failures
    (a full disk, an I/O error) make SQLite roll back the whole transaction at once: the
    group is then `lost`, and no call of it may be answered as if its write were kept.
    """

    SAVEPOINT = Prepared(text("SAVEPOINT execdb_call"))
    ROLLBACK_TO = Prepared(text("ROLLBACK TO execdb_call"))
    RELEASE = Prepared(text("RELEASE execdb_call"))

    def __init__(self, db: Database, conn: Connection) -> None:
        self._db = db
        self._conn = conn
        self._transaction: RootTransaction | None = None
        self._turn = ExitStack()
        self.lost = False

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[Connection]:
        conn = self._conn
        if self.lost:
            raise DBAPIError.instance(  # a call that went on after a failure it caught
                "SAVEPOINT",
                None,
                sqlite3.OperationalError("the group's transaction was rolled back"),
                sqlite3.Error,
                dialect=conn.dialect,
            )
        if not write:
            if self._transaction is not None:
                yield conn
                return
            conn.execution_options(execdb_write=False)
            with conn.begin():
                yield conn
            return
        if self._transaction is None:
            self._begin()
        self._execute(self.SAVEPOINT)
        try:
            yield conn
        except BaseException:
            if self._still_open():
                self._execute(self.ROLLBACK_TO)
                self._execute(self.RELEASE)
            raise
        self._execute(self.RELEASE)

    def _still_open(self) -> bool:
        try:
            raw = self._conn.connection.driver_connection
            open_ = isinstance(raw, sqlite3.Connection) and raw.in_transaction
        except Exception:  # a connection SQLAlchemy dropped (invalidated) after an error
            open_ = False
        self.lost = self.lost or not open_
        return not self.lost

    def _execute(self, statement: Prepared) -> None:
        try:
            statement.execute(self._conn, {})  # SQLAlchemy's exceptions: an outage is a 503
        except DBAPIError:
            self._still_open()
            raise

    def _begin(self) -> None:
        with ExitStack() as turn:
            turn.enter_context(self._db._writer_turn())
            self._conn.execution_options(execdb_write=True)
            self._transaction = self._conn.begin()
            self._turn = turn.pop_all()

    def commit(self) -> None:
        if self._transaction is None:
            return
        try:
            self._transaction.commit()
        except BaseException:
            self.rollback()
            raise
        self._end()

    def rollback(self) -> None:
        if self._transaction is None:
            return
        try:
            with contextlib.suppress(Exception):
                self._transaction.rollback()
            # A COMMIT that SQLite refused (a deferred constraint) leaves its transaction
            # open, and SQLAlchemy, which saw its commit fail, no longer knows of it.
            raw = self._conn.connection.driver_connection
            if isinstance(raw, sqlite3.Connection) and raw.in_transaction:
                raw.execute("ROLLBACK")
        finally:
            self._end()

    def _end(self) -> None:
        self._transaction = None
        self._turn.close()  # the next writer's turn, in this process or another


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL, or None for other databases and in-memory SQLite."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == prefix or ":memory:" in url:
        return None
    return Path(url[len(prefix) :].split("?", 1)[0])
