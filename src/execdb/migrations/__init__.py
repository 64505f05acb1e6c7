"""Alembic migrations shipped inside the package, run by `execdb db upgrade` (or by
`execdb serve` itself on the embedded SQLite database)."""

from __future__ import annotations

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


def upgrade(engine: Engine, revision: str = "head") -> None:
    config = _config()
    with engine.connect() as conn:
        config.attributes["connection"] = conn.execution_options(execdb_write=True)
        command.upgrade(config, revision)


def is_current(engine: Engine) -> bool:
    with engine.connect() as conn:
        return current(conn) == head()
