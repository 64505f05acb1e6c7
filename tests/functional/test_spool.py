"""The spool: reports saved while ExecDB could not take them reach it later, in order, once."""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.executor import history, new_job, run, show, start, unused_url
from tests.live import LiveServer

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def spooled(spool: Path, uuid: str, *report: str) -> None:
    """Save one report (`job REPORT... UUID`) while nothing listens."""
    command, *options = report
    done = run(
        unused_url(),
        "",
        "job",
        command,
        uuid,
        *options,
        "--spool",
        str(spool),
        "--retry-for",
        "0.2",
    )
    assert done.returncode == 0, done.stderr
    assert "report saved to" in done.stderr


def waiting(spool: Path) -> list[str]:
    return sorted(p.name for p in spool.glob("*.json"))


def set_aside(spool: Path) -> list[str]:
    return sorted(p.name for p in (spool / "failed").glob("*.json"))


@pytest.fixture
def failing_server() -> Iterator[str]:
    """A server that answers every request with 500 (ExecDB does so only when it is broken)."""

    class Broken(BaseHTTPRequestHandler):
        def do_PATCH(self) -> None:
            self.send_response(500)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"message": "internal error"}')

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Broken)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_report_goes_behind_its_jobs_spooled_reports(server: LiveServer, tmp_path: Path) -> None:
    """ExecDB was down for `job start`, is back for `job finish`: the job ends FINISHED."""
    token = server.tokens["both"]
    spool = tmp_path / "spool"
    uuid = new_job(server.url, token)
    other = new_job(server.url, token)
    spooled(spool, uuid, "start", "--build", "7")
    spooled(spool, other, "start")
    ok = tmp_path / "status.json"
    ok.write_text('{"version": 1, "status": "OK"}')
    done = run(
        server.url, token, "job", "finish", uuid, "--status-file", str(ok), "--spool", str(spool)
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{uuid} FINISHED\n"
    assert "delivered" in done.stderr
    assert history(server.url, token, uuid) == [
        ("SCHEDULED", "accepted"),
        ("RUNNING", "accepted"),
        ("FINISHED", "accepted"),
    ]
    assert len(waiting(spool)) == 1, "another job's report waits for the flush"
    assert show(server.url, token, other)["state"] == "SCHEDULED"


def test_a_report_waits_behind_its_jobs_reports_while_a_flush_holds_the_spool(
    server: LiveServer, tmp_path: Path
) -> None:
    token = server.tokens["both"]
    spool = tmp_path / "spool"
    uuid = new_job(server.url, token)
    spooled(spool, uuid, "start")
    with (spool / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        began = time.monotonic()
        done = run(
            server.url, token, "job", "cancel", uuid, "--spool", str(spool), "--retry-for", "1"
        )
        waited = time.monotonic() - began
    assert done.returncode == 0, done.stderr
    assert "report saved to" in done.stderr
    assert waited >= 1, "it waited for the lock for the retry time"
    assert show(server.url, token, uuid)["state"] == "SCHEDULED", "nothing overtook"
    flushed = run(server.url, token, "spool", "flush", str(spool))
    assert flushed.returncode == 0, flushed.stderr
    assert history(server.url, token, uuid) == [
        ("SCHEDULED", "accepted"),
        ("RUNNING", "accepted"),
        ("CANCELLED", "accepted"),
    ]


def test_reports_stay_while_the_token_is_refused_or_the_server_fails(
    server: LiveServer, tmp_path: Path, failing_server: str
) -> None:
    token = server.tokens["both"]
    spool = tmp_path / "spool"
    uuids = [new_job(server.url, token) for _ in range(2)]
    for uuid in uuids:
        spooled(spool, uuid, "start")
    saved = waiting(spool)
    attempts = {
        "unknown token": (server.url, "execdb_not_a_token", 3),
        "revoked token": (server.url, server.tokens["revoked"], 3),
        "token without the report scope": (server.url, server.tokens["create"], 3),
        "server answering 500": (failing_server, token, 4),
        "nothing listening": (unused_url(), token, 4),
    }
    for what, (url, who, code) in attempts.items():
        flushed = run(url, who, "spool", "flush", str(spool), "--retry-for", "0.2")
        assert flushed.returncode == code, (what, flushed.stderr)
        assert "2 report(s) kept" in flushed.stderr, what
        assert waiting(spool) == saved, what
        assert set_aside(spool) == [], what
    assert [show(server.url, token, u)["state"] for u in uuids] == ["SCHEDULED"] * 2
    flushed = run(server.url, token, "spool", "flush", str(spool))
    assert flushed.returncode == 0, flushed.stderr
    assert [show(server.url, token, u)["state"] for u in uuids] == ["RUNNING"] * 2


def test_a_report_refused_for_its_token_or_a_failing_server_is_spooled(
    server: LiveServer, tmp_path: Path, failing_server: str
) -> None:
    token = server.tokens["both"]
    spool = tmp_path / "spool"
    uuid = new_job(server.url, token, start=True)
    bad_token = run(
        server.url,
        server.tokens["create"],
        "job",
        "crash",
        uuid,
        "--cause",
        "koji.timeout",
        "--spool",
        str(spool),
    )
    failing = run(
        failing_server,
        token,
        "job",
        "cancel",
        new_job(server.url, token),
        "--spool",
        str(spool),
        "--retry-for",
        "0.2",
    )
    assert bad_token.returncode == 3, "the build step fails: the token must be fixed"
    assert "refused (403)" in bad_token.stderr
    assert failing.returncode == 0, failing.stderr
    assert len(waiting(spool)) == 2
    flushed = run(server.url, token, "spool", "flush", str(spool))
    assert flushed.returncode == 0, flushed.stderr
    assert show(server.url, token, uuid)["cause"] == "koji.timeout"


def test_refused_reports_are_set_aside_with_the_servers_word_and_can_be_retried(
    server: LiveServer, tmp_path: Path
) -> None:
    token = server.tokens["both"]
    spool = tmp_path / "spool"
    ok = tmp_path / "status.json"
    ok.write_text('{"version": 1, "status": "OK"}')
    late, fine = new_job(server.url, token), new_job(server.url, token)
    spooled(spool, "01a22016-e421-76f8-983a-2086a5386e78", "start")  # 404: no such job
    spooled(spool, late, "finish", "--status-file", str(ok))  # 409: SCHEDULED -> FINISHED
    spooled(spool, fine, "crash", "--cause", "Not A Code")  # 400
    spooled(spool, fine, "start")
    names = waiting(spool)
    flushed = run(server.url, token, "spool", "flush", str(spool))
    assert flushed.returncode == 3, flushed.stderr
    assert flushed.stdout == f"delivered {names[3]}\n"
    assert set_aside(spool) == names[:3]
    why = [(spool / "failed" / f"{n}.error").read_text() for n in names[:3]]
    assert why[0].startswith("refused (404): ")
    assert why[1].startswith("refused (409): ")
    assert why[2].startswith("refused (400): cause:")
    assert "execdb spool retry" in flushed.stderr
    again = run(server.url, token, "spool", "flush", str(spool))
    assert (again.returncode, again.stdout) == (0, "")
    assert "3 report(s) set aside" in again.stderr, "a reminder, each time"

    # Once the job can take it, the refused FINISHED goes through.
    assert run(server.url, token, "job", "start", late).returncode == 0
    retried = run(server.url, token, "spool", "retry", str(spool), names[1])
    assert retried.returncode == 0, retried.stderr
    assert retried.stdout == f"delivered {names[1]}\n"
    assert history(server.url, token, late) == [
        ("SCHEDULED", "accepted"),
        ("FINISHED", "refused"),
        ("RUNNING", "accepted"),
        ("FINISHED", "accepted"),
    ]
    unknown = run(server.url, token, "spool", "retry", str(spool), "nope.json")
    assert unknown.returncode == 2
    assert "nope.json" in unknown.stderr
    rest = run(server.url, token, "spool", "retry", str(spool))
    assert rest.returncode == 3, "refused again"
    assert set_aside(spool) == [names[0], names[2]]
    assert waiting(spool) == []


def test_files_that_are_no_reports_are_set_aside_and_the_rest_delivered(
    server: LiveServer, tmp_path: Path
) -> None:
    token = server.tokens["both"]
    spool = tmp_path / "spool"
    uuid = new_job(server.url, token)
    spool.mkdir()
    (spool / "00000000000000000001-1-truncated.json").write_text('{"uuid": "01a2')
    (spool / "00000000000000000002-1-list.json").write_text("[1, 2]")
    (spool / "00000000000000000003-1-nobody.json").write_text('{"uuid": "x", "body": {}}')
    os.mkfifo(spool / "00000000000000000004-1-fifo.json")
    (spool / "00000000000000000005-1-dir.json").mkdir()
    spooled(spool, uuid, "start")
    flushed = run(server.url, token, "spool", "flush", str(spool), timeout=20)
    assert flushed.returncode == 1, flushed.stderr
    assert flushed.stdout.count("delivered") == 1
    assert show(server.url, token, uuid)["state"] == "RUNNING"
    assert waiting(spool) == []
    assert len(set_aside(spool)) == 5
    assert flushed.stderr.count("not a spooled report") == 5
    assert "it is a FIFO" in flushed.stderr
    assert "not JSON" in flushed.stderr


def test_two_flushes_at_once_deliver_each_report_once(server: LiveServer, tmp_path: Path) -> None:
    token = server.tokens["both"]
    spool = tmp_path / "spool"
    uuids = [new_job(server.url, token) for _ in range(25)]
    spool.mkdir()
    for n, uuid in enumerate(uuids):  # what `job start --spool` writes, without 25 commands
        body = json.dumps({"uuid": uuid, "body": {"state": "RUNNING"}})
        (spool / f"{n + 1:020d}-1-{uuid}.json").write_text(body)
    with (spool / ".lock").open("w") as lock:  # both start before either can deliver
        fcntl.flock(lock, fcntl.LOCK_EX)
        flushes = [start(server.url, token, "spool", "flush", str(spool)) for _ in range(2)]
        time.sleep(1)
        assert [f.poll() for f in flushes] == [None, None], "a flush waits for the other"
    outputs = [f.communicate(timeout=60) for f in flushes]
    assert [f.returncode for f in flushes] == [0, 0], [err for _, err in outputs]
    assert sum(out.count("delivered") for out, _ in outputs) == 25
    for uuid in uuids:
        assert history(server.url, token, uuid) == [
            ("SCHEDULED", "accepted"),
            ("RUNNING", "accepted"),
        ]


def test_spooled_files_are_whole_and_leave_no_temporary_files(
    server: LiveServer, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    uuid = new_job(server.url, server.tokens["both"])
    spooled(spool, uuid, "crash", "--details", "x" * 100_000)
    [name] = waiting(spool)
    saved = json.loads((spool / name).read_text())
    assert saved["uuid"] == uuid
    assert len(saved["body"]["details"]) <= 65536, "cut before it is saved"
    assert sorted(p.name for p in spool.iterdir()) == [name]
