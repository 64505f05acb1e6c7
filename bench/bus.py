"""What the bus costs: job lives (create, RUNNING, FINISHED) on SQLite without and with the
bus configured, and how fast one worker publishes their messages to a local RabbitMQ.

    .venv/bin/python bench/bus.py [--jobs 300]

It starts a throwaway broker (tests/rabbit.py, Debian's rabbitmq-server) and a consumer, and
calls the job service directly (no HTTP), so the figures are the outbox's own cost.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fedora_messaging import config as fm_config

from execdb.db import utcnow
from execdb.jobs.schemas import JobCreate, JobReport
from execdb.services import Services
from execdb.vocabulary import Actor, State
from execdb.worker import Worker
from tests.conftest import settings_for
from tests.consumer import PREFIX, BusConsumer, fm_config_file
from tests.live import prepare
from tests.rabbit import RabbitBroker

BENCH = Actor("bench")


def lives(services: Services, count: int) -> float:
    start = time.perf_counter()
    for n in range(count):
        new = JobCreate(task="rpmlint", item=f"pkg{n}-1.0-1.fc40", item_type="koji_build")
        job, _ = services.jobs.create(new, BENCH, utcnow())
        for state in (State.RUNNING, State.FINISHED):
            services.jobs.report(job["uuid"], JobReport(state=state), BENCH, utcnow())
    return time.perf_counter() - start


async def publish(services: Services) -> tuple[int, float]:
    async with Worker(services, name="bench") as worker:
        start, done = time.perf_counter(), 0
        while (tick := await worker.tick()).delivered:
            done += tick.delivered
        return done, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=300)
    count = parser.parse_args().jobs
    tmp = Path(tempfile.mkdtemp(prefix="execdb-bench-bus-"))
    with RabbitBroker(tmp) as broker:
        fm = fm_config_file(tmp / "fedora-messaging.toml", broker.url)
        fm_config.conf.load_config(str(fm))
        consumer = BusConsumer([f"{PREFIX}.execdb.#"]).start()
        print(f"{'bus':5} {'writes/s':>9} {'published/s':>12}")
        for number, bus in enumerate((False, True, False, True)):
            extra = {"bus": {"config": str(fm)}} if bus else {}
            services = prepare(settings_for(f"sqlite:///{tmp}/{number}.sqlite", **extra))
            writes = 3 * count / lives(services, count)
            rate = ""
            if bus:
                done, took = asyncio.run(publish(services))
                rate = f"{done / took:12.0f}"
            print(f"{'on' if bus else 'off':5} {writes:9.0f} {rate}", flush=True)
            services.db.close()
        consumer.stop()


if __name__ == "__main__":
    main()
