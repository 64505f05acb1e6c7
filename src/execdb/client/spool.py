"""Reports kept on disk until ExecDB takes them, delivered in the order they were made.

A spool directory holds:

    DIR/<time_ns>-<pid>-<uuid>.json   a report waiting: {"uuid": ..., "body": {...}}
    DIR/failed/<name>.json            a report set aside: it can never succeed as it is
    DIR/failed/<name>.json.error      why, in one line (the server's status and message)
    DIR/.lock                         locked (flock) by whoever delivers

Delivering holds the lock, so two deliveries never send the same report twice. Saving needs no
lock: a report is written under a hidden name, fsynced, renamed into place and the directory
fsynced, so it is either whole or absent, even after a power cut.

What an answer does to a report (`disposition`): a success deletes it; 401 and 403 (the
token: fix it and the report goes through), 408, 429 and 5xx (the server, for now) keep it
and stop the delivery; any other refusal (400, 404, 409, 413 ...) can never succeed and sets
it aside with the server's message. A 409 is recorded in the job's history as refused, so the
server did see it; it is set aside all the same, so that a person can look and retry it.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import time
import uuid as uuids
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from execdb.client import ApiError, Client, Unreachable
from execdb.client.files import read_head

MAX_FILE_BYTES = 4 * 1024 * 1024  # a spooled report is far smaller (details <= 64 KiB)
FAILED = "failed"
ERROR_SUFFIX = ".error"


class Stop(Enum):
    """Why a delivery stopped with reports kept."""

    AUTH = "auth"  # 401 or 403: nothing will pass until the token is fixed
    LATER = "later"  # unreachable, or a server that answers 408, 429 or 5xx


class SpoolBusy(Exception):
    """Another process holds the spool's lock."""


def disposition(status: int) -> Stop | None:
    """What a refusal with this status means for a report: kept (why), or None: set aside."""
    if status in (401, 403):
        return Stop.AUTH
    if status in (408, 429) or status >= 500:
        return Stop.LATER
    return None


@dataclass
class Delivery:
    """What one delivery did, report by report (file names)."""

    delivered: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # name, the server's word
    broken: list[tuple[str, str]] = field(default_factory=list)  # name, what is wrong
    stopped: tuple[Stop, str] | None = None  # why the rest was kept


class Spool:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.failed = path / FAILED

    def save(self, uuid: str, body: dict[str, Any]) -> Path:
        """Keep one report; names sort in the order reports were made."""
        self.path.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{os.getpid()}-{_name_part(uuid)}.json"
        data = json.dumps({"uuid": uuid, "body": body}).encode()  # ASCII: escapes all else
        path = self.path / name
        _write_durably(path, data)
        return path

    def pending(self, uuid: str | None = None) -> list[Path]:
        """The reports waiting (only this job's, with `uuid`), oldest first."""
        if not self.path.is_dir():
            return []
        suffix = f"-{_name_part(uuid)}.json" if uuid is not None else ".json"
        return sorted(p for p in self.path.glob("*.json") if p.name.endswith(suffix))

    def set_aside(self) -> list[Path]:
        if not self.failed.is_dir():
            return []
        return sorted(self.failed.glob("*.json"))

    @contextmanager
    def locked(self, wait: float | None = None) -> Iterator[None]:
        """Hold the spool's lock; wait for it at most `wait` seconds (None: for as long as
        it takes), else raise SpoolBusy."""
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            _lock(fd, wait)
            yield
        finally:
            os.close(fd)  # and with it the lock

    def deliver(self, client: Client, uuid: str | None = None) -> Delivery:
        """Send the waiting reports (this job's only, with `uuid`), oldest first, each once.

        Hold the lock around it. Stops at the first report the server cannot take now.
        """
        done = Delivery()
        for path in self.pending(uuid):
            try:
                saved_uuid, body = _load(path)
            except ValueError as exc:
                self._put_aside(path, f"not a spooled report: {exc}")
                done.broken.append((path.name, str(exc)))
                continue
            try:
                client.send_report(saved_uuid, body)
            except Unreachable as exc:
                done.stopped = (Stop.LATER, str(exc))
                return done
            except ApiError as exc:
                word = f"refused ({exc.status}): {exc.message}"
                kept = disposition(exc.status)
                if kept is not None:
                    done.stopped = (kept, word)
                    return done
                self._put_aside(path, word)
                done.refused.append((path.name, word))
                continue
            path.unlink(missing_ok=True)
            _sync_dir(self.path)
            done.delivered.append(path.name)
        return done

    def restore(self, names: list[str] | None = None) -> list[str]:
        """Move set-aside reports (all, or those named) back to wait again; hold the lock."""
        aside = {p.name: p for p in self.set_aside()}
        wanted = [Path(n).name for n in names] if names else sorted(aside)
        unknown = [n for n in wanted if n not in aside]
        if unknown:
            raise FileNotFoundError(errno.ENOENT, f"no such report in {self.failed}", unknown[0])
        for name in wanted:
            os.replace(aside[name], self.path / name)
            (self.failed / (name + ERROR_SUFFIX)).unlink(missing_ok=True)
        if wanted:
            _sync_dir(self.path)
            _sync_dir(self.failed)
        return wanted

    def _put_aside(self, path: Path, why: str) -> None:
        self.failed.mkdir(exist_ok=True)
        _write_durably(self.failed / (path.name + ERROR_SUFFIX), why.encode() + b"\n")
        os.replace(path, self.failed / path.name)
        _sync_dir(self.failed)
        _sync_dir(self.path)


def _load(path: Path) -> tuple[str, dict[str, Any]]:
    """The job and body of a spooled report; ValueError says what is wrong with the file."""
    try:
        data = read_head(path, MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ValueError(str(exc.strerror or exc)) from None
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"larger than {MAX_FILE_BYTES} bytes")
    try:
        saved = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(saved, dict):
        raise ValueError("not a JSON object")
    uuid, body = saved.get("uuid"), saved.get("body")
    if not isinstance(uuid, str) or not isinstance(body, dict):
        raise ValueError('expected {"uuid": "...", "body": {...}}')
    if not isinstance(body.get("state"), str):
        raise ValueError("the body has no state")
    return uuid, body


def _name_part(uuid: str) -> str:
    """The job's part of a file name: the canonical UUID, or a harmless spelling of the text."""
    try:
        return str(uuids.UUID(uuid))
    except ValueError:
        return re.sub(r"[^A-Za-z0-9_]", "_", uuid)[:64]


def _lock(fd: int, wait: float | None) -> None:
    if wait is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise SpoolBusy("another process is delivering this spool's reports") from None
            time.sleep(0.05)


def _write_durably(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_dir(path.parent)


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
