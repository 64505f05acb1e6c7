"""Running the real `execdb` command the way a build step does."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

EXECDB = str(Path(sys.executable).parent / "execdb")


def environment(server_url: str, token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXECDB_")}
    return env | {"EXECDB_URL": server_url, "EXECDB_TOKEN": token}


def run(
    server_url: str, token: str, *args: str | bytes, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXECDB, *args],
        env=environment(server_url, token),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start(server_url: str, token: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [EXECDB, *args],
        env=environment(server_url, token),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def unused_url() -> str:
    """A URL on which nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def new_job(server_url: str, token: str, *, start: bool = False) -> str:
    made = run(
        server_url, token, "job", "create", "--task", "t", "--item", "i", "--item-type", "k", "-q"
    )
    assert made.returncode == 0, made.stderr
    uuid = made.stdout.strip()
    if start:
        started = run(server_url, token, "job", "start", uuid)
        assert started.returncode == 0, started.stderr
    return uuid


def show(server_url: str, token: str, uuid: str) -> dict[str, Any]:
    shown = run(server_url, token, "job", "show", uuid)
    assert shown.returncode == 0, shown.stderr
    job: dict[str, Any] = json.loads(shown.stdout)
    return job


def history(server_url: str, token: str, uuid: str) -> list[tuple[str, str]]:
    """The job's events as (to_state, outcome)."""
    done = run(server_url, token, "job", "events", uuid, "--json")
    assert done.returncode == 0, done.stderr
    return [(e["to_state"], e["outcome"]) for e in json.loads(done.stdout)]
