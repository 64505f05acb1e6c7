"""The client library against a real server: operations, errors, paging and retries."""

from __future__ import annotations

import itertools
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from execdb.client import ApiError, Client, Unreachable
from tests.live import LiveServer


def client_for(server: LiveServer, who: str = "admin", **options: float) -> Client:
    return Client(server.url, server.tokens[who], **options)


def test_a_job_through_its_life(server: LiveServer) -> None:
    with client_for(server) as execdb:
        job = execdb.create_job(
            task="rpmlint", item="xchat-2.8.8-21.fc40", item_type="koji_build", msg_id="m-1"
        )
        again = execdb.create_job(
            task="rpmlint", item="xchat-2.8.8-21.fc40", item_type="koji_build", msg_id="m-1"
        )
        started = execdb.start(job["uuid"], executor={"name": "buildbot", "build": 7})
        crashed = execdb.crash(job["uuid"], cause="koji.timeout", details="no answer")
        repeated = execdb.crash(job["uuid"], cause="koji.timeout", details="no answer")
        history = list(execdb.events(job["uuid"]))
    assert again["uuid"] == job["uuid"]
    assert started["state"] == "RUNNING"
    assert (crashed["state"], crashed["blame"]) == ("CRASHED", "THIRD_PARTY")
    assert repeated["updated_at"] == crashed["updated_at"]
    assert [e["outcome"] for e in history] == ["accepted", "accepted", "accepted", "repeated"]


def test_refusals_raise_with_the_servers_message(server: LiveServer) -> None:
    with client_for(server) as execdb, client_for(server, "create") as trigger:
        job = execdb.create_job(task="t", item="i", item_type="k")
        execdb.cancel(job["uuid"], details="superseded")
        with pytest.raises(ApiError) as refused:
            execdb.finish(job["uuid"])
        with pytest.raises(ApiError) as forbidden:
            trigger.start(job["uuid"])
        with pytest.raises(ApiError) as invalid:
            execdb.crash(job["uuid"], cause="Not A Code")
    assert refused.value.status == 409
    assert refused.value.body["state"] == "CANCELLED"
    assert "cannot become FINISHED" in refused.value.message
    assert forbidden.value.status == 403
    assert invalid.value.status == 400
    assert invalid.value.message.startswith("cause:")


def test_search_iterates_every_page(server: LiveServer) -> None:
    with client_for(server) as execdb:
        made = [execdb.create_job(task="rpmlint", item=f"p-{n}", item_type="k") for n in range(7)]
        execdb.create_job(task="other", item="x", item_type="k")
        found = list(execdb.search(task="rpmlint", limit=3))
        liked = list(execdb.search(task__like="oth*"))
        causes = {c["code"] for c in execdb.causes()}
    assert [j["uuid"] for j in found] == [j["uuid"] for j in reversed(made)]
    assert [j["task"] for j in liked] == ["other"]
    assert "koji.timeout" in causes


def test_settings_come_from_the_environment(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXECDB_URL", server.url)
    monkeypatch.setenv("EXECDB_TOKEN", server.tokens["create"])
    with Client() as execdb:
        assert execdb.create_job(task="t", item="i", item_type="k")["state"] == "SCHEDULED"
    monkeypatch.delenv("EXECDB_URL")
    with pytest.raises(ValueError, match="EXECDB_URL"):
        Client()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _serve(data: Path, port: int) -> subprocess.Popen[bytes]:
    execdb = Path(sys.executable).parent / "execdb"
    env = {"EXECDB_DATA_DIR": str(data), "EXECDB_ACCESS_LOG": "false", "PATH": "/usr/bin:/bin"}
    return subprocess.Popen(
        [str(execdb), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.slow
def test_reports_survive_a_server_restart(tmp_path: Path) -> None:
    """The server is stopped mid-run and started again: the client waits and delivers."""
    port = _free_port()
    execdb = Path(sys.executable).parent / "execdb"
    env = {"EXECDB_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    token = subprocess.run(
        [str(execdb), "token", "create", "runner", "--scope", "admin", "-q"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    server = _serve(tmp_path, port)
    try:
        with Client(f"http://127.0.0.1:{port}", token, retry_for=30, first_delay=0.1) as client:
            job = client.create_job(task="t", item="i", item_type="k")
            server.terminate()
            server.wait(timeout=20)

            def restart_later() -> None:
                time.sleep(1.5)
                nonlocal server
                server = _serve(tmp_path, port)

            restarter = threading.Thread(target=restart_later)
            restarter.start()
            began = time.monotonic()
            started = client.start(job["uuid"])
            waited = time.monotonic() - began
            restarter.join()
            history = list(client.events(job["uuid"]))
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert started["state"] == "RUNNING"
    assert waited >= 1.0, "the report waited for the server to come back"
    assert [e["to_state"] for e in history] == ["SCHEDULED", "RUNNING"], "delivered once"


def test_giving_up_is_a_clear_error() -> None:
    clock = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    client = Client(
        f"http://127.0.0.1:{_free_port()}",
        "token",
        retry_for=20,
        first_delay=1,
        max_delay=8,
        sleep=sleep,
        clock=lambda: clock[0],
    )
    with client, pytest.raises(Unreachable, match="failed for 20 s"):
        client.get("01a22016-e421-76f8-983a-2086a5386e78")
    assert 4 <= len(slept) <= 6, slept
    assert max(slept) <= 8, "the back-off is capped"
    assert all(b > a for a, b in itertools.pairwise(slept[:4])), "it backs off"
    assert clock[0] <= 20


def test_giving_up_says_how_long_it_really_tried() -> None:
    """It tries for the whole retry time, and says how long that was."""
    clock = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    client = Client(
        f"http://127.0.0.1:{_free_port()}",
        "token",
        retry_for=3,
        first_delay=0.5,
        sleep=sleep,
        clock=lambda: clock[0],
    )
    with client, pytest.raises(Unreachable) as raised:
        client.get("01a22016-e421-76f8-983a-2086a5386e78")
    assert clock[0] == pytest.approx(3.0), "the last wait ends at the deadline"
    assert f"failed for {round(clock[0], 1):g} s" in str(raised.value)


def test_text_no_encoder_takes_is_sent_as_replacement_characters(server: LiveServer) -> None:
    with client_for(server) as execdb:
        job = execdb.create_job(task="t", item="x\udcff", item_type="k")
        execdb.start(job["uuid"], executor={"builder\ud800": "b\udcff"})
        crashed = execdb.crash(job["uuid"], cause="koji.timeout", details="a\ud800b")
    assert job["item"] == "x\ufffd"
    assert crashed["executor"] == {"builder\ufffd": "b\ufffd"}
    assert crashed["details"] == "a\ufffdb"
