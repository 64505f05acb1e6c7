"""The background work: due retries, the watchdog, dispatches, notifications, bus messages.

`Worker.tick(now)` does one round of each and says what it did; `Worker.run` repeats it every
`worker_interval` until told to stop. Any number of workers (in `execdb worker` processes or
inside `execdb serve`) may share one database: each step takes only rows no other worker
holds (see jobs.service and automation.outbox), so nothing is done twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from execdb.automation import senders, watchdog
from execdb.automation.outbox import DeliveryRow
from execdb.automation.senders import Sender
from execdb.automation.settings import WatchdogSettings
from execdb.db import utcnow
from execdb.jobs.schemas import JobReport
from execdb.metrics import round_finished
from execdb.services import Services
from execdb.vocabulary import SYSTEM, Outcome

log = logging.getLogger("execdb.worker")


@dataclass
class Tick:
    """What one round did."""

    retried: int = 0
    crashed: int = 0
    delivered: int = 0
    failed: int = 0

    def __bool__(self) -> bool:
        return any((self.retried, self.crashed, self.delivered, self.failed))


class Worker:
    def __init__(
        self,
        services: Services,
        *,
        name: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        sender_for: Callable[[DeliveryRow], Sender] | None = None,
    ) -> None:
        """`sender_for` chooses who makes each delivery: by default the real senders of
        execdb.automation.senders (`Senders`), over an HTTP client the worker owns."""
        self.services = services
        self.settings = services.settings
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.clock = clock
        self._sender_for = sender_for
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Worker:
        if self._sender_for is None:
            timeout = self.settings.delivery.timeout.total_seconds()
            self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
            self._sender_for = senders.Senders(
                self._client,
                notify=self.settings.notify,
                dispatch=self.settings.dispatch,
                bus=self.settings.bus,
                timeout=timeout,
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
            self._sender_for = None

    async def tick(self, now: datetime | None = None) -> Tick:
        """One round of everything, as of `now` (default: the clock)."""
        now = now or self.clock()
        done = Tick()
        done.retried = await self.retry_due(now)
        done.crashed = await self.watch(now)
        done.delivered, done.failed = await self.deliver(now)
        # Only a round that did not fail is a sign of life (execdb_worker_last_round_...).
        await self.services.db.run(round_finished, self.services.db, self.name, self.clock())
        return done

    async def retry_due(self, now: datetime) -> int:
        jobs, db = self.services.jobs, self.services.db
        count = 0
        for job_uuid in await db.run(jobs.due_retries, now):
            made = await db.run(jobs.claim_retry, job_uuid, now, SYSTEM)
            if made is not None:
                count += 1
                log.info("retried job %s as %s", job_uuid, made["uuid"])
        return count

    async def watch(self, now: datetime) -> int:
        jobs, db, limits = self.services.jobs, self.services.db, self.settings.watchdog
        count = 0
        running, scheduled = limits.shortest
        stale = await db.run(
            jobs.stale, now, running=running, scheduled=scheduled, heartbeat=limits.heartbeat
        )
        for job in stale:
            report = watchdog.verdict(job, limits, now)
            if report is None:
                continue
            done = await db.run(
                jobs.claim_report,
                job["uuid"],
                report,
                SYSTEM,
                now,
                still=_still(report, limits, now),
            )
            if done is not None:
                count += 1
                self.services.metrics.reported(report.state, Outcome.ACCEPTED, done)
                log.warning("watchdog crashed job %s: %s", job["uuid"], report.details)
        return count

    async def deliver(self, now: datetime) -> tuple[int, int]:
        outbox, db = self.services.outbox, self.services.db
        delivered = failed = 0
        while batch := await db.run(outbox.lease, self.name, now, self.clock()):
            results = await asyncio.gather(*(self._send(d) for d in batch))
            for delivery, error in zip(batch, results, strict=True):
                if error is None:
                    await db.run(outbox.delivered, delivery, self.clock())
                    delivered += 1
                    continue
                failed += 1
                again = await db.run(outbox.failed, delivery, error, self.clock())
                log.warning(
                    "%s %s for job id %s failed (attempt %d%s): %s",
                    delivery["kind"],
                    delivery["uuid"],
                    delivery["job_id"],
                    delivery["attempts"],
                    "; will try again" if again else "; giving up",
                    error,
                )
        return delivered, failed

    async def _send(self, delivery: DeliveryRow) -> str | None:
        """Make one delivery; None on success, else why it failed."""
        assert self._sender_for is not None, "use the worker as an async context manager"
        try:
            await self._sender_for(delivery).send(delivery)
        except senders.DeliveryError as exc:
            return str(exc)
        except Exception as exc:  # a bug must not stop the other deliveries
            log.exception("delivery %s failed unexpectedly", delivery["uuid"])
            return f"{exc.__class__.__name__}: {exc}"
        return None

    async def run(self, stop: asyncio.Event) -> None:
        """Do rounds until `stop` is set; a round that fails is logged and the next one runs."""
        interval = self.settings.worker_interval.total_seconds()
        log.info("worker %s started (every %gs)", self.name, interval)
        while not stop.is_set():
            try:
                done = await self.tick()
                if done:
                    log.info("worker %s: %s", self.name, done)
            except Exception:
                log.exception("a round of background work failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)


def _still(
    report: JobReport, limits: WatchdogSettings, now: datetime
) -> Callable[[Mapping[str, Any]], bool]:
    """Whether a job, once locked, still earns the same verdict (no heartbeat came since)."""
    return lambda job: watchdog.verdict(job, limits, now) == report


@asynccontextmanager
async def background(services: Services) -> AsyncIterator[Worker]:
    """A worker doing rounds in the background for as long as the block runs."""
    stop = asyncio.Event()
    async with Worker(services) as worker:
        task = asyncio.create_task(worker.run(stop), name="execdb-worker")
        try:
            yield worker
        finally:
            stop.set()
            await task
