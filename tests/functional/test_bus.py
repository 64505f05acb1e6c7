"""Job changes on the Fedora message bus, through a real RabbitMQ (tests/rabbit.py), received
by a consumer written with fedora-messaging's own API (tests/consumer.py).

Every message a change calls for is written to the outbox with the change and published by a
worker at least once, under the delivery's uuid as its message id: broker outages and killed
workers delay messages but lose none, and a message sent twice has the same id.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fedora_messaging import config as fm_config
from fedora_messaging.message import Message

from execdb.automation.models import Kind, Status
from execdb.db import utcnow
from execdb.jobs.schemas import JobCreate, JobReport
from execdb.services import Services
from execdb.vocabulary import Blame, State
from execdb.worker import Tick, Worker
from execdb_messages import JobCreatedV1, JobStateChangeV1
from tests.conftest import Databases, settings_for
from tests.consumer import PREFIX, BusConsumer, fm_config_file
from tests.functional.test_workers import TRIGGER, WorkerProcess, configure, wait_until
from tests.functional.test_workers import workers as workers  # the fixture
from tests.live import prepare
from tests.rabbit import RabbitBroker

TOPICS = [f"{PREFIX}.execdb.#"]


@pytest.fixture(scope="module")
def rabbit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitBroker]:
    with RabbitBroker(tmp_path_factory.mktemp("rabbit")) as broker:
        yield broker


@pytest.fixture(scope="module")
def fm_file(rabbit: RabbitBroker, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fedora-messaging file of the broker, loaded in this process for the consumer."""
    path = fm_config_file(tmp_path_factory.mktemp("fm") / "fedora-messaging.toml", rabbit.url)
    fm_config.conf.load_config(str(path))
    return path


@pytest.fixture
def consumer(fm_file: Path) -> Iterator[BusConsumer]:
    consumer = BusConsumer(TOPICS).start()
    yield consumer
    consumer.stop()


def services_for(url: str, fm_file: Path, **overrides: Any) -> Services:
    return prepare(settings_for(url, bus={"config": str(fm_file)}, **overrides))


def tick(services: Services, now: datetime | None = None) -> Tick:
    async def once() -> Tick:
        async with Worker(services, name="test") as worker:
            return await worker.tick(now)

    return asyncio.run(once())


def messages_of(services: Services, job_uuid: Any) -> list[dict[str, Any]]:
    return [d for d in services.outbox.for_job(job_uuid) if d["kind"] == Kind.MESSAGE]


def life(services: Services, item: str = "xchat-2.8.8-21.fc40") -> Any:
    """A job created, started and crashed THIRD_PARTY (retried by the settings): its uuid."""
    jobs, now = services.jobs, utcnow()
    new = JobCreate(task="rpmlint", item=item, item_type="koji_build", arch="x86_64")
    job, _ = jobs.create(new, TRIGGER, now)
    jobs.report(job["uuid"], JobReport(state=State.RUNNING), TRIGGER, now)
    crash = JobReport(state=State.CRASHED, blame=Blame.THIRD_PARTY, cause="koji.timeout")
    jobs.report(job["uuid"], crash, TRIGGER, now)
    return job["uuid"]


RETRY = {
    "retry": {
        "rules": [
            {
                "name": "koji",
                "blame": ["THIRD_PARTY"],
                "action": "retry",
                "initial_delay": "1s",
                "max_attempts": 2,
            }
        ]
    }
}


def test_every_change_of_a_jobs_life_arrives_once_and_validates(
    backend: str, databases: Databases, fm_file: Path, consumer: BusConsumer
) -> None:
    services = services_for(databases.url(backend), fm_file, **RETRY)
    first = life(services)
    assert tick(services).delivered == 3  # created, RUNNING, CRASHED
    # The retry by policy: a new attempt, created by ExecDB; it runs and passes.
    tick(services, utcnow() + timedelta(seconds=2))
    [again] = [j for j in services.jobs.attempts(services.jobs.get(first)) if j["attempt"] == 2]
    for state in (State.RUNNING, State.FINISHED):
        services.jobs.report(again["uuid"], JobReport(state=state), TRIGGER, utcnow())
    tick(services)

    received = consumer.wait_for(6)
    written = messages_of(services, first) + messages_of(services, again["uuid"])
    services.db.close()
    assert [d["status"] for d in written] == [Status.DELIVERED] * 6
    assert Counter(m.id for m in received) == Counter(str(d["uuid"]) for d in written)
    for message in received:
        message.validate()  # against its body_schema, as fedora-messaging did on receipt
        assert message.topic.startswith(PREFIX + ".execdb.job.")
        assert message.url == message.body["job"]["page"]
        assert message.packages == ["xchat"]
        assert message.app_name == "ExecDB"

    def story(job_uuid: Any) -> list[tuple[str, Any, Any, int]]:
        mine = [m for m in received if m.body["job"]["uuid"] == str(job_uuid)]
        mine.sort(key=lambda m: m.body["seq"])
        return [(m.topic, m.body.get("from"), m.body.get("to"), m.body["seq"]) for m in mine]

    created, change = f"{PREFIX}.{JobCreatedV1.topic}", f"{PREFIX}.{JobStateChangeV1.topic}"
    assert story(first) == [
        (created, None, None, 1),
        (change, "SCHEDULED", "RUNNING", 2),
        (change, "RUNNING", "CRASHED", 3),
    ]
    assert story(again["uuid"]) == [
        (created, None, None, 1),
        (change, "SCHEDULED", "RUNNING", 2),
        (change, "RUNNING", "FINISHED", 3),
    ]
    crash = next(m for m in received if m.body.get("to") == "CRASHED")
    assert isinstance(crash, JobStateChangeV1)  # found by its entry point
    assert (crash.body["blame"], crash.body["cause"]) == ("THIRD_PARTY", "koji.timeout")
    assert crash.body["retry_at"] is not None
    assert crash.agent_name == TRIGGER.name
    assert crash.summary == (
        "rpmlint on xchat-2.8.8-21.fc40 (x86_64) went from RUNNING to CRASHED "
        "(THIRD_PARTY: koji.timeout)"
    )
    retried = next(m for m in received if m.body["job"]["attempt"] == 2)
    assert isinstance(retried, JobCreatedV1)
    assert retried.agent_name is None  # ExecDB itself made the new attempt
    assert retried.body["job"]["rescheduled_from"] == str(first)
