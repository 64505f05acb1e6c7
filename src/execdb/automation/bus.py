"""Job changes on the Fedora message bus: the messages written to the outbox, and publishing them.

ResultsDB publishes after its commit and only logs a failed publish, so a broker that is down
loses the message. Here a message is a delivery like a notification: `Bus` writes it in the
transaction of the change it tells of (a job created, a state change accepted, a crash
reclassified), and the worker publishes it with fedora-messaging (`Publisher`), at least once,
with the delivery's uuid as the message id, until the broker confirms it. Each body carries
`seq`, the job's message counter, so that consumers can order one job's messages.

fedora-messaging publishes through Twisted, run by crochet in a thread of its own; its
`publish` blocks until the broker confirms or its timeout runs out (tens of milliseconds on
a busy machine). The worker calls it in threads of asyncio's pool, never on the event loop:
several jobs' messages at once, one job's one after the other, in the order they were
written.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.engine import Connection

from execdb.automation import outbox
from execdb.automation.models import Delivery, Kind
from execdb.jobs.schemas import links
from execdb.jobs.states import JobRow
from execdb.prepared import Prepared
from execdb.vocabulary import Actor

# Built once: constructing a statement costs more than running it (execdb.prepared).
_MESSAGES_OF_JOB = Prepared(
    select(func.count().label("n"))
    .select_from(Delivery)
    .where(Delivery.job_id == bindparam("job_id"), Delivery.kind == bindparam("kind"))
)
_JOB_FIELDS = ("task", "item", "item_type", "arch", "attempt", "state", "blame", "cause")


class PublishError(Exception):
    """The broker did not take the message; the text says why in one line."""


class Bus:
    """Writes the messages of job changes into the outbox, in the caller's transaction."""

    def __init__(self, base_url: str) -> None:
        # Imported here, as in `Publisher`: the schemas bring jsonschema and pika, which only
        # a deployment with a bus needs to load.
        from execdb_messages import JobCreatedV1, JobReclassifiedV1, JobStateChangeV1

        self.base_url = base_url.rstrip("/")
        self._created = JobCreatedV1.topic
        self._changed = JobStateChangeV1.topic
        self._reclassified = JobReclassifiedV1.topic

    def created(self, conn: Connection, job: JobRow, actor: Actor, now: datetime) -> None:
        self._add(conn, job, self._created, {"msg_id": job["msg_id"]}, actor, now)

    def changed(
        self, conn: Connection, before: JobRow, after: JobRow, actor: Actor, now: datetime
    ) -> None:
        retry_at = after.get("retry_at")
        body = {
            "from": before["state"],
            "to": after["state"],
            "blame": after["blame"],
            "cause": after["cause"],
            "retry_at": retry_at.isoformat() if retry_at else None,
        }
        self._add(conn, after, self._changed, body, actor, now)

    def reclassified(
        self, conn: Connection, before: JobRow, after: JobRow, actor: Actor, now: datetime
    ) -> None:
        """A crash's blame or cause changed after it ended (a person, or a new rules run)."""
        body = {
            "old": {"blame": before["blame"], "cause": before["cause"]},
            "new": {"blame": after["blame"], "cause": after["cause"]},
            "classified_by": after.get("classified_by"),
            "rule_id": after.get("rule_id"),
        }
        self._add(conn, after, self._reclassified, body, actor, now)

    def job(self, job: JobRow) -> dict[str, Any]:
        href, page = links(self.base_url, job["uuid"])
        fields = {name: _plain(job[name]) for name in _JOB_FIELDS}
        again = job.get("rescheduled_from")
        return {
            "uuid": str(job["uuid"]),
            **fields,
            "page": page,
            "href": href,
            "rescheduled_from": str(again) if again else None,
        }

    def _add(
        self,
        conn: Connection,
        job: JobRow,
        topic: str,
        body: dict[str, Any],
        actor: Actor,
        now: datetime,
    ) -> None:
        # The job's row is locked (or new) in this transaction: no other message of this job
        # can be counted in between.
        seq = _sequence(conn, job["id"])
        payload = {
            "job": self.job(job),
            "seq": seq,
            "agent": None if actor.by_system else actor.name,
            "at": now.isoformat(),
            **{k: _plain(v) for k, v in body.items()},
        }
        outbox.add(
            conn,
            job_id=job["id"],
            kind=Kind.MESSAGE,
            sink=topic,
            recipients=[],
            payload=payload,
            now=now,
        )


def _sequence(conn: Connection, job_id: int) -> int:
    counted = _MESSAGES_OF_JOB.one_or_none(conn, {"job_id": job_id, "kind": Kind.MESSAGE})
    return int(counted["n"] if counted else 0) + 1


def _plain(value: Any) -> Any:
    """Enums as their values: a body is JSON."""
    return getattr(value, "value", value)


class Publisher:
    """Publishes message deliveries with fedora-messaging (the worker's Sender for them)."""

    _configured: Path | None = None
    _configure_lock = threading.Lock()

    def __init__(self, config: Path, timeout: float) -> None:
        self.timeout = timeout
        self._turns: dict[int, tuple[asyncio.Lock, int]] = {}  # per job: its lock, its users
        self._down_until = 0.0
        self._down_because = ""
        _configure(config)

    async def send(self, delivery: Mapping[str, Any]) -> None:
        # The worker starts a round's sends in the order of the outbox, and a lock is taken in
        # the order it was asked for: a job's messages keep their order.
        job_id = delivery["job_id"]
        turn, users = self._turns.get(job_id, (asyncio.Lock(), 0))
        self._turns[job_id] = (turn, users + 1)
        try:
            async with turn:
                await asyncio.to_thread(self.publish, delivery)
        finally:
            turn, users = self._turns[job_id]
            if users == 1:
                del self._turns[job_id]
            else:
                self._turns[job_id] = (turn, users - 1)

    def publish(self, delivery: Mapping[str, Any]) -> None:
        """Publish one delivery and wait for the broker's confirmation; PublishError if not.

        After the broker could not be reached, the messages that follow within the timeout
        fail at once: a round with many messages must not wait out the timeout for each,
        past the leases it holds. They are tried again with the outbox's backoff.
        """
        # Imported here: the api module installs Twisted's reactor, which only a process that
        # publishes needs.
        from execdb_messages import TOPICS
        from fedora_messaging import api, exceptions

        cls = TOPICS.get(delivery["sink"])
        if cls is None:
            raise PublishError(f"no message class for topic {delivery['sink']!r}")
        if time.monotonic() < self._down_until:
            raise PublishError(f"not tried: {self._down_because}")
        message = cls(body=dict(delivery["payload"]))
        message.id = str(delivery["uuid"])  # the same on every attempt: consumers drop repeats
        try:
            api.publish(message, timeout=max(1, round(self.timeout)))
        except exceptions.BaseException as exc:
            reason = f"publish {message.topic}: {exc.__class__.__name__}: {exc}"
            if isinstance(exc, exceptions.PublishTimeout | exceptions.ConnectionException):
                self._down_until = time.monotonic() + self.timeout
                self._down_because = reason
            raise PublishError(reason) from None
        finally:
            _cap_reconnect_delay(api, self.timeout)


def _configure(config: Path) -> None:
    """Load fedora-messaging's configuration into the process (once per file: it is global)."""
    from fedora_messaging import config as fm_config

    with Publisher._configure_lock:
        if Publisher._configured == config:
            return
        fm_config.conf.load_config(str(config))
        Publisher._configured = config


def _cap_reconnect_delay(api: Any, seconds: float) -> None:
    """fedora-messaging reconnects with Twisted's ReconnectingClientFactory, whose delay grows
    to an hour: a broker back after a restart would wait that long for its messages. The
    factory is made on the first publish, and is not part of fedora-messaging's API; without
    it (another version), the delays stay as they are."""
    service = getattr(getattr(api, "_twisted_service", None), "_service", None)
    factory = getattr(service, "factory", None)
    if factory is not None and hasattr(factory, "maxDelay"):
        factory.maxDelay = max(1.0, seconds)
