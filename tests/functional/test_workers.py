"""Two `execdb worker` processes sharing one database under load.

The workers are the installed console script, as an administrator runs them, configured by a
TOML file. While both poll, the test crashes 200 jobs THIRD_PARTY `koji.timeout` (due for a
retry at once, and each announced to a webhook); afterwards every job must have been retried
exactly once and every dispatch and notification POSTed exactly once, whichever worker took
it: the row claims (SKIP LOCKED on PostgreSQL, one writer on SQLite) are all that keeps them
apart.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import re
import signal
import subprocess
import sys
import threading
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from execdb.automation.models import Delivery, Status
from execdb.db import utcnow
from execdb.jobs.models import Job
from execdb.jobs.schemas import JobCreate, JobReport
from execdb.services import Services
from execdb.vocabulary import Actor, Blame, State
from execdb.worker import Tick, Worker
from tests.conftest import Databases, settings_for
from tests.live import prepare
from tests.receivers import WebhookReceiver

EXECDB = Path(sys.executable).parent / "execdb"
JOBS = 200
SECRET = "dispatch-key"
TRIGGER = Actor("test-trigger")

CONFIG = """\
[[retry.rules]]
name = "koji glitches"
blame = ["THIRD_PARTY"]
action = "retry"
initial_delay = "0.01s"
max_attempts = 3

[dispatch]
kind = "webhook"
url = "{dispatch}"
secret = "{secret}"

[notify]
admins = ["webhook:ops"]

[[notify.routes]]
blame = ["THIRD_PARTY"]
to = ["admins"]

[notify.webhooks.ops]
url = "{notify}"

# A send that fails (a receiver's full listen queue resets connections) is tried again soon.
[delivery.backoff]
initial_delay = "0.2s"
max_delay = "1s"
"""

BATCH = 20  # what a worker leases at a time
LEASE_CONFIG = """\
[notify]
admins = ["webhook:ops"]

[[notify.routes]]
blame = ["THIRD_PARTY"]
to = ["admins"]

[notify.webhooks.ops]
url = "{url}"

[delivery]
timeout = "0.5s"
lease = "0.8s"
"""


@dataclass
class WorkerProcess:
    """An `execdb worker` process; its output goes to a file, never to a pipe that fills."""

    process: subprocess.Popen[bytes]
    log: Path

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until_started(self, seconds: float = 20) -> None:
        deadline = time.monotonic() + seconds
        while not re.search(r"worker \S+ started", self.output):
            if self.process.poll() is not None:
                raise RuntimeError(f"the worker exited:\n{self.output}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the worker did not start:\n{self.output}")
            time.sleep(0.05)

    def stop(self) -> int:
        """SIGTERM, as a service manager stops it; its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


def start_worker(tmp: Path, database_url: str, config: Path, name: str) -> WorkerProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXECDB_")}
    env |= {
        "HOME": str(tmp),
        "PYTHONUNBUFFERED": "1",
        "EXECDB_DATABASE_URL": database_url,
        "EXECDB_CONFIG": str(config),
        "EXECDB_WORKER_INTERVAL": "0.2",
    }
    log = tmp / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(EXECDB), "worker"],
            env=env,
            cwd=tmp,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return WorkerProcess(process, log)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[[str, Path, str], WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(database_url: str, config: Path, name: str) -> WorkerProcess:
        worker = start_worker(tmp_path, database_url, config, name)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait()


def configure(tmp: Path, database_url: str, text: str) -> tuple[Path, Services]:
    """The settings file the workers read, and the test's own Services on the same settings
    (migrated), so that the crashes it reports queue what the workers will act on."""
    config = tmp / "execdb.toml"
    config.write_text(text)
    services = prepare(settings_for(database_url, **tomllib.loads(text)))
    return config, services


def crash(services: Services, number: int) -> str:
    """A job that ran and crashed THIRD_PARTY koji.timeout; its uuid."""
    jobs = services.jobs
    new = JobCreate(task="rpmlint", item=f"pkg-{number}-1.0-1.fc40", item_type="koji_build")
    job, _ = jobs.create(new, TRIGGER, utcnow())
    jobs.report(job["uuid"], JobReport(state=State.RUNNING), TRIGGER, utcnow())
    report = JobReport(state=State.CRASHED, blame=Blame.THIRD_PARTY, cause="koji.timeout")
    jobs.report(job["uuid"], report, TRIGGER, utcnow())
    return str(job["uuid"])


def wait_until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.1)


def ids(received: list[Any]) -> Counter[str]:
    return Counter(r.headers["x-execdb-delivery"] for r in received)


def test_two_workers_share_the_work_and_do_each_part_once(
    backend: str,
    databases: Databases,
    tmp_path: Path,
    workers: Callable[[str, Path, str], WorkerProcess],
) -> None:
    url = databases.url(backend)
    with WebhookReceiver() as dispatched, WebhookReceiver() as notified:
        config, services = configure(
            tmp_path,
            url,
            CONFIG.format(dispatch=dispatched.url, notify=notified.url, secret=SECRET),
        )
        pair = [workers(url, config, "worker-a"), workers(url, config, "worker-b")]
        for worker in pair:
            worker.wait_until_started()

        # Crash the jobs while both workers poll: four trigger/executor threads at once.
        with ThreadPoolExecutor(4) as pool:
            crashed = set(pool.map(lambda n: crash(services, n), range(JOBS)))

        dispatched.wait_for(JOBS, seconds=30)
        notified.wait_for(JOBS, seconds=30)
        # Time for a second POST of anything, had a delivery been taken twice.
        time.sleep(1)
        assert [worker.stop() for worker in pair] == [0, 0], [w.output for w in pair]

    with services.db.read() as conn:
        jobs = [dict(r) for r in conn.execute(select(Job.__table__)).mappings()]
        deliveries = [dict(r) for r in conn.execute(select(Delivery.__table__)).mappings()]
    services.db.close()

    retries = [j for j in jobs if j["rescheduled_from"] is not None]
    assert len(jobs) == 2 * JOBS
    assert Counter(str(j["rescheduled_from"]) for j in retries) == dict.fromkeys(crashed, 1)
    assert {(j["attempt"], j["state"], j["dispatch_state"]) for j in retries} == {
        (2, "SCHEDULED", "sent")
    }
    retried_as = {str(j["uuid"]): str(j["rescheduled_as"]) for j in jobs if j["attempt"] == 1}
    assert retried_as == {str(j["rescheduled_from"]): str(j["uuid"]) for j in retries}

    # Each delivery was POSTed once: no X-ExecDB-Delivery id twice, one POST per job.
    assert len(dispatched.received) == JOBS
    assert set(ids(dispatched.received).values()) == {1}
    assert len(notified.received) == JOBS
    assert set(ids(notified.received).values()) == {1}
    assert {r.json()["job"]["uuid"] for r in dispatched.received} == {
        str(j["uuid"]) for j in retries
    }
    assert {r.json()["job"]["uuid"] for r in notified.received} == crashed
    for r in dispatched.received:
        expected = "sha256=" + hmac.new(SECRET.encode(), r.body, hashlib.sha256).hexdigest()
        assert r.headers["x-execdb-signature"] == expected
    assert Counter((d["kind"], d["status"]) for d in deliveries) == {
        ("dispatch", Status.DELIVERED): JOBS,
        ("notification", Status.DELIVERED): JOBS,
    }
    # A delivery is leased again only after a send that failed, never while one is in flight.
    failures = sum(
        len(re.findall(r" failed \(attempt \d+; will try again\)", w.output)) for w in pair
    )
    assert sum(d["attempts"] - 1 for d in deliveries) == failures
    assert set(ids(dispatched.received) + ids(notified.received)) == {
        str(d["uuid"]) for d in deliveries
    }

    # Both workers took part: each logged some of the retries (all of them once between
    # them), and each leased some of the deliveries.
    logged = [len(re.findall(r"retried job \S+ as ", w.output)) for w in pair]
    assert sum(logged) == JOBS
    assert min(logged) > 0, logged
    pids = Counter(str(d["leased_by"]).split(":")[-2] for d in deliveries)
    assert set(pids) == {str(w.process.pid) for w in pair}, pids


def test_a_delivery_in_flight_is_never_leased_by_another_worker(
    backend: str, databases: Databases, tmp_path: Path
) -> None:
    """A round takes as long as its sends: three batches to a receiver that never answers
    take three timeouts, longer than the lease. The third batch is in flight all the same,
    and its lease must say so to every other worker."""
    url = databases.url(backend)
    with WebhookReceiver(hang=threading.Event()) as hooks:
        _, services = configure(tmp_path, url, LEASE_CONFIG.format(url=hooks.url))
        for n in range(2 * BATCH + 5):
            crash(services, n)

        def all_leased() -> bool:
            with services.db.read() as conn:
                return not conn.execute(select(Delivery.id).where(Delivery.attempts == 0)).first()

        async def rounds() -> Tick:
            async with Worker(services, name="a") as a, Worker(services, name="b") as b:
                first = asyncio.create_task(a.tick())
                await asyncio.to_thread(wait_until, all_leased, 10, "a leased nothing more")
                second = await b.tick()
                await first
                return second

        second = asyncio.run(rounds())
    services.db.close()

    assert (second.delivered, second.failed) == (0, 0)
    assert set(ids(hooks.received).values()) == {1}
