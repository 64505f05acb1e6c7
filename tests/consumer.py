"""A consumer of ExecDB's messages, written with fedora-messaging's own consumer API.

`BusConsumer` declares a durable queue bound to the topics it is given and consumes it with
`fedora_messaging.api.twisted_consume`, on the Twisted reactor that crochet runs in a thread
(as `fedora_messaging.api.consume` does); the callback keeps every message it receives. The
queue is durable so that a broker restarted mid-test still holds what it had taken.

The process's fedora-messaging configuration must name the broker first
(`fedora_messaging.config.conf.load_config(path)`); `fm_config` writes such a file.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import crochet
from fedora_messaging import api
from fedora_messaging import config as fm_config
from fedora_messaging.message import Message

PREFIX = "org.fedoraproject.test"


def fm_config_file(path: Path, amqp_url: str, topic_prefix: str = PREFIX) -> Path:
    """A fedora-messaging TOML file for the broker at `amqp_url`."""
    path.write_text(
        f'amqp_url = "{amqp_url}"\n'
        f'topic_prefix = "{topic_prefix}"\n'
        'publish_exchange = "amq.topic"\n'
        "\n[client_properties]\n"
        'app = "ExecDB tests"\n'
    )
    return path


class BusConsumer:
    def __init__(self, routing_keys: list[str]) -> None:
        self.queue = f"execdb-test-{uuid.uuid4().hex[:8]}"
        self.routing_keys = routing_keys
        self.received: list[Message] = []
        self._lock = threading.Lock()
        self._consumers: list[Any] = []

    def __call__(self, message: Message) -> None:
        with self._lock:
            self.received.append(message)

    def start(self) -> BusConsumer:
        assert fm_config.conf.loaded, "load the fedora-messaging configuration first"
        crochet.setup()
        self._consumers = list(_consume(self, self.routing_keys, self.queue))
        _speed_up_reconnects()
        return self

    def stop(self) -> None:
        for consumer in self._consumers:
            _cancel(consumer)
        self._consumers = []

    def messages(self) -> list[Message]:
        with self._lock:
            return list(self.received)

    def wait_for(self, count: int, seconds: float = 20) -> list[Message]:
        """At least `count` messages, waiting up to `seconds`; then a moment for extras."""
        deadline = time.monotonic() + seconds
        while len(self.messages()) < count:
            if time.monotonic() > deadline:
                got = [(m.topic, m.body.get("seq")) for m in self.messages()]
                raise TimeoutError(f"{len(got)} of {count} messages arrived: {got}")
            time.sleep(0.05)
        time.sleep(0.3)  # a duplicate would be close behind
        return self.messages()


@crochet.wait_for(timeout=30)
def _consume(callback: BusConsumer, routing_keys: list[str], queue: str) -> Any:
    bindings = [{"exchange": "amq.topic", "queue": queue, "routing_keys": routing_keys}]
    queues = {queue: {"durable": True, "auto_delete": False, "exclusive": False, "arguments": {}}}
    return api.twisted_consume(callback, bindings=bindings, queues=queues)


@crochet.wait_for(timeout=30)
def _cancel(consumer: Any) -> Any:
    return consumer.cancel()


@crochet.wait_for(timeout=5)
def _speed_up_reconnects() -> None:
    # Twisted's reconnecting factory waits up to an hour between attempts; a broker restarted
    # mid-test is back within seconds.
    service = getattr(api, "_twisted_service", None)
    if service is not None:
        service._service.factory.maxDelay = 1.0
