"""A real ExecDB HTTP server (uvicorn) in a thread, on its own loopback port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from execdb import migrations
from execdb.app import create_app
from execdb.config import Settings
from execdb.db import utcnow
from execdb.services import Services


@dataclass
class LiveServer:
    settings: Settings
    services: Services
    url: str = ""
    tokens: dict[str, str] = field(default_factory=dict)
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    def start(self) -> LiveServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            self.app(),
            log_level="warning",
            access_log=False,
            lifespan="on",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return self

    def app(self) -> FastAPI:
        return create_app(self.settings, self.services)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=20)

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[token]}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)


def prepare(settings: Settings) -> Services:
    """Services on a freshly migrated database, with one token per scope."""
    services = Services.build(settings)
    migrations.upgrade(services.db.engine)
    return services


def make_tokens(services: Services) -> dict[str, str]:
    now = utcnow()
    tokens = {}
    for name, scopes in {
        "admin": ["admin"],
        "create": ["create"],
        "report": ["report"],
        "both": ["create", "report"],
        "triage": ["triage"],
    }.items():
        tokens[name] = services.tokens.create(f"test-{name}", scopes, now)[1]
    tokens["revoked"] = services.tokens.create("test-revoked", ["admin"], now)[1]
    services.tokens.revoke("test-revoked", now)
    return tokens


# The `make_server` fixture: starts a server with the given settings on a fresh database.
StartServer = Callable[..., LiveServer]
