"""Real receivers for what ExecDB sends: an HTTP server for webhooks and an SMTP server.

with WebhookReceiver() as hooks:            # http://127.0.0.1:PORT/
    hooks.answers = [500, 200]              # the statuses of the next answers, then 200
    ...
    hooks.wait_for(1)                       # the requests received, once there are 1

with MailReceiver() as mail:                # aiosmtpd on 127.0.0.1:PORT
    mail.wait_for(1)[0]["To"]
"""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self, TypeVar

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

T = TypeVar("T")


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """Answers each POST with the next status of `answers` (200 once they run out).

    With `hang` set, it holds each request until the event is set (or 30 s pass): a receiver
    that takes the request and never answers, like one on a machine that just died.
    """

    answers: list[int] = field(default_factory=list)
    hang: threading.Event | None = None
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.received.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    status = receiver.answers.pop(0) if receiver.answers else 200
                if receiver.hang is not None:
                    receiver.hang.wait(30)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # a worker sends a batch of deliveries at once

        self._lock = threading.Lock()
        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Self:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.hang is not None:
            self.hang.set()
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, count: int, seconds: float = 20) -> list[Received]:
        return _wait_for(self.received, count, seconds, "requests")


class MailReceiver:
    """A real SMTP server (aiosmtpd) keeping every message it is given."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[list[str]] = []
        receiver = self

        class Handler:
            async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
                content = envelope.original_content or b""
                message = email.message_from_bytes(content, policy=email.policy.default)
                assert isinstance(message, EmailMessage)
                receiver.messages.append(message)
                receiver.envelopes.append(list(envelope.rcpt_tos))
                return "250 OK"

        with socket.socket() as probe:  # aiosmtpd needs a port number to check its start
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> Self:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    def wait_for(self, count: int, seconds: float = 20) -> list[EmailMessage]:
        return _wait_for(self.messages, count, seconds, "messages")


def _wait_for(received: list[T], count: int, seconds: float, what: str) -> list[T]:
    """A copy of `received` once it holds `count` items; TimeoutError after `seconds`."""
    deadline = time.monotonic() + seconds
    while len(received) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(received)} {what} received, not {count}")
        time.sleep(0.02)
    return list(received)
