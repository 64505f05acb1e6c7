"""Alembic migrations shipped inside the package, run by `execdb db upgrade` (or by
`execdb serve` itself on the embedded SQLite database)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

HERE = Path(__file__).parent


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    return config


def head() -> str:
    heads = ScriptDirectory.from_config(_config()).get_heads()
    assert len(heads) == 1, f"migrations have several heads: {heads}"
    return heads[0]


def current(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


class MigrationError(RuntimeError):
    """A migration left rows that refer to rows it removed."""


@contextmanager
def _migrating(engine: Engine) -> Iterator[Config]:
    """Alembic's configuration with a connection to migrate on.

    On SQLite, with foreign keys off: batch mode changes a table by copying it and dropping
    the old one, and with them on, that drop deletes every row referring to the table's rows
    (ON DELETE CASCADE): changing `jobs` would take every job's history, log and deliveries
    with it. SQLite takes the switch only outside a transaction; the keys are checked once
    the migration is done.
    """
    config = _config()
    with engine.connect() as conn:
        driver = conn.connection.driver_connection
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            driver.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        try:
            config.attributes["connection"] = conn.execution_options(execdb_write=True)
            yield config
            if sqlite:
                broken = driver.execute("PRAGMA foreign_key_check").fetchall()  # type: ignore[union-attr]
                if broken:
                    raise MigrationError(f"rows refer to rows that are gone: {broken[:5]}")
        finally:
            if sqlite:
                driver.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]


def upgrade(engine: Engine, revision: str = "head") -> None:
    with _migrating(engine) as config:
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Take the database down to `revision` (what the later revisions added is dropped)."""
    with _migrating(engine) as config:
        command.downgrade(config, revision)


def is_current(engine: Engine) -> bool:
    with engine.connect() as conn:
        return current(conn) == head()
