"""A typed HTTP client for ExecDB, for triggers and executors.

It imports nothing from the server side (only httpx and the standard library), so an executor
machine can use it without FastAPI, SQLAlchemy or a database driver:

    from execdb.client import Client

    with Client("https://execdb.example.org", token="execdb_...") as execdb:
        job = execdb.create_job(task="rpmlint", item="xchat-2.8.8-21.fc40",
                                item_type="koji_build", arch="x86_64", msg_id=msg.id)
        execdb.start(job["uuid"], executor={"name": "buildbot", "build": 42})
        execdb.crash(job["uuid"], cause="koji.timeout", details="no answer in 300 s")

The URL and token default to `$EXECDB_URL` and `$EXECDB_TOKEN`. Connection failures and
502/503/504 answers are retried with exponential back-off for a bounded time (a report sent
twice is harmless: the server answers a repeat with 200 and changes nothing); any other error
answer raises `ApiError` carrying the server's message. Text that no UTF-8 encoder takes (lone
surrogates, from JSON's "\\ud800" or from command-line bytes) is sent as U+FFFD.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import Any, Self

import httpx

from execdb.client.text import sendable

__all__ = ["ApiError", "Client", "Unreachable"]

Job = dict[str, Any]
RETRY_STATUSES = frozenset({502, 503, 504})


class ApiError(Exception):
    """The server refused a request; `message` is its explanation, `body` its whole answer."""

    def __init__(self, status: int, message: str, body: Mapping[str, Any]) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.body = dict(body)


class Unreachable(Exception):
    """The server could not be reached (or kept answering 502/503/504) for the retry time."""


class Client:
    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        retry_for: float = 60.0,
        first_delay: float = 0.5,
        max_delay: float = 10.0,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        url = url or os.environ.get("EXECDB_URL")
        if not url:
            raise ValueError("no ExecDB URL: pass one or set EXECDB_URL")
        token = token if token is not None else os.environ.get("EXECDB_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # Loading the CA bundle is a noticeable part of a command's start; plain http needs none.
        https = url.startswith("https:")
        self._http = httpx.Client(
            base_url=url.rstrip("/"), headers=headers, timeout=timeout, verify=https
        )
        self.retry_for = retry_for
        self.first_delay = first_delay
        self.max_delay = max_delay
        self._sleep = sleep
        self._clock = clock

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        path = sendable(path)
        kwargs = {k: sendable(v) if k in ("json", "params") else v for k, v in kwargs.items()}
        began = self._clock()
        deadline = began + self.retry_for
        delay = self.first_delay
        while True:
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                problem = f"{exc.__class__.__name__}: {exc}"
            else:
                if response.status_code not in RETRY_STATUSES:
                    break
                problem = f"HTTP {response.status_code}"
            left = deadline - self._clock()
            if left <= 0:
                tried = round(self._clock() - began, 1)
                raise Unreachable(
                    f"{method} {self._http.base_url}{path} failed for {tried:g} s; last: {problem}"
                )
            # The last wait is cut to the deadline, so the server gets the whole retry time.
            jitter = random.uniform(0.8, 1.0)  # noqa: S311 (jitter, not security)
            self._sleep(min(delay * jitter, left))
            delay = min(delay * 2, self.max_delay)
        try:
            body = response.json()
        except ValueError:
            body = {"message": response.text}
        if response.status_code >= 400:
            message = body.get("message") if isinstance(body, dict) else None
            raise ApiError(response.status_code, str(message or response.reason_phrase), body)
        return body

    def create_job(
        self,
        *,
        task: str,
        item: str,
        item_type: str,
        arch: str | None = None,
        msg_id: str | None = None,
        trigger_data: Mapping[str, Any] | None = None,
    ) -> Job:
        """A new SCHEDULED job, or the one already made for this msg_id and target."""
        body: dict[str, Any] = {"task": task, "item": item, "item_type": item_type, "arch": arch}
        if msg_id is not None:
            body["msg_id"] = msg_id
        if trigger_data is not None:
            body["trigger_data"] = dict(trigger_data)
        job: Job = self._request("POST", "/api/v1/jobs", json=body)
        return job

    def get(self, uuid: str) -> Job:
        job: Job = self._request("GET", f"/api/v1/jobs/{uuid}")
        return job

    def report(self, uuid: str, state: str, **fields: Any) -> Job:
        """Switch the job's state; the answer carries `warnings` (a list, usually empty)."""
        return self.send_report(
            uuid, {"state": state, **{k: v for k, v in fields.items() if v is not None}}
        )

    def send_report(self, uuid: str, body: Mapping[str, Any]) -> Job:
        """Send a report's whole body as it is (one saved earlier, say)."""
        job: Job = self._request("PATCH", f"/api/v1/jobs/{uuid}", json=dict(body))
        return job

    def start(self, uuid: str, executor: Mapping[str, Any] | None = None) -> Job:
        return self.report(uuid, "RUNNING", executor=dict(executor) if executor else None)

    def finish(self, uuid: str, details: str | None = None) -> Job:
        return self.report(uuid, "FINISHED", details=details)

    def crash(
        self,
        uuid: str,
        *,
        cause: str | None = None,
        blame: str | None = None,
        details: str | None = None,
    ) -> Job:
        return self.report(uuid, "CRASHED", cause=cause, blame=blame, details=details)

    def cancel(self, uuid: str, details: str | None = None) -> Job:
        return self.report(uuid, "CANCELLED", details=details)

    def reschedule(self, uuid: str, *, force: bool = False) -> Job:
        """The job's next attempt (made now, or the one made before)."""
        job: Job = self._request("POST", f"/api/v1/jobs/{uuid}/reschedule", json={"force": force})
        return job

    def heartbeat(self, uuid: str) -> Job:
        """Tell ExecDB the executor running this job is alive."""
        job: Job = self._request("POST", f"/api/v1/jobs/{uuid}/heartbeat")
        return job

    def events(self, uuid: str) -> Iterator[dict[str, Any]]:
        """The job's history, oldest first, across all pages."""
        return self._pages(f"/api/v1/jobs/{uuid}/events", {"limit": 1000})

    def search(self, **filters: str | int) -> Iterator[Job]:
        """Jobs matching ResultsDB-style filters, newest first, across all pages.

        Filter names with a colon are given with a double underscore: `task__like="rpm*"`.
        """
        params = {k.replace("__", ":"): v for k, v in filters.items()}
        params.setdefault("limit", 100)
        return self._pages("/api/v1/jobs", params)

    def deliveries(self, uuid: str) -> list[dict[str, Any]]:
        """What ExecDB sent or must send about the job: its dispatch and notifications."""
        found: list[dict[str, Any]] = self._request("GET", f"/api/v1/jobs/{uuid}/deliveries")[
            "data"
        ]
        return found

    def causes(self) -> list[dict[str, Any]]:
        causes: list[dict[str, Any]] = self._request("GET", "/api/v1/causes")["data"]
        return causes

    def _pages(self, path: str, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        page = self._request("GET", path, params=dict(params))
        while True:
            yield from page["data"]
            if not page["next"]:
                return
            page = self._request("GET", page["next"])
