"""End to end with a real Buildbot: a master and a worker run tests/buildbot/master.cfg (the
configuration docs/buildbot.md explains), builds are forced through Buildbot's own API, and
ExecDB is checked afterwards for every outcome a run can have."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from execdb.client import Client
from tests.live import LiveServer

pytestmark = [pytest.mark.buildbot, pytest.mark.parametrize("backend", ["sqlite"], indirect=True)]
HERE = Path(__file__).parent
BIN = Path(sys.executable).parent


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Buildbot:
    def __init__(self, base: Path, env: dict[str, str]) -> None:
        self.master = base / "master"
        self.worker = base / "worker"
        self.env = env
        self.url = f"http://127.0.0.1:{env['BUILDBOT_WWW_PORT']}"

    def run(self, *argv: str) -> None:
        subprocess.run(argv, env=self.env, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self.run(str(BIN / "buildbot"), "create-master", "-r", str(self.master))
        (self.master / "master.cfg").write_text((HERE / "master.cfg").read_text())
        self.run(str(BIN / "buildbot"), "start", str(self.master))
        self.run(
            str(BIN / "buildbot-worker"),
            "create-worker",
            str(self.worker),
            f"127.0.0.1:{self.env['BUILDBOT_PB_PORT']}",
            "worker",
            "pass",
        )
        self.run(str(BIN / "buildbot-worker"), "start", str(self.worker))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            workers = httpx.get(f"{self.url}/api/v2/workers").json()["workers"]
            if workers and workers[0]["connected_to"]:
                return
            time.sleep(0.5)
        raise RuntimeError("the Buildbot worker did not connect")

    def stop(self) -> None:
        for argv in (
            [str(BIN / "buildbot-worker"), "stop", str(self.worker)],
            [str(BIN / "buildbot"), "stop", str(self.master)],
        ):
            subprocess.run(argv, env=self.env, capture_output=True, timeout=60, check=False)

    def force(self, properties: dict[str, str], builder_name: str = "runtask") -> int:
        """Start a build on the builder through the force scheduler; its build request id."""
        builders = httpx.get(f"{self.url}/api/v2/builders").json()["builders"]
        builder = next(b["builderid"] for b in builders if b["name"] == builder_name)
        answer = httpx.post(
            f"{self.url}/api/v2/forceschedulers/force",
            json={
                "jsonrpc": "2.0",
                "method": "force",
                "id": 1,
                "params": {"builderid": builder, **properties},
            },
        ).json()
        assert "result" in answer, answer
        return int(next(iter(answer["result"][1].values())))

    def wait(self, request: int, seconds: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            builds = httpx.get(
                f"{self.url}/api/v2/builds", params={"buildrequestid": request}
            ).json()["builds"]
            if builds and builds[0]["complete"]:
                build: dict[str, Any] = builds[0]
                return build
            time.sleep(0.5)
        raise TimeoutError(f"build request {request} did not complete")


@pytest.fixture
def buildbot(server: LiveServer, tmp_path: Path) -> Iterator[Buildbot]:
    env = dict(os.environ) | {
        "EXECDB_COMMAND": str(BIN / "execdb"),
        "RUNTASK_SCRIPT": str(HERE / "runtask.py"),
        "EXECDB_URL": server.url,
        "EXECDB_TOKEN": server.tokens["report"],
        "BUILDBOT_PB_PORT": str(_port()),
        "BUILDBOT_WWW_PORT": str(_port()),
    }
    bb = Buildbot(tmp_path, env)
    try:
        bb.start()
        yield bb
    finally:
        bb.stop()


@pytest.mark.parametrize("builder", ["runtask", "runtask-onestep"])
def test_every_outcome_of_a_run_reaches_execdb(
    server: LiveServer, buildbot: Buildbot, builder: str
) -> None:
    """The three steps (start, runtask, finish) and the one step of `execdb job run` end
    every kind of run the same way."""
    with Client(server.url, server.tokens["create"]) as trigger:
        jobs = {
            kind: trigger.create_job(
                task="rpmlint", item=f"{kind}-1.0-1", item_type="koji_build", arch="x86_64"
            )
            for kind in ("ok", "fault", "nostatus", "kojidies", "hang")
        }
    requests = {
        kind: buildbot.force(
            {
                "taskname": j["task"],
                "item": j["item"],
                "item_type": j["item_type"],
                "arch": j["arch"],
                "uuid": j["uuid"],
            },
            builder,
        )
        for kind, j in jobs.items()
    }
    for request in requests.values():
        buildbot.wait(request)
    with Client(server.url, server.tokens["admin"]) as execdb:
        got = {kind: execdb.get(j["uuid"]) for kind, j in jobs.items()}
        history = {kind: list(execdb.events(j["uuid"])) for kind, j in jobs.items()}
    assert got["ok"]["state"] == "FINISHED"
    assert (got["fault"]["state"], got["fault"]["blame"], got["fault"]["cause"]) == (
        "CRASHED",
        "THIRD_PARTY",
        "koji.timeout",
    )
    assert (got["nostatus"]["state"], got["nostatus"]["cause"]) == (
        "CRASHED",
        "status_file.missing",
    )
    assert got["nostatus"]["classified_by"] is None  # it said nothing
    dead = got["kojidies"]
    assert (dead["state"], dead["blame"], dead["cause"], dead["classified_by"]) == (
        "CRASHED",
        "THIRD_PARTY",
        "koji.timeout",
        "rules",
    )
    assert dead["reported_cause"] == "status_file.missing"
    assert "Read timed out" in dead["evidence"][0]["text"]
    assert (got["hang"]["state"], got["hang"]["cause"]) == ("CRASHED", "executor.timeout")
    for kind, events in history.items():
        assert [e["to_state"] for e in events][:2] == ["SCHEDULED", "RUNNING"], kind
        assert {e["actor"] for e in events[1:]} == {"test-report"}, kind
        assert got[kind]["executor"]["builder"] == builder
