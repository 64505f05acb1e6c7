"""`execdb job run`: a job's whole life from one build step, through the real command."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.executor import EXECDB, environment, history, new_job, run, show, unused_url
from tests.live import LiveServer

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

KOJI_TIMEOUT = (
    "Traceback (most recent call last):\n"
    '  File "/usr/lib/python3.12/site-packages/libtaskotron/ext/fedora/koji_utils.py", line 101\n'
    "requests.exceptions.ReadTimeout: HTTPSConnectionPool(host='koji.fedoraproject.org', "
    "port=443): Read timed out. (read timeout=43200)\n"
)


def python(code: str) -> list[str]:
    """A command that runs `code` (with its arguments after it)."""
    return [sys.executable, "-c", code]


def job_run(
    server: LiveServer, uuid: str, *options: str, command: list[str], **env: str
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [EXECDB, "job", "run", uuid, *options, "--", *command],
        env=environment(server.url, server.tokens["both"]) | env,
        capture_output=True,
        timeout=60,
    )


def test_a_run_passes_its_output_through_and_ends_from_its_status_file(
    server: LiveServer, tmp_path: Path
) -> None:
    uuid = new_job(server.url, server.tokens["both"])
    status = tmp_path / "status.json"
    writes = (
        "import sys, pathlib\n"
        "sys.stdout.buffer.write(b'out \\xff\\x00 bytes\\n'); sys.stdout.flush()\n"
        "sys.stderr.buffer.write(b'err line\\n')\n"
        'pathlib.Path(sys.argv[1]).write_text(\'{"version": 1, "status": "OK"}\')\n'
    )
    done = job_run(
        server,
        uuid,
        "--status-file",
        str(status),
        "--builder",
        "x86_64",
        "--build",
        "7",
        command=[*python(writes), str(status)],
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"out \xff\x00 bytes\n", "the command's output, unchanged, and only it"
    assert done.stderr.startswith(f"{uuid} RUNNING\n".encode())
    assert b"err line\n" in done.stderr
    assert done.stderr.endswith(f"{uuid} FINISHED\n".encode())
    job = show(server.url, server.tokens["both"], uuid)
    assert job["state"] == "FINISHED"
    assert job["executor"] == {"name": socket.gethostname(), "builder": "x86_64", "build": 7}
    assert history(server.url, server.tokens["both"], uuid) == [
        ("SCHEDULED", "accepted"),
        ("RUNNING", "accepted"),
        ("FINISHED", "accepted"),
    ]


def test_a_failing_command_is_a_crash_classified_from_its_output(server: LiveServer) -> None:
    uuid = new_job(server.url, server.tokens["both"])
    # Output first, then (once it is surely read) the traceback on stderr: the two pipes are
    # read apart, so only what comes well apart keeps its order in the log.
    prints = (
        "import sys, time\nprint('x' * 1000 + '\\n' * 3000, flush=True)\ntime.sleep(0.5)\n"
        f"sys.stderr.write({KOJI_TIMEOUT!r})\n"
    )
    done = job_run(server, uuid, command=[*python(prints + "sys.exit(3)")])
    assert done.returncode == 3, "the command's own exit code"
    job = show(server.url, server.tokens["both"], uuid)
    assert (job["state"], job["blame"], job["cause"]) == ("CRASHED", "THIRD_PARTY", "koji.timeout")
    assert job["classified_by"] == "rules"
    assert "the command exited with code 3" in job["details"]
    with server.client() as client:
        assert client.get(f"/api/v1/jobs/{uuid}/log").text.endswith(KOJI_TIMEOUT)


def test_a_long_output_is_passed_through_whole_and_its_tail_sent(server: LiveServer) -> None:
    uuid = new_job(server.url, server.tokens["both"])
    lines = "import sys\nfor n in range(200_000): print(f'line {n}')\nsys.exit(1)\n"
    done = job_run(server, uuid, command=python(lines))
    assert done.returncode == 1
    assert done.stdout == b"".join(f"line {n}\n".encode() for n in range(200_000))
    with server.client() as client:
        kept = client.get(f"/api/v1/jobs/{uuid}/log").text
    assert kept.endswith("line 199999\n")
    assert kept.startswith("line "), "cut on a line boundary"
    assert 200 * 1024 < len(kept.encode()) <= 256 * 1024


def test_heartbeats_go_out_while_the_command_runs(server: LiveServer) -> None:
    uuid = new_job(server.url, server.tokens["both"])
    done = job_run(
        server, uuid, "--heartbeat", "0.2", command=python("import time; time.sleep(1.5)")
    )
    assert done.returncode == 0, done.stderr
    job = show(server.url, server.tokens["both"], uuid)
    assert job["state"] == "FINISHED"
    assert job["heartbeat_at"] is not None
    assert job["heartbeat_at"] > job["started_at"]


def test_a_run_stopped_by_a_signal_forwards_it_and_reports_the_crash(
    server: LiveServer, tmp_path: Path
) -> None:
    uuid = new_job(server.url, server.tokens["both"])
    started = tmp_path / "started"
    sleeps = f"import pathlib, time\npathlib.Path({str(started)!r}).touch()\ntime.sleep(60)\n"
    stopped = subprocess.Popen(
        [EXECDB, "job", "run", uuid, "--", *python(sleeps)],
        env=environment(server.url, server.tokens["both"]),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    stopped.send_signal(signal.SIGTERM)
    _, err = stopped.communicate(timeout=30)
    assert stopped.returncode == 128 + signal.SIGTERM, err
    job = show(server.url, server.tokens["both"], uuid)
    assert job["state"] == "CRASHED"
    assert job["reported_cause"] == "executor.timeout"
    assert "stopped by SIGTERM, forwarded to the command" in job["details"]
    assert "killed by SIGTERM" in job["details"]


def test_a_runner_that_writes_its_fault_when_stopped_is_believed(
    server: LiveServer, tmp_path: Path
) -> None:
    uuid = new_job(server.url, server.tokens["both"])
    status = tmp_path / "status.json"
    fault = '{"version": 1, "status": "FAULT", "blame": "TASK", "cause": "task.timeout"}'
    handles = (
        "import pathlib, signal, sys, time\n"
        f"def stop(n, f):\n    pathlib.Path({str(status)!r}).write_text({fault!r}); sys.exit(5)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        f"pathlib.Path({str(tmp_path / 'started')!r}).touch()\n"
        "time.sleep(60)\n"
    )
    stopped = subprocess.Popen(
        [EXECDB, "job", "run", uuid, "--status-file", str(status), "--", *python(handles)],
        env=environment(server.url, server.tokens["both"]),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while not (tmp_path / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    stopped.send_signal(signal.SIGTERM)
    stopped.communicate(timeout=30)
    assert stopped.returncode == 5
    job = show(server.url, server.tokens["both"], uuid)
    assert (job["state"], job["blame"], job["cause"]) == ("CRASHED", "TASK", "task.timeout")
    assert "stopped by SIGTERM" in job["details"]


def test_a_command_killed_or_missing_is_a_crash_that_names_why(server: LiveServer) -> None:
    killed = new_job(server.url, server.tokens["both"])
    done = job_run(server, killed, command=["sh", "-c", "kill -9 $$"])
    assert done.returncode == 137
    assert "killed by SIGKILL" in show(server.url, server.tokens["both"], killed)["details"]

    missing = new_job(server.url, server.tokens["both"])
    done = job_run(server, missing, command=["/nonexistent/runtask"])
    assert done.returncode == 127
    job = show(server.url, server.tokens["both"], missing)
    assert job["state"] == "CRASHED"
    assert "could not be started: /nonexistent/runtask" in job["details"]


def test_a_refused_start_runs_nothing(server: LiveServer, tmp_path: Path) -> None:
    uuid = new_job(server.url, server.tokens["both"])
    assert run(server.url, server.tokens["both"], "job", "cancel", uuid).returncode == 0
    ran = tmp_path / "ran"
    done = job_run(server, uuid, command=["touch", str(ran)])
    assert done.returncode == 3
    assert b"CANCELLED" in done.stderr
    assert not ran.exists()


def test_executor_details_come_from_the_ci_variables(server: LiveServer) -> None:
    uuid = new_job(server.url, server.tokens["both"])
    jenkins = {
        "JENKINS_URL": "https://jenkins.example.org/",
        "BUILD_URL": "https://jenkins.example.org/job/rpmlint/12/",
        "NODE_NAME": "worker-3",
        "JOB_NAME": "rpmlint",
        "BUILD_NUMBER": "12",
    }
    done = job_run(server, uuid, "--worker", "given-wins", command=["true"], **jenkins)
    assert done.returncode == 0, done.stderr
    assert show(server.url, server.tokens["both"], uuid)["executor"] == {
        "name": "jenkins",
        "url": "https://jenkins.example.org/job/rpmlint/12/",
        "worker": "given-wins",
        "builder": "rpmlint",
        "build": 12,
    }


def test_with_execdb_unreachable_the_reports_wait_in_the_spool(
    server: LiveServer, tmp_path: Path
) -> None:
    token = server.tokens["both"]
    uuid = new_job(server.url, token)
    spool = tmp_path / "spool"
    done = subprocess.run(
        [EXECDB, "job", "run", uuid, "--spool", str(spool), "--retry-for", "0.2", "--", "true"],
        env=environment(unused_url(), token),
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert len(list(spool.glob("*.json"))) == 2
    assert run(server.url, token, "spool", "flush", str(spool)).returncode == 0
    assert show(server.url, token, uuid)["state"] == "FINISHED"


def test_no_command_is_a_usage_error(server: LiveServer) -> None:
    uuid = new_job(server.url, server.tokens["both"])
    done = run(server.url, server.tokens["both"], "job", "run", uuid)
    assert done.returncode == 2
    assert "no command given" in done.stderr
    assert json.loads(run(server.url, server.tokens["both"], "job", "show", uuid).stdout)[
        "state"
    ] == ("SCHEDULED")


def test_a_status_file_left_by_an_earlier_run_is_not_believed(
    server: LiveServer, tmp_path: Path
) -> None:
    uuid = new_job(server.url, server.tokens["both"])
    status = tmp_path / "status.json"
    status.write_text('{"version": 1, "status": "OK"}')
    done = job_run(server, uuid, "--status-file", str(status), command=["false"])
    assert done.returncode == 1
    job = show(server.url, server.tokens["both"], uuid)
    assert (job["state"], job["reported_cause"]) == ("CRASHED", "status_file.missing")
