"""The executor's side of the `execdb` command, through its real entry point."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.executor import EXECDB, environment, new_job, run, show, unused_url
from tests.live import LiveServer

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def status_file(tmp_path: Path, doc: dict[str, object]) -> str:
    path = tmp_path / "status.json"
    path.write_text(json.dumps(doc))
    return str(path)


def test_a_run_reported_from_its_status_file(server: LiveServer, tmp_path: Path) -> None:
    token = server.tokens["both"]
    made = run(
        server.url,
        token,
        "job",
        "create",
        "--task",
        "rpmlint",
        "--item",
        "foo-1.0",
        "--item-type",
        "koji_build",
        "--arch",
        "x86_64",
        "-q",
    )
    assert made.returncode == 0, made.stderr
    uuid = made.stdout.strip()
    started = run(server.url, token, "job", "start", uuid, "--builder", "x86_64", "--build", "7")
    fault = {
        "version": 1,
        "status": "FAULT",
        "blame": "third_party",
        "cause": "koji.timeout",
        "details": "no answer",
        "log": "/srv/log",
    }
    finished = run(
        server.url,
        token,
        "job",
        "finish",
        uuid,
        "--status-file",
        status_file(tmp_path, fault),
        "--exit-code",
        "1",
    )
    shown = run(server.url, token, "job", "show", uuid)
    events = run(server.url, token, "job", "events", uuid)
    listed = run(server.url, token, "jobs", "--state", "crashed", "--json")
    assert [started.returncode, finished.returncode, shown.returncode] == [0, 0, 0]
    job = json.loads(shown.stdout)
    assert (job["state"], job["blame"], job["cause"]) == ("CRASHED", "THIRD_PARTY", "koji.timeout")
    assert job["executor"] == {"name": socket.gethostname(), "builder": "x86_64", "build": 7}
    assert '"/srv/log"' in job["details"], "unknown keys of the status file are kept"
    assert events.stdout.count("accepted") == 3
    assert [j["uuid"] for j in json.loads(listed.stdout)] == [uuid]


def test_no_status_file_is_a_crash_that_says_so(server: LiveServer, tmp_path: Path) -> None:
    token = server.tokens["both"]
    uuid = run(
        server.url, token, "job", "create", "--task", "t", "--item", "i", "--item-type", "k", "-q"
    ).stdout.strip()
    run(server.url, token, "job", "start", uuid)
    done = run(
        server.url,
        token,
        "job",
        "finish",
        uuid,
        "--status-file",
        str(tmp_path / "missing.json"),
        "--exit-code",
        "137",
    )
    job = json.loads(run(server.url, token, "job", "show", uuid).stdout)
    assert done.returncode == 0, done.stderr
    assert (job["state"], job["cause"]) == ("CRASHED", "status_file.missing")
    assert "137" in job["details"]


KOJI_TRACEBACK = """\
Traceback (most recent call last):
  File "/usr/lib/python3.12/site-packages/libtaskotron/ext/fedora/koji_utils.py", line 101
requests.exceptions.ReadTimeout: HTTPSConnectionPool(host='koji.fedoraproject.org', port=443): \
Read timed out. (read timeout=43200)
"""


def test_a_run_without_a_status_file_is_classified_from_its_log(
    server: LiveServer, tmp_path: Path
) -> None:
    token = server.tokens["both"]
    uuid = new_job(server.url, token, start=True)
    log = tmp_path / "runtask.log"
    log.write_text("".join(f"line {n}\n" for n in range(100_000)) + KOJI_TRACEBACK)
    done = run(
        server.url,
        token,
        "job",
        "finish",
        uuid,
        "--status-file",
        str(tmp_path / "missing.json"),
        "--exit-code",
        "1",
        "--log",
        str(log),
    )
    assert done.returncode == 0, done.stderr
    job = json.loads(run(server.url, token, "job", "show", uuid).stdout)
    assert (job["state"], job["blame"], job["cause"]) == ("CRASHED", "THIRD_PARTY", "koji.timeout")
    assert (job["reported_cause"], job["classified_by"]) == ("status_file.missing", "rules")
    with server.client() as client:
        kept = client.get(f"/api/v1/jobs/{uuid}/log").text
    assert kept.endswith(KOJI_TRACEBACK)
    assert len(kept.encode()) <= 256 * 1024
    assert kept.startswith("line ")  # the client cut on a line boundary; the server kept it


def test_a_crash_with_an_unreadable_log_is_reported_without_it(
    server: LiveServer, tmp_path: Path
) -> None:
    token = server.tokens["both"]
    uuid = new_job(server.url, token, start=True)
    done = run(
        server.url, token, "job", "crash", uuid, "--cause", "task.exception", "--log", str(tmp_path)
    )
    assert done.returncode == 0, done.stderr
    assert "the log" in done.stderr
    assert "a directory" in done.stderr
    job = json.loads(run(server.url, token, "job", "show", uuid).stdout)
    assert (job["state"], job["cause"], job["rules_version"]) == ("CRASHED", "task.exception", None)


def test_exit_codes(server: LiveServer) -> None:
    token = server.tokens["both"]
    uuid = run(
        server.url, token, "job", "create", "--task", "t", "--item", "i", "--item-type", "k", "-q"
    ).stdout.strip()
    usage = run(server.url, token, "job", "create", "--item", "i")
    refused = run(server.url, token, "job", "crash", uuid, "--cause", "Not A Code")
    wrong_token = run(server.url, server.tokens["create"], "job", "cancel", uuid)
    nowhere = unused_url()
    unreachable = run(nowhere, token, "job", "start", uuid, "--retry-for", "1")
    assert usage.returncode == 2
    assert (refused.returncode, wrong_token.returncode) == (3, 3)
    assert "cause:" in refused.stderr
    assert "report" in wrong_token.stderr
    assert unreachable.returncode == 4
    tried = re.search(r"failed for ([0-9.]+) s", unreachable.stderr)
    assert tried, unreachable.stderr
    assert 1 <= float(tried[1]) < 5, "it tried for the retry time, and says so"


def test_spooled_reports_are_delivered_later_in_order_once(
    server: LiveServer, tmp_path: Path
) -> None:
    token = server.tokens["both"]
    uuid = run(
        server.url, token, "job", "create", "--task", "t", "--item", "i", "--item-type", "k", "-q"
    ).stdout.strip()
    spool = tmp_path / "spool"
    nowhere = unused_url()
    ok = status_file(tmp_path, {"version": 1, "status": "OK"})
    saved = [
        run(nowhere, token, "job", "start", uuid, "--spool", str(spool), "--retry-for", "0.2"),
        run(
            nowhere,
            token,
            "job",
            "finish",
            uuid,
            "--status-file",
            ok,
            "--spool",
            str(spool),
            "--retry-for",
            "0.2",
        ),
    ]
    assert [r.returncode for r in saved] == [0, 0], [r.stderr for r in saved]
    assert len(list(spool.glob("*.json"))) == 2
    flushed = run(server.url, token, "spool", "flush", str(spool))
    again = run(server.url, token, "spool", "flush", str(spool))
    events = json.loads(run(server.url, token, "job", "events", uuid, "--json").stdout)
    assert flushed.returncode == 0, flushed.stderr
    assert flushed.stdout.count("delivered") == 2
    assert again.stdout == "", "nothing is sent twice"
    assert [e["to_state"] for e in events] == ["SCHEDULED", "RUNNING", "FINISHED"]
    assert [e["outcome"] for e in events] == ["accepted"] * 3


def test_the_executor_commands_load_none_of_the_server(server: LiveServer) -> None:
    """They run once per build step: the server's stack would only slow their start."""
    probe = (
        "import sys\n"
        "from execdb.cli.main import main\n"
        "code = main(['job', 'show', sys.argv[1]])\n"
        "heavy = {'fastapi', 'sqlalchemy', 'uvicorn', 'pydantic', 'alembic'} & set(sys.modules)\n"
        "print(sorted(heavy))\n"
        "sys.exit(code)\n"
    )
    uuid = run(
        server.url,
        server.tokens["both"],
        "job",
        "create",
        "--task",
        "t",
        "--item",
        "i",
        "--item-type",
        "k",
        "-q",
    ).stdout.strip()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXECDB_")}
    env |= {"EXECDB_URL": server.url, "EXECDB_TOKEN": server.tokens["both"]}
    done = subprocess.run(
        [sys.executable, "-c", probe, uuid], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("[]"), done.stdout


def test_heartbeat_and_reschedule_from_the_command_line(server: LiveServer) -> None:
    token = server.tokens["admin"]
    made = run(
        server.url, token, "job", "create", "--task", "t", "--item", "i", "--item-type", "x", "-q"
    )
    assert made.returncode == 0, made.stderr
    uuid = made.stdout.strip()
    early = run(server.url, token, "job", "heartbeat", uuid)
    assert early.returncode == 3  # not RUNNING yet: refused
    assert "only a RUNNING job sends heartbeats" in early.stderr
    assert run(server.url, token, "job", "start", uuid).returncode == 0
    beat = run(server.url, token, "job", "heartbeat", uuid)
    assert beat.returncode == 0, beat.stderr
    assert beat.stdout.startswith(f"{uuid} RUNNING 20")
    # No status file: CRASHED with status_file.missing, which may be run again.
    finished = run(server.url, token, "job", "finish", uuid, "--status-file", "/nonexistent")
    assert finished.returncode == 0, finished.stderr
    first = run(server.url, token, "job", "reschedule", uuid)
    assert first.returncode == 0, first.stderr
    new, state, _, attempt, _ = first.stdout.split()
    assert (state, attempt) == ("SCHEDULED", "2")
    again = run(server.url, token, "job", "reschedule", uuid)
    assert again.stdout == first.stdout  # the same attempt, not a second one
    history = run(server.url, token, "job", "events", uuid).stdout.splitlines()
    assert f"CRASHED -> rescheduled as {new}" in history[-1]
    assert run(server.url, token, "job", "start", new).returncode == 0
    assert (
        run(server.url, token, "job", "finish", new, "--status-file", "/nonexistent").returncode
        == 0
    )
    assert run(server.url, token, "job", "cancel", new).returncode == 3


def finish(server: LiveServer, uuid: str, path: Path | str, *more: str, timeout: float = 60) -> str:
    """`job finish` from the status file at `path`; the job's state once it is done."""
    token = server.tokens["both"]
    done = run(
        server.url, token, "job", "finish", uuid, "--status-file", str(path), *more, timeout=timeout
    )
    assert done.returncode == 0, done.stderr
    return str(show(server.url, token, uuid)["state"])


@pytest.mark.parametrize("cause", ["Koji.Timeout", "koji timeout", "k" * 200, "koji.timeout\n"])
def test_a_malformed_cause_still_ends_the_job(
    server: LiveServer, tmp_path: Path, cause: str
) -> None:
    uuid = new_job(server.url, server.tokens["both"], start=True)
    fault = {"version": 1, "status": "FAULT", "blame": "TASK", "cause": cause, "details": "boom"}
    assert finish(server, uuid, status_file(tmp_path, fault), "--exit-code", "1") == "CRASHED"
    job = show(server.url, server.tokens["both"], uuid)
    assert job["cause"] == "status_file.invalid"
    assert f"cause: {json.dumps(cause)}" in job["details"], "the runner's cause, as written"
    assert 'blame: "TASK"' in job["details"]
    assert "details:\nboom" in job["details"]


def test_a_status_file_whose_report_outgrows_the_body_limit_is_cut_not_refused(
    server: LiveServer, tmp_path: Path
) -> None:
    token = server.tokens["both"]
    long = {"version": 1, "status": "OK", "details": "HEAD" + "x" * 1_048_492 + "TAIL"}
    quoted = {"version": 1, "status": "OK"} | {f"k{i}": '"' * 80 for i in range(5_000)}
    for doc, more in [(long, ["--exit-code", "1"]), (quoted, [])]:
        path = status_file(tmp_path, doc)
        assert 800_000 < Path(path).stat().st_size < 1024 * 1024
        uuid = new_job(server.url, token, start=True)
        assert finish(server, uuid, path, *more) == "FINISHED"
        details = show(server.url, token, uuid)["details"]
        assert len(details.encode()) <= 65536
        assert "bytes omitted by ExecDB" in details
    assert details.startswith('{"k0": "\\"')


def test_text_that_is_not_unicode_is_sent_with_replacement_characters(
    server: LiveServer, tmp_path: Path
) -> None:
    token = server.tokens["both"]
    surrogate = tmp_path / "status.json"
    surrogate.write_text(
        '{"version": 1, "status": "FAULT", "cause": "koji.timeout", "details": "a\\ud800b"}'
    )
    from_file = new_job(server.url, token, start=True)
    assert finish(server, from_file, surrogate) == "CRASHED"
    from_argv = new_job(server.url, token, start=True)
    crashed = run(server.url, token, "job", "crash", from_argv, "--details", b"a\xffb")
    spooled = new_job(server.url, token, start=True)
    spool = str(tmp_path / "spool")
    saved = run(
        unused_url(),
        token,
        "job",
        "crash",
        spooled,
        "--details",
        b"a\xffb",
        "--spool",
        spool,
        "--retry-for",
        "0.2",
    )
    flushed = run(server.url, token, "spool", "flush", spool)
    assert [crashed.returncode, saved.returncode, flushed.returncode] == [0, 0, 0], [
        crashed.stderr,
        saved.stderr,
        flushed.stderr,
    ]
    for uuid in (from_file, from_argv, spooled):
        assert show(server.url, token, uuid)["details"] == "a\ufffdb"


def test_only_regular_files_are_read_and_big_ones_only_in_part(
    server: LiveServer, tmp_path: Path
) -> None:
    token = server.tokens["both"]
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    uuid = new_job(server.url, token, start=True)
    assert finish(server, uuid, fifo, timeout=20) == "CRASHED"
    assert "it is a FIFO, not a regular file" in show(server.url, token, uuid)["details"]
    huge = tmp_path / "huge.log"
    with huge.open("wb") as f:
        f.write(b"it began")
        f.truncate(100 * 1024 * 1024)
        f.seek(0, os.SEEK_END)
        f.write(b"and it died")
    expected = {
        str(fifo): "was not read: it is a FIFO, not a regular file",
        "/dev/zero": "was not read: it is a character device, not a regular file",
        str(tmp_path / "missing"): "could not be read: No such file or directory",
        str(huge): "bytes omitted by ExecDB",
    }
    for path, says in expected.items():
        uuid = new_job(server.url, token, start=True)
        crashed = run(
            server.url,
            token,
            "job",
            "crash",
            uuid,
            "--cause",
            "task.exception",
            "--details",
            f"@{path}",
            timeout=20,
        )
        assert crashed.returncode == 0, crashed.stderr
        job = show(server.url, token, uuid)
        assert (job["state"], job["cause"]) == ("CRASHED", "task.exception")
        assert says in job["details"]
    assert job["details"].startswith("it began")
    assert job["details"].endswith("and it died")


def made(server: LiveServer, task: str, item: str) -> str:
    done = run(
        server.url, server.tokens["both"], "job", "create", "--task", task, "--item", item,
        "--item-type", "koji_build", "-q",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_jobs_has_a_header_and_finds_by_pattern(server: LiveServer) -> None:
    token = server.tokens["both"]
    bar = made(server, "rpmlint", "bar-1.0-1.fc40")
    made(server, "depcheck", "baz-2.0-1.fc40")
    listed = run(server.url, token, "jobs")
    header, *rows = listed.stdout.splitlines()
    assert header.split()[:5] == ["UUID", "STATE", "ATTEMPT", "CREATED", "(UTC)"]
    assert len(rows) == 2
    assert rows[-1].split()[:4] == [bar, "SCHEDULED", "1", time.strftime("%Y-%m-%d", time.gmtime())]
    by_item = run(server.url, token, "jobs", "--item-like", "bar*")
    by_task = run(server.url, token, "jobs", "--task-like", "RPM*,nothing*")
    assert [line.split()[0] for line in by_item.stdout.splitlines()[1:]] == [bar]
    assert [line.split()[0] for line in by_task.stdout.splitlines()[1:]] == [bar]
    glob = run(server.url, token, "jobs", "--item", "bar*")
    assert glob.returncode == 2
    assert "--item-like" in glob.stderr
    assert glob.stdout == ""
    nothing = run(server.url, token, "jobs", "--task", "nothing")
    assert (nothing.stdout.splitlines()[1:], nothing.stderr) == ([], "no jobs found\n")


@pytest.mark.usefixtures("backend")
def test_causes_need_no_server_and_take_the_deployment_s_catalogue(tmp_path: Path) -> None:
    site = tmp_path / "causes.toml"
    site.write_text(
        '["site.vpn_down"]\nblame = "TASKOTRON"\nretryable = true\n'
        'description = "The lab VPN was down."\n'
    )
    env = environment(unused_url(), "") | {"HOME": str(tmp_path), "EXECDB_CAUSES_FILE": str(site)}
    done = subprocess.run(
        [sys.executable, "-m", "execdb.cli.main", "causes", "--json"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    codes = {c["code"]: c for c in json.loads(done.stdout)}
    assert codes["koji.timeout"]["blame"] == "THIRD_PARTY"
    assert codes["site.vpn_down"]["retryable"] is True


def test_the_server_s_causes_on_request(server: LiveServer) -> None:
    done = run(unused_url(), "", "causes", "--server", server.url)
    assert done.returncode == 0, done.stderr
    assert "koji.timeout" in done.stdout


def test_events_show_the_cause(server: LiveServer) -> None:
    token = server.tokens["both"]
    uuid = new_job(server.url, token, start=True)
    assert run(server.url, token, "job", "crash", uuid, "--cause", "koji.timeout").returncode == 0
    header, *rows = run(server.url, token, "job", "events", uuid).stdout.splitlines()
    assert "CAUSE" in header.split()
    assert "koji.timeout" in rows[-1].split()
    assert "koji.timeout" not in rows[0].split()


def test_rescheduling_a_finished_job_names_force(server: LiveServer, tmp_path: Path) -> None:
    token = server.tokens["admin"]
    uuid = new_job(server.url, token, start=True)
    ok = status_file(tmp_path, {"version": 1, "status": "OK"})
    assert run(server.url, token, "job", "finish", uuid, "--status-file", ok).returncode == 0
    refused = run(server.url, token, "job", "reschedule", uuid)
    assert refused.returncode == 3
    assert f"execdb job reschedule {uuid} --force" in refused.stderr
    forced = run(server.url, token, "job", "reschedule", uuid, "--force")
    assert forced.returncode == 0, forced.stderr


def test_the_server_is_named_by_server_and_still_by_url(server: LiveServer) -> None:
    token = server.tokens["both"]
    uuid = new_job(server.url, token)
    nowhere = unused_url()
    for option in ("--server", "--url"):
        shown = run(nowhere, token, "job", "show", uuid, option, server.url)
        assert shown.returncode == 0, shown.stderr
    helped = run(server.url, token, "job", "start", "--help")
    assert "--server URL" in helped.stdout
    assert "--url" not in helped.stdout.replace("--executor-url", "")


@pytest.mark.parametrize(
    ("variables", "options", "name"),
    [
        ({}, (), socket.gethostname()),
        ({"BUILDBOT_BUILDERNAME": "runtask"}, (), "buildbot"),
        ({"BUILDBOT_BUILDERNAME": "runtask"}, ("--executor-name", "jenkins"), "jenkins"),
    ],
)
def test_job_start_names_the_executor(
    server: LiveServer, variables: dict[str, str], options: tuple[str, ...], name: str
) -> None:
    token = server.tokens["both"]
    uuid = new_job(server.url, token)
    env = environment(server.url, token)
    env = {k: v for k, v in env.items() if not k.startswith("BUILDBOT_")} | variables
    done = subprocess.run(
        [EXECDB, "job", "start", uuid, *options],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert show(server.url, token, uuid)["executor"] == {"name": name}


@pytest.mark.usefixtures("backend")
def test_causes_on_a_light_install_are_the_shipped_ones(tmp_path: Path) -> None:
    """An executor with httpx alone cannot read settings: it says so, and lists the rest."""
    probe = (
        "import sys\n"
        "for name in ('pydantic', 'pydantic_settings', 'sqlalchemy', 'fastapi'):\n"
        "    sys.modules[name] = None\n"
        "from execdb.cli.main import main\n"
        "sys.exit(main(['causes', '--json']))\n"
    )
    env = environment(unused_url(), "") | {"HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "koji.timeout" in {c["code"] for c in json.loads(done.stdout)}
    assert "the shipped catalogue only" in done.stderr


@pytest.mark.usefixtures("backend")
def test_a_spooled_report_says_how_long_it_really_tried(tmp_path: Path) -> None:
    began = time.monotonic()
    done = run(
        unused_url(), "t", "job", "start", "0190a1b2-0000-7000-8000-000000000000",
        "--retry-for", "1.5", "--spool", str(tmp_path / "spool"),
    )  # fmt: skip
    took = time.monotonic() - began
    assert done.returncode == 0, done.stderr
    tried = re.search(r"failed for ([0-9.]+) s", done.stderr)
    assert tried, done.stderr
    assert 1.5 <= float(tried[1]) <= took
    assert "report saved to" in done.stderr
