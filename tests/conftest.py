"""Fixtures: every API test runs against a real HTTP server on SQLite and on PostgreSQL.

The PostgreSQL server is a throwaway cluster started once per run (tests/pgcluster.py), and
so is the RabbitMQ broker of the bus tests (tests/rabbit.py).
Each backend gets one migrated database and one server for the whole run; tests are isolated
by emptying the job tables before each test, which keeps them fast and lets concurrency
tests use real, separate connections.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete

from execdb.automation.models import Delivery
from execdb.config import Settings
from execdb.jobs.models import Job, JobEvent, JobLog
from execdb.rules.models import RuleVersion
from tests.live import LiveServer, StartServer, make_tokens, prepare
from tests.pgcluster import PostgresCluster
from tests.rabbit import RabbitBroker

BACKENDS = ("sqlite", "postgres")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("backend") == "postgres":
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresCluster]:
    cluster = PostgresCluster(tmp_path_factory.mktemp("pg"))
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def rabbit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitBroker]:
    """A throwaway RabbitMQ broker (tests/rabbit.py), one per run."""
    with RabbitBroker(tmp_path_factory.mktemp("rabbit")) as broker:
        yield broker


@pytest.fixture(scope="session")
def fm_file(rabbit: RabbitBroker, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The broker's fedora-messaging file, loaded in this process (whose fedora-messaging
    connection is made once, to the broker the configuration names first)."""
    # Imported here: fedora-messaging's api installs Twisted's reactor, which only the bus
    # tests need in this process.
    from fedora_messaging import config as fm_config

    from tests.consumer import fm_config_file

    path = fm_config_file(tmp_path_factory.mktemp("fm") / "fedora-messaging.toml", rabbit.url)
    fm_config.conf.load_config(str(path))
    return path


class Databases:
    """Makes fresh, empty databases of either kind."""

    def __init__(self, request: pytest.FixtureRequest, tmp: Path) -> None:
        self._request = request
        self._tmp = tmp
        self._count = 0

    def url(self, backend: str) -> str:
        self._count += 1
        name = f"execdb_{os.getpid()}_{self._count}"
        if backend == "sqlite":
            return f"sqlite:///{self._tmp / name}.sqlite"
        cluster: PostgresCluster = self._request.getfixturevalue("pg_cluster")
        return cluster.create_database(name)


@pytest.fixture(scope="session")
def databases(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Databases:
    return Databases(request, tmp_path_factory.mktemp("db"))


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def settings_for(url: str, **overrides: object) -> Settings:
    # No background work unless a test asks for it: a watchdog or a retry acting on the
    # seeded jobs of another test would make that test's answers depend on the clock.
    settings = {"database_url": url, "access_log": False, "worker_in_serve": False}
    return Settings.model_validate(settings | overrides)


@pytest.fixture(scope="session")
def _shared_server(backend: str, databases: Databases) -> Iterator[LiveServer]:
    settings = settings_for(databases.url(backend))
    services = prepare(settings)
    server = LiveServer(settings, services, tokens=make_tokens(services)).start()
    yield server
    server.stop()


@pytest.fixture
def server(_shared_server: LiveServer) -> LiveServer:
    """The backend's server, with no jobs in its database."""
    with _shared_server.services.db.write() as conn:
        conn.execute(delete(Delivery))
        conn.execute(delete(JobEvent))
        conn.execute(delete(JobLog))
        conn.execute(delete(Job))
        conn.execute(delete(RuleVersion))
    _shared_server.services.classifier.refresh()
    return _shared_server


@pytest.fixture
def make_server(backend: str, databases: Databases) -> Iterator[StartServer]:
    """Start a server of this backend with special settings, on a fresh database."""
    started: list[LiveServer] = []

    def start(**overrides: object) -> LiveServer:
        settings = settings_for(databases.url(backend), **overrides)
        services = prepare(settings)
        server = LiveServer(settings, services, tokens=make_tokens(services)).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
