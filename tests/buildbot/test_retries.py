"""Retries started by ExecDB on a real Buildbot: a run that crashes THIRD_PARTY is
rescheduled by ExecDB's own worker (the one `execdb serve` runs on SQLite), which forces the
new attempt's build through Buildbot's API; nobody steps in between."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from execdb.client import Client
from tests.buildbot.test_buildbot import BIN, HERE, Buildbot, _port
from tests.live import LiveServer

pytestmark = [pytest.mark.buildbot, pytest.mark.parametrize("backend", ["sqlite"], indirect=True)]


@pytest.fixture
def dispatching(
    make_server: Callable[..., LiveServer], tmp_path: Path
) -> Iterator[tuple[LiveServer, Buildbot]]:
    """ExecDB, set to retry THIRD_PARTY crashes on Buildbot, and that Buildbot."""
    pb_port, www_port = _port(), _port()
    server = make_server(
        retry={
            "rules": [
                {
                    "name": "third-party glitches",
                    "blame": ["THIRD_PARTY"],
                    "action": "retry",
                    "initial_delay": "0.1s",
                    "max_attempts": 2,
                }
            ]
        },
        dispatch={
            "kind": "buildbot",
            "url": f"http://127.0.0.1:{www_port}",
            "scheduler": "force",
            "builder": "runtask",
        },
        worker_in_serve=True,
        worker_interval="0.2s",
    )
    env = dict(os.environ) | {
        "EXECDB_COMMAND": str(BIN / "execdb"),
        "RUNTASK_SCRIPT": str(HERE / "runtask.py"),
        "EXECDB_URL": server.url,
        "EXECDB_TOKEN": server.tokens["report"],
        "BUILDBOT_PB_PORT": str(pb_port),
        "BUILDBOT_WWW_PORT": str(www_port),
    }
    buildbot = Buildbot(tmp_path, env)
    try:
        buildbot.start()
        yield server, buildbot
    finally:
        buildbot.stop()


def builds(buildbot: Buildbot) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = httpx.get(
        f"{buildbot.url}/api/v2/builds", params={"property": "uuid", "order": "number"}
    ).json()["builds"]
    return found


def test_a_third_party_crash_is_retried_on_buildbot_without_anyone(
    dispatching: tuple[LiveServer, Buildbot],
) -> None:
    server, buildbot = dispatching
    with Client(server.url, server.tokens["create"]) as trigger:
        first = trigger.create_job(
            task="rpmlint", item="flaky-1.0-1.fc40", item_type="koji_build", arch="x86_64"
        )
    buildbot.force(
        {
            "taskname": first["task"],
            "item": first["item"],
            "item_type": first["item_type"],
            "arch": first["arch"],
            "uuid": first["uuid"],
        }
    )

    with Client(server.url, server.tokens["admin"]) as execdb:
        deadline = time.monotonic() + 90
        while True:
            crashed = execdb.get(first["uuid"])
            again = execdb.get(crashed["rescheduled_as"]) if crashed["rescheduled_as"] else None
            if again is not None and again["state"] in ("FINISHED", "CRASHED", "CANCELLED"):
                break
            assert time.monotonic() < deadline, (crashed, again, builds(buildbot))
            time.sleep(0.5)
    with server.client("admin") as http:
        deliveries = http.get(f"/api/v1/jobs/{again['uuid']}/deliveries").json()["data"]

    assert (crashed["state"], crashed["blame"], crashed["cause"], crashed["attempt"]) == (
        "CRASHED",
        "THIRD_PARTY",
        "koji.timeout",
        1,
    )
    assert crashed["rescheduled_as"] == again["uuid"]
    assert (again["state"], again["attempt"], again["rescheduled_from"]) == (
        "FINISHED",
        2,
        first["uuid"],
    )
    assert again["dispatch_state"] == "sent"
    assert [(d["kind"], d["sink"], d["status"]) for d in deliveries] == [
        ("dispatch", "buildbot", "delivered")
    ]
    # Buildbot ran the retry as a build of its own, with the new job's uuid, on the same
    # builder, and it is that build which reported the job FINISHED.
    first_build, second_build = builds(buildbot)
    assert first_build["properties"]["uuid"][0] == first["uuid"]
    assert second_build["properties"]["uuid"][0] == again["uuid"]
    # The job is FINISHED by the build's last step, a moment before the build completes.
    assert buildbot.wait(second_build["buildrequestid"])["results"] == 0  # SUCCESS
    assert crashed["executor"]["build"] == first_build["number"]
    assert again["executor"]["build"] == second_build["number"]
    assert again["executor"]["builder"] == "runtask"
