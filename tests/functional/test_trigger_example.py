"""docs/examples/trigger.py works against a real server, redelivery included."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from execdb.client import Client
from tests.live import LiveServer

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "trigger.py"
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def test_a_message_gives_one_job_per_task_and_arch_even_when_redelivered(
    server: LiveServer,
) -> None:
    example = runpy.run_path(str(EXAMPLE))
    with Client(server.url, server.tokens["create"]) as execdb:
        first = example["jobs_for_message"](execdb, example["MESSAGE"])
        again = example["jobs_for_message"](execdb, example["MESSAGE"])
        stored = list(execdb.search(msg_id=example["MESSAGE"]["id"]))
    assert len(first) == 4
    assert [j["uuid"] for j in again] == [j["uuid"] for j in first]
    assert len(stored) == 4
    properties = example["schedule"](first[0])
    assert properties == {
        "taskname": "rpmlint",
        "item": "xchat-2.8.8-21.fc40",
        "item_type": "koji_build",
        "arch": "x86_64",
        "uuid": first[0]["uuid"],
    }
    assert first[0]["trigger_data"]["build_id"] == 1234


def test_it_runs_as_a_script(server: LiveServer) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXECDB_")}
    env |= {"EXECDB_URL": server.url, "EXECDB_TOKEN": server.tokens["create"]}
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("'uuid':") == 4
