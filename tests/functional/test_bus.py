"""Job changes on the Fedora message bus, through a real RabbitMQ (tests/rabbit.py), received
by a consumer written with fedora-messaging's own API (tests/consumer.py).

Every message a change calls for is written to the outbox with the change and published by a
worker at least once, under the delivery's uuid as its message id: broker outages and killed
workers delay messages but lose none, and a message sent twice has the same id.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from execdb_messages import JobCreatedV1, JobReclassifiedV1, JobStateChangeV1

from execdb.automation.models import Kind, Status
from execdb.config import SettingsError, load_settings
from execdb.db import utcnow
from execdb.jobs import store
from execdb.jobs.schemas import JobCreate, JobReport
from execdb.services import Services
from execdb.vocabulary import Actor, Blame, State
from execdb.worker import Tick, Worker
from tests.conftest import Databases, settings_for
from tests.consumer import PREFIX, BusConsumer
from tests.functional.test_workers import EXECDB, TRIGGER, WorkerProcess, configure, wait_until
from tests.functional.test_workers import workers as workers  # the fixture
from tests.live import prepare
from tests.rabbit import RabbitBroker

TOPICS = [f"{PREFIX}.execdb.#"]


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
        # Published one after the other, in the order written: they arrived in that order.
        assert [m.body["seq"] for m in mine] == sorted(m.body["seq"] for m in mine)
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


def same_ids_same_bodies(received: list[Any], written: list[dict[str, Any]]) -> Counter[str]:
    """Every message written arrived, nothing else did, and copies of one id are identical;
    how many times each id arrived."""
    arrived = Counter(m.id for m in received)
    assert set(arrived) == {str(d["uuid"]) for d in written}
    for delivery in written:
        bodies = [m.body for m in received if m.id == str(delivery["uuid"])]
        assert all(body == delivery["payload"] for body in bodies)
    return arrived


OUTAGE = {
    "delivery": {
        "timeout": "2s",
        "lease": "5s",
        "backoff": {"initial_delay": "0.2s", "max_delay": "1s"},
    }
}


def test_a_broker_stopped_mid_run_and_started_again_loses_nothing(
    databases: Databases, fm_file: Path, rabbit: RabbitBroker, consumer: BusConsumer
) -> None:
    services = services_for(databases.url("sqlite"), fm_file, **OUTAGE)
    before = life(services, "before-1.0-1.fc40")
    assert tick(services).delivered == 3
    consumer.wait_for(3)

    rabbit.stop_node()
    try:
        during = life(services, "during-1.0-1.fc40")
        started = time.monotonic()
        assert tick(services) == Tick(failed=3)
        # One publish waited out the timeout; the others did not wait again.
        assert time.monotonic() - started < 2 * 2 + 1
        waiting = messages_of(services, during)
        assert [(d["status"], d["attempts"]) for d in waiting] == [(Status.PENDING, 1)] * 3
        assert all("PublishTimeout" in d["last_error"] for d in waiting[:1])
        assert all(d["last_error"] for d in waiting)
    finally:
        rabbit.start_node()

    deadline = time.monotonic() + 30
    while any(d["status"] != Status.DELIVERED for d in messages_of(services, during)):
        assert time.monotonic() < deadline, messages_of(services, during)
        tick(services, utcnow() + timedelta(seconds=2))
        time.sleep(0.2)
    written = messages_of(services, before) + messages_of(services, during)
    services.db.close()
    received = consumer.wait_for(6, seconds=30)
    same_ids_same_bodies(received, written)
    assert {d["last_error"] for d in written} == {None}


KILL = """\
[bus]
config = "{fm}"

[delivery]
lease = "4s"
timeout = "3s"
"""


def test_a_worker_killed_mid_publish_loses_nothing_and_repeats_with_the_same_id(
    databases: Databases,
    fm_file: Path,
    rabbit: RabbitBroker,
    consumer: BusConsumer,
    tmp_path: Path,
    workers: Callable[[str, Path, str], WorkerProcess],
) -> None:
    # On SQLite: leases on PostgreSQL are the next test's, and test_outbox_kill's.
    url = databases.url("sqlite")
    config, services = configure(tmp_path, url, KILL.format(fm=fm_file))
    job = life(services)
    rabbit.block_publishers()  # the broker takes no message: the worker waits on its publish
    try:
        first = workers(url, config, "worker-killed")
        wait_until(
            lambda: all(d["leased_by"] for d in messages_of(services, job)),
            seconds=60,
            what="the first worker did not take the messages",
        )
        time.sleep(0.5)  # well into the first publish
        first.process.send_signal(signal.SIGKILL)
        assert first.process.wait(timeout=10) == -signal.SIGKILL
        taken = messages_of(services, job)
        assert {(d["status"], d["attempts"]) for d in taken} == {(Status.PENDING, 1)}
        assert {d["leased_by"].split(":")[-2] for d in taken} == {str(first.process.pid)}
        lease_ends = max(d["leased_until"] for d in taken)
    finally:
        rabbit.unblock_publishers()

    second = workers(url, config, "worker-after")
    wait_until(
        lambda: all(d["status"] == Status.DELIVERED for d in messages_of(services, job)),
        seconds=60,
        what="the messages were not published after the first worker died",
    )
    assert second.stop() == 0, second.output
    written = messages_of(services, job)
    services.db.close()
    received = consumer.wait_for(3)
    arrived = same_ids_same_bodies(received, written)
    assert sum(arrived.values()) <= 4  # the one cut short may have reached the broker too
    for delivery in written:
        assert delivery["delivered_at"] >= lease_ends  # not while the dead worker's lease held
        assert delivery["leased_by"].split(":")[-2] == str(second.process.pid)
        assert delivery["attempts"] == 2


TWO = """\
[bus]
config = "{fm}"
"""


def test_two_workers_on_one_postgresql_publish_each_message_once(
    databases: Databases,
    fm_file: Path,
    consumer: BusConsumer,
    tmp_path: Path,
    workers: Callable[[str, Path, str], WorkerProcess],
) -> None:
    url = databases.url("postgres")
    config, services = configure(tmp_path, url, TWO.format(fm=fm_file))
    both = [workers(url, config, f"worker-{n}") for n in (1, 2)]
    for worker in both:
        worker.wait_until_started(seconds=60)  # a busy machine: fedora-messaging's imports
    jobs = [life(services, f"pkg{n}-1.0-1.fc40") for n in range(20)]
    received = consumer.wait_for(60, seconds=60)
    for worker in both:
        assert worker.stop() == 0, worker.output
    written = [d for job in jobs for d in messages_of(services, job)]
    services.db.close()
    assert len(written) == 60
    assert set(same_ids_same_bodies(received, written).values()) == {1}
    assert {d["status"] for d in written} == {Status.DELIVERED}


def test_a_refused_message_is_given_up_on_visibly_and_retried_by_hand(
    databases: Databases, fm_file: Path, rabbit: RabbitBroker, consumer: BusConsumer, tmp_path: Path
) -> None:
    url = databases.url("sqlite")
    text = f'[bus]\nconfig = "{fm_file}"\n\n[delivery]\nmax_attempts = 1\n'
    config, services = configure(tmp_path, url, text)
    # The broker refuses every topic of amq.topic to ExecDB's user.
    rabbit.ctl("set_topic_permissions", "guest", "amq.topic", "^$", "^$")
    try:
        job = life(services)
        assert tick(services) == Tick(failed=3)
    finally:
        rabbit.ctl("clear_topic_permissions", "guest")
    refused = messages_of(services, job)
    assert {d["status"] for d in refused} == {Status.FAILED}
    assert all("PublishForbidden" in d["last_error"] for d in refused), refused[0]["last_error"]
    assert tick(services) == Tick()  # given up on: waits for a person

    env = {k: v for k, v in os.environ.items() if not k.startswith("EXECDB_")}
    env |= {"EXECDB_DATABASE_URL": url, "EXECDB_CONFIG": str(config), "HOME": str(tmp_path)}
    done = subprocess.run(
        [str(EXECDB), "deliveries", "retry", str(job)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "3 failed deliveries will be tried again" in done.stdout
    assert tick(services).delivered == 3
    written = messages_of(services, job)
    services.db.close()
    same_ids_same_bodies(consumer.wait_for(3), written)


def test_without_the_bus_nothing_is_written_for_it(backend: str, databases: Databases) -> None:
    services = prepare(settings_for(databases.url(backend)))
    job = life(services)
    kinds = [d["kind"] for d in services.outbox.for_job(job)]
    services.db.close()
    assert Kind.MESSAGE not in kinds


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('amqp_url = "amqp://localhost"\npublish_exhange = "amq.topic"\n', "publish_exhange"),
        ("amqp_url = \n", "Failed to parse"),
    ],
)
def test_a_bus_file_fedora_messaging_would_refuse_stops_start_up(
    tmp_path: Path, text: str, problem: str
) -> None:
    fm = tmp_path / "fedora-messaging.toml"
    fm.write_text(text)
    settings = tmp_path / "execdb.toml"
    settings.write_text(f'[bus]\nconfig = "{fm}"\n')
    with pytest.raises(SettingsError, match=rf"^{settings}.*: bus: .*{fm}: .*{problem}"):
        load_settings(settings)
    settings.write_text(f'[bus]\nconfig = "{tmp_path / "missing.toml"}"\n')
    with pytest.raises(SettingsError, match=r"bus\.config: Path does not point to a file"):
        load_settings(settings)


def test_a_reclassification_is_published_after_the_jobs_other_messages(
    databases: Databases, fm_file: Path, consumer: BusConsumer
) -> None:
    services = services_for(databases.url("sqlite"), fm_file)
    job = life(services)
    assert services.jobs.reactions is not None
    person = Actor("qa-admin")
    # What a reclassification does, in the transaction that changes the job.
    with services.db.write() as conn:
        before = store.lock(conn, job)
        after = {**before, "blame": Blame.TASKOTRON, "cause": "minion.creation_failed"}
        after["classified_by"] = "person"
        store.update_job(conn, before["id"], {k: after[k] for k in ("blame", "cause")})
        services.jobs.reactions.reclassified(conn, before, after, person, utcnow())
    assert tick(services).delivered == 4
    services.db.close()
    [message] = [m for m in consumer.wait_for(4) if isinstance(m, JobReclassifiedV1)]
    message.validate()
    assert message.body["seq"] == 4
    assert message.body["old"] == {"blame": "THIRD_PARTY", "cause": "koji.timeout"}
    assert message.body["new"] == {"blame": "TASKOTRON", "cause": "minion.creation_failed"}
    assert (message.body["classified_by"], message.agent_name) == ("person", "qa-admin")
    assert message.topic == f"{PREFIX}.execdb.job.reclassified.v1"
