"""The classifier of database errors, on errors the real drivers raise for real bad SQL."""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from execdb.dbfaults import Fault, classify
from tests.conftest import Databases
from tests.pgcluster import PostgresCluster


def raised(action: Callable[[], object]) -> BaseException:
    try:
        action()
    except (DBAPIError, PoolTimeout, psycopg.Error) as exc:
        return exc
    raise AssertionError("no error was raised")


def run(engine: Engine, *statements: str) -> Callable[[], None]:
    def action() -> None:
        with engine.connect() as conn:
            for statement in statements:
                conn.execute(text(statement))

    return action


@pytest.fixture
def engine() -> Iterator[Callable[..., Engine]]:
    """create_engine, whose engines are disposed of after the test."""
    made: list[Engine] = []

    def make(url: object, **kwargs: Any) -> Engine:
        made.append(create_engine(url, **kwargs))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for each in made:
        each.dispose()


@pytest.fixture
def lite(engine: Callable[..., Engine], tmp_path: Path) -> Engine:
    return engine(f"sqlite:///{tmp_path / 'db.sqlite'}")


def test_what_a_request_makes_sqlite_refuse_is_invalid(lite: Engine) -> None:
    for statements, words in [
        (["SELECT 1 WHERE " + " OR ".join(["1 = 2"] * 1100)], "Expression tree is too large"),
        ([f"SELECT 'a' LIKE '{'a' * 50_001}'"], "LIKE or GLOB pattern too complex"),
        (["SELECT zeroblob(2000000000)"], "string or blob too big"),
    ]:
        found = classify(raised(run(lite, *statements)))
        assert found.fault is Fault.INVALID, found
        assert found.reason.startswith(words), "the reason is the driver's, without the SQL"


def test_sqlite_out_of_reach_is_unavailable(
    engine: Callable[..., Engine], lite: Engine, tmp_path: Path
) -> None:
    nowhere = engine(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.sqlite'}")
    small = engine(f"sqlite:///{tmp_path / 'small.sqlite'}")
    full = [
        "PRAGMA max_page_count = 3",
        "CREATE TABLE t (x)",
        *["INSERT INTO t VALUES (zeroblob(4000))"] * 10,
    ]
    holder = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    impatient = engine(f"sqlite:///{tmp_path / 'db.sqlite'}", connect_args={"timeout": 0})
    try:
        errors = {
            "unable to open database file": raised(run(nowhere, "SELECT 1")),
            "database or disk is full": raised(run(small, *full)),
            "database is locked": raised(run(impatient, "CREATE TABLE u (x)")),
        }
    finally:
        holder.close()
    for words, error in errors.items():
        found = classify(error)
        assert (found.fault, found.reason) == (Fault.UNAVAILABLE, words)


def test_sqlite_errors_of_execdb_itself_are_unexpected(lite: Engine) -> None:
    unique = ["CREATE TABLE t (x UNIQUE)", "INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (1)"]
    for statements in (["SELECT * FROM nope"], ["SELEC 1"], unique):
        found = classify(raised(run(lite, *statements)))
        assert found.fault is Fault.UNEXPECTED, found


def test_a_group_that_sqlite_rolled_back_is_unavailable() -> None:
    # execdb.db raises this, without an SQLite code, for the calls of such a group.
    error = sqlite3.OperationalError("the group's transaction was rolled back")
    assert classify(error).fault is Fault.UNAVAILABLE


def test_no_free_connection_in_the_pool_is_unavailable(
    engine: Callable[..., Engine], tmp_path: Path
) -> None:
    small = engine(
        f"sqlite:///{tmp_path / 'db.sqlite'}", pool_size=1, max_overflow=0, pool_timeout=0.01
    )
    with small.connect():
        error = raised(small.connect)
    assert classify(error).fault is Fault.UNAVAILABLE


@pytest.fixture
def pg(engine: Callable[..., Engine], databases: Databases) -> Engine:
    return engine(databases.url("postgres"))


def test_what_a_request_makes_postgresql_refuse_is_invalid(pg: Engine) -> None:
    for statement, state in [
        ("SELECT repeat('[', 100000)::jsonb", "54001"),  # statement too complex
        ("SELECT repeat('x', 1100000000)", "54000"),  # program limit exceeded
        ("SELECT 1/0", "22012"),
        ("SELECT 'x'::int", "22P02"),
        ("SELEC 1", "42601"),
    ]:
        error = raised(run(pg, statement))
        assert isinstance(error, DBAPIError)
        assert isinstance(error.orig, psycopg.Error)
        assert error.orig.sqlstate == state
        found = classify(error)
        assert found.fault is Fault.INVALID, (statement, found)
        assert "\n" not in found.reason
        assert "SELECT" not in found.reason


def test_postgresql_out_of_reach_or_of_resources_is_unavailable(
    engine: Callable[..., Engine], pg: Engine, pg_cluster: PostgresCluster
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    refused = engine(f"postgresql+psycopg://nobody@127.0.0.1:{closed_port}/none")
    no_database = engine(pg.url.set(database="no_such_database"))

    def terminated() -> None:
        with pg.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
            with pg_cluster.connect() as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            conn.execute(text("SELECT 1"))

    resources = run(
        pg,
        "SET temp_file_limit = '64kB'",
        "SET work_mem = '64kB'",
        "SELECT g FROM generate_series(1, 200000) g ORDER BY random()",
    )
    errors = [
        raised(run(refused, "SELECT 1")),
        raised(run(no_database, "SELECT 1")),
        raised(terminated),
        raised(resources),
    ]
    states = [e.orig.sqlstate if isinstance(e, DBAPIError) else None for e in errors]  # type: ignore[union-attr]
    assert states == [None, None, "57P01", "53400"]
    for error in errors:
        assert classify(error).fault is Fault.UNAVAILABLE, error
    # By its SQLSTATE alone, not only because SQLAlchemy dropped the connection.
    assert isinstance(errors[2], DBAPIError)
    assert errors[2].orig is not None
    assert classify(errors[2].orig).fault is Fault.UNAVAILABLE


def test_postgresql_errors_of_execdb_or_its_deployment_are_unexpected(pg: Engine) -> None:
    unique = [
        "CREATE TABLE t (x int UNIQUE)",
        "INSERT INTO t VALUES (1)",
        "INSERT INTO t VALUES (1)",
    ]
    for statements in (["SELECT * FROM nope"], ["SELECT nope FROM pg_class"], unique):
        found = classify(raised(run(pg, *statements)))
        assert found.fault is Fault.UNEXPECTED, (statements, found)
