"""The shipped migrations build exactly the schema the models describe, on both backends, and
can be taken down and up again.

Alembic's comparison does not look at CHECK constraints or at the WHERE clause of a partial
index, so those are checked with the inspector on their own.
"""

from __future__ import annotations

import pprint
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    CheckConstraint,
    Engine,
    MetaData,
    Table,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

import execdb.automation.models
import execdb.jobs.models
import execdb.rules.models  # noqa: F401  (registers the tables on the metadata)
from execdb import migrations
from execdb.auth.models import ApiToken
from execdb.config import Settings
from execdb.db import Base, make_engine, utcnow
from execdb.jobs.models import Job
from tests.conftest import Databases

TABLES = {"api_tokens", "jobs", "job_events", "deliveries"}


@pytest.fixture
def engine(backend: str, databases: Databases) -> Iterator[Engine]:
    """The service's own engine on a fresh, empty database of the backend."""
    engine = make_engine(Settings(database_url=databases.url(backend)).effective_database_url)
    yield engine
    engine.dispose()


# Each backend's own full-text index (FTS5's tables, PostgreSQL's tsvectors), kept by
# triggers and not in the models (migration 0008).
FULLTEXT = "job_fts"


def _fulltext(difference: object) -> bool:
    found = difference[1] if isinstance(difference, tuple) and len(difference) > 1 else None
    table = getattr(found, "table", found)
    return str(getattr(table, "name", "")).startswith(FULLTEXT)


def differences(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        found = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    return [d for d in found if not _fulltext(d)]


def tables(engine: Engine) -> set[str]:
    return {t for t in inspect(engine).get_table_names() if not t.startswith(FULLTEXT)}


downgrade = migrations.downgrade


def test_the_models_describe_some_tables() -> None:
    # Guards the comparison below against an empty metadata, which would compare equal.
    assert set(Base.metadata.tables) >= TABLES


def test_migrations_give_exactly_the_models_schema(engine: Engine) -> None:
    assert tables(engine) == set()
    assert differences(engine), "an empty database differs from the models"
    migrations.upgrade(engine)
    found = differences(engine)
    assert found == [], "migrations and models differ:\n" + pprint.pformat(found)
    assert tables(engine) == set(Base.metadata.tables) | {"alembic_version"}


def test_is_current_only_after_upgrade(engine: Engine) -> None:
    assert not migrations.is_current(engine)
    with engine.connect() as conn:
        assert migrations.current(conn) is None
    migrations.upgrade(engine)
    assert migrations.is_current(engine)
    with engine.connect() as conn:
        assert migrations.current(conn) == migrations.head()
    migrations.upgrade(engine)  # a second upgrade changes nothing
    assert migrations.is_current(engine)


def test_downgrade_to_base_and_up_again(engine: Engine) -> None:
    migrations.upgrade(engine)
    downgrade(engine, "base")
    assert tables(engine) == {"alembic_version"}
    assert not migrations.is_current(engine)
    with engine.connect() as conn:
        assert migrations.current(conn) is None

    migrations.upgrade(engine)
    assert migrations.is_current(engine)
    found = differences(engine)
    assert found == [], "migrations and models differ after a round trip:\n" + pprint.pformat(found)


def test_check_constraints_and_partial_index_are_migrated(engine: Engine) -> None:
    migrations.upgrade(engine)
    inspector = inspect(engine)
    checks = {
        table.name: {c.name for c in table.constraints if isinstance(c, CheckConstraint)}
        for table in Base.metadata.sorted_tables
    }
    assert checks["jobs"] >= {"ck_jobs_job_state", "ck_jobs_job_blame"}
    for table, wanted in checks.items():
        found = {c["name"] for c in inspector.get_check_constraints(table)}
        assert found == wanted, table

    # One active token per name: the unique index on the name skips revoked tokens.
    index = {i["name"]: i for i in inspector.get_indexes("api_tokens")}["uq_api_tokens_active_name"]
    assert index["unique"]
    assert index["column_names"] == ["name"]
    where = str(index["dialect_options"][f"{engine.dialect.name}_where"])
    assert where.strip("()").lower() == "revoked_at is null"


def test_the_partial_index_allows_one_active_token_per_name(engine: Engine) -> None:
    migrations.upgrade(engine)
    table = ApiToken.__table__
    now = utcnow()

    def add(secret_hash: str) -> None:
        with engine.begin() as conn:
            row = {"name": "ci", "scopes": "admin", "secret_hash": secret_hash, "created_at": now}
            conn.execute(insert(table), row)

    add("a" * 64)
    with pytest.raises(IntegrityError):
        add("b" * 64)
    with engine.begin() as conn:
        conn.execute(update(table).values(revoked_at=now))
    add("c" * 64)
    with pytest.raises(IntegrityError):
        add("d" * 64)


def test_0002_gives_existing_jobs_their_queue_and_run_times(engine: Engine) -> None:
    migrations.upgrade(engine, "0001")
    created = datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)
    times = {
        "waiting": (None, None),
        "running": (created + timedelta(seconds=7, microseconds=1), None),
        "ended": (
            created + timedelta(seconds=59, microseconds=900_000),
            created + timedelta(hours=2),
        ),
    }
    jobs = Table("jobs", MetaData(), autoload_with=engine)
    with engine.begin() as conn:
        for item, (started, finished) in times.items():
            row = {
                "uuid": uuid4().hex,  # as SQLite stores it; PostgreSQL reads it too
                "state": "SCHEDULED",
                "task": "rpmlint",
                "item": item,
                "item_type": "koji_build",
                "trigger_data": {},
                "attempt": 1,
                "state_by_system": False,
                "created_at": created,
                "started_at": started,
                "finished_at": finished,
                "updated_at": created,
            }
            conn.execute(insert(jobs), row)
    migrations.upgrade(engine)
    with engine.connect() as conn:
        rows = conn.execute(select(Job.item, Job.queue_us, Job.run_us)).all()
    found = {item: (queue, run) for item, queue, run in rows}
    assert found == {
        "waiting": (None, None),
        "running": (7_000_001, None),
        "ended": (59_900_000, 7200_000_000 - 59_900_000),
    }


def test_0006_lets_the_outbox_hold_messages_and_taking_it_down_drops_them(engine: Engine) -> None:
    migrations.upgrade(engine)
    now = utcnow()
    with engine.begin() as conn:
        job_id = conn.execute(
            insert(Job).returning(Job.id),
            {
                "uuid": uuid4(),
                "state": "SCHEDULED",
                "task": "rpmlint",
                "item": "xchat-2.8.8-21.fc40",
                "item_type": "koji_build",
                "trigger_data": {},
                "attempt": 1,
                "state_by_system": False,
                "created_at": now,
                "updated_at": now,
            },
        ).scalar_one()

    def delivery(kind: str) -> dict[str, object]:
        return {
            "uuid": uuid4().hex,  # as SQLite stores it; PostgreSQL reads it too
            "job_id": job_id,
            "kind": kind,
            "sink": "execdb.job.created.v1",
            "recipients": [],
            "payload": {},
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }

    deliveries = Table("deliveries", MetaData(), autoload_with=engine)
    with engine.begin() as conn:
        conn.execute(insert(deliveries), [delivery("message"), delivery("notification")])
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(deliveries), delivery("postcard"))

    downgrade(engine, "0004")
    with engine.connect() as conn:
        assert conn.execute(select(deliveries.c.kind)).scalars().all() == ["notification"]
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(deliveries), delivery("message"))
    migrations.upgrade(engine)


def test_a_jobs_history_and_deliveries_survive_every_migration(engine: Engine) -> None:
    """Batch mode on SQLite copies `jobs` and drops the old table: with foreign keys on, the
    drop would delete the rows that refer to it (ON DELETE CASCADE), every job's history and
    deliveries."""
    migrations.upgrade(engine, "0003")
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    meta = MetaData()
    jobs, events, deliveries = (
        Table(name, meta, autoload_with=engine) for name in ("jobs", "job_events", "deliveries")
    )
    with engine.begin() as conn:
        job_id = conn.execute(
            insert(jobs).returning(jobs.c.id),
            {
                "uuid": uuid4().hex,
                "state": "SCHEDULED",
                "task": "rpmlint",
                "item": "xchat-2.8.8-21.fc40",
                "item_type": "koji_build",
                "trigger_data": {},
                "attempt": 1,
                "state_by_system": False,
                "created_at": now,
                "updated_at": now,
            },
        ).scalar_one()
        conn.execute(
            insert(events),
            {
                "job_id": job_id,
                "at": now,
                "actor": "trigger",
                "by_system": False,
                "to_state": "SCHEDULED",
                "outcome": "accepted",
                "payload": {},
            },
        )
        conn.execute(
            insert(deliveries),
            {
                "uuid": uuid4().hex,
                "job_id": job_id,
                "kind": "notification",
                "sink": "email",
                "recipients": [],
                "payload": {},
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            },
        )

    def kept() -> tuple[int, int, int]:
        with engine.connect() as conn:
            return tuple(  # type: ignore[return-value]
                conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in (jobs, events, deliveries)
            )

    migrations.upgrade(engine)
    assert kept() == (1, 1, 1)
    downgrade(engine, "0003")
    assert kept() == (1, 1, 1)
    migrations.upgrade(engine)
    assert kept() == (1, 1, 1)
