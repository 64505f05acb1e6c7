"""The `execdb` command through its installed entry point, as an administrator runs it.

Every run gets an environment of its own: no EXECDB_* variable of the caller, and HOME in a
temporary directory, so nothing reads or writes the real home. Servers started here listen on
127.0.0.1 and are stopped (at worst killed) when their test ends.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from execdb import migrations
from execdb.config import Settings
from execdb.db import make_engine, utcnow
from execdb.services import Services
from tests.conftest import Databases
from tests.helpers import NEW_JOB

EXECDB = Path(sys.executable).parent / "execdb"
SECRET = re.compile(r"execdb_[A-Za-z0-9_-]{43}")
FAKE_SECRET = "execdb_notarealsecret" + "Q" * 22
DB_PASSWORD = "pw-never-shown-4711"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def environment(home: Path, **variables: str | Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("EXECDB_") and k not in {"XDG_DATA_HOME", "XDG_CONFIG_HOME"}
    }
    env["HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"  # so that nothing printed is lost when a server is stopped
    env.update({k: str(v) for k, v in variables.items()})
    return env


@dataclass(frozen=True)
class Execdb:
    """Runs `execdb` with a fixed environment and working directory."""

    env: dict[str, str]
    cwd: Path

    def using(self, **variables: str | Path) -> Execdb:
        return replace(self, env=self.env | {k: str(v) for k, v in variables.items()})

    def __call__(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(EXECDB), *args],
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def failed_cleanly(result: subprocess.CompletedProcess[str]) -> str:
    """The message of a command that failed with exit 1 and one line of explanation."""
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("execdb: "), result.stderr
    return lines[0]


def usage_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("usage: execdb"), result.stderr
    assert result.stdout == ""
    return result.stderr


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def execdb(tmp_path: Path, home: Path) -> Execdb:
    """`execdb` with no settings at all but a temporary HOME."""
    return Execdb(environment(home), tmp_path)


@pytest.fixture
def on_backend(backend: str, databases: Databases, execdb: Execdb, tmp_path: Path) -> Execdb:
    """`execdb` on a fresh, empty database: a PostgreSQL URL (with a password, which must never
    be shown), or the embedded SQLite database in a data directory that does not exist yet."""
    if backend == "postgres":
        url = make_url(databases.url("postgres")).set(password=DB_PASSWORD)
        return execdb.using(EXECDB_DATABASE_URL=url.render_as_string(hide_password=False))
    return execdb.using(EXECDB_DATA_DIR=tmp_path / "data")


# -- help and usage ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        ((), ["serve", "worker", "deliveries", "db", "token", "--config", "--version"]),
        (("serve",), ["--host", "--port", "--workers", "--no-worker"]),
        (("worker",), ["--once", "SIGTERM"]),
        (("deliveries", "retry"), ["UUID"]),
        (("db",), ["upgrade", "current"]),
        (("token",), ["create", "list", "revoke"]),
        (("token", "create"), ["--scope", "create", "report", "admin", "--quiet"]),
        (("token", "list"), ["--all"]),
        (("reclassify",), ["--since", "--until", "--dry-run", "--json", "--limit", "--after"]),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else None,
)
def test_help(execdb: Execdb, home: Path, args: tuple[str, ...], mentions: list[str]) -> None:
    result = execdb(*args, "--help")
    assert result.returncode == 0, result
    assert result.stdout.startswith(f"usage: {' '.join(('execdb', *args))} ")
    for word in mentions:
        assert word in result.stdout
    assert result.stderr == ""
    assert list(home.iterdir()) == [], "help touches no database"


def test_version(execdb: Execdb) -> None:
    result = execdb("--version")
    assert result.returncode == 0, result
    assert re.fullmatch(r"execdb \d+\.\d+\.\d+\S*\n", result.stdout)


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        ((), "required: COMMAND"),
        (("frobnicate",), "invalid choice: 'frobnicate'"),
        (("--frobnicate", "db", "current"), "unrecognized arguments: --frobnicate"),
        (("db",), "required: COMMAND"),
        (("db", "downgrade"), "invalid choice: 'downgrade'"),
        (("token", "create", "ci"), "the following arguments are required: --scope"),
        (("token", "create", "ci", "--scope", "root"), "invalid choice: 'root'"),
        (("token", "revoke"), "required: name"),
        (("serve", "--port", "high"), "invalid int value: 'high'"),
    ],
    ids=lambda v: " ".join(v) or "nothing" if isinstance(v, tuple) else None,
)
def test_usage_errors_exit_2(
    execdb: Execdb, home: Path, args: tuple[str, ...], complaint: str
) -> None:
    stderr = usage_error(execdb(*args))
    assert complaint in stderr
    assert list(home.iterdir()) == [], "a usage error touches no database"


# -- database schema -----------------------------------------------------------------------


def test_db_current_and_upgrade(backend: str, on_backend: Execdb, tmp_path: Path) -> None:
    if backend == "postgres":
        # A shared database is only migrated on request, and nothing uses it before.
        refused = failed_cleanly(on_backend("token", "list"))
        assert "not current; run `execdb db upgrade` first" in refused
        assert DB_PASSWORD not in refused
        assert "***" in refused

    before = on_backend("db", "current")
    assert before.returncode == 1, before
    assert "revision none, not current" in before.stdout

    upgraded = on_backend("db", "upgrade")
    assert upgraded.returncode == 0, upgraded
    assert re.search(r"is at revision \w+$", upgraded.stdout.strip())
    head = upgraded.stdout.split()[-1]

    after = on_backend("db", "current")
    assert after.returncode == 0, after
    assert after.stdout.strip().endswith(f"revision {head}, current")

    for result in (before, upgraded, after):
        assert DB_PASSWORD not in result.stdout + result.stderr
    if backend == "sqlite":
        assert (tmp_path / "data" / "execdb.sqlite").is_file()


# -- tokens --------------------------------------------------------------------------------


def migrate(url: str) -> None:
    engine = make_engine(Settings(database_url=url).effective_database_url)
    try:
        migrations.upgrade(engine)
    finally:
        engine.dispose()


def listed(result: subprocess.CompletedProcess[str]) -> list[list[str]]:
    """The lines of `token list`, split into words."""
    assert result.returncode == 0, result
    return [line.split() for line in result.stdout.splitlines()]


def test_token_create_list_revoke(backend: str, on_backend: Execdb, tmp_path: Path) -> None:
    if backend == "postgres":
        migrate(on_backend.env["EXECDB_DATABASE_URL"])
    else:
        assert not (tmp_path / "data").exists()

    created = on_backend("token", "create", "ci", "--scope", "report", "--scope", "create")
    assert created.returncode == 0, created
    announcement, secret = created.stdout.splitlines()
    assert "'ci'" in announcement
    assert "create, report" in announcement
    assert "only now" in announcement
    assert SECRET.fullmatch(secret), secret
    if backend == "sqlite":
        assert (tmp_path / "data" / "execdb.sqlite").is_file(), "created on first use"

    quiet = on_backend("token", "create", "-q", "trigger", "--scope", "admin")
    assert quiet.returncode == 0, quiet
    assert SECRET.fullmatch(quiet.stdout.rstrip("\n")), quiet.stdout
    secrets = {secret, quiet.stdout.strip()}
    assert len(secrets) == 2

    duplicate = failed_cleanly(on_backend("token", "create", "ci", "--scope", "admin"))
    assert "a token named 'ci' exists" in duplicate
    assert "revoke" in duplicate

    revoked = on_backend("token", "revoke", "ci")
    assert revoked.returncode == 0, revoked
    assert "revoked token 'ci'" in revoked.stdout

    listings = [on_backend("token", "list")]
    assert [words[:2] for words in listed(listings[-1])] == [["trigger", "admin"]]
    assert "revoked" not in listings[-1].stdout

    listings.append(on_backend("token", "list", "--all"))
    lines = listed(listings[-1])
    assert [words[:2] for words in lines] == [["ci", "create,report"], ["trigger", "admin"]]
    assert ["revoked" in words for words in lines] == [True, False]

    for result in (*listings, revoked):
        for shown in secrets:
            assert shown not in result.stdout + result.stderr, "a secret is shown only once"


def test_token_commands_say_which_database_they_used(
    backend: str, on_backend: Execdb, tmp_path: Path
) -> None:
    """A token made in another data directory than the server's is refused later: the
    command names its database, so that the mistake shows at once."""
    if backend == "postgres":
        migrate(on_backend.env["EXECDB_DATABASE_URL"])
        expected = make_url(on_backend.env["EXECDB_DATABASE_URL"]).render_as_string()
    else:
        expected = f"sqlite:///{tmp_path / 'data' / 'execdb.sqlite'}"
    created = on_backend("token", "create", "-q", "ci", "--scope", "report")
    assert created.returncode == 0, created
    assert created.stderr.splitlines() == [f"execdb: database: {expected}"]
    assert DB_PASSWORD not in created.stderr
    for args in (("token", "list"), ("token", "revoke", "ci"), ("deliveries", "retry")):
        done = on_backend(*args)
        assert done.returncode == 0, done
        assert done.stderr.splitlines() == [f"execdb: database: {expected}"], args
    elsewhere = on_backend.using(EXECDB_DATA_DIR=tmp_path / "other")
    if backend == "sqlite":
        unknown = failed_cleanly(elsewhere("token", "revoke", "ci"))
        assert str(tmp_path / "other" / "execdb.sqlite") in unknown


def test_token_errors(execdb: Execdb, tmp_path: Path) -> None:
    embedded = execdb.using(EXECDB_DATA_DIR=tmp_path / "data")
    bad_name = failed_cleanly(embedded("token", "create", "bad name", "--scope", "report"))
    assert "'bad name' is not a usable token name" in bad_name
    newline = failed_cleanly(embedded("token", "create", "bot\n", "--scope", "report"))
    assert "'bot\\n' is not a usable token name" in newline

    no_scope = usage_error(embedded("token", "create", "ci"))
    assert "the following arguments are required: --scope" in no_scope

    unknown = failed_cleanly(embedded("token", "revoke", "nobody"))
    assert "no active token named 'nobody'" in unknown


# -- the server ----------------------------------------------------------------------------


@dataclass
class Served:
    """An `execdb serve` process, its address and its output (in files, so it never blocks)."""

    process: subprocess.Popen[bytes]
    url: str
    stdout: Path
    stderr: Path

    def output(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")

    def wait_until_up(self, timeout: float = 30) -> None:
        port = self.url.rsplit(":", 1)[1]
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"execdb serve exited ({self.process.returncode}):\n{self.output()}")
            # The server's own word that it listens, so another server that happens to hold
            # the port cannot pass for it.
            if f"Uvicorn running on http://127.0.0.1:{port}" in self.output():
                try:
                    if get(f"{self.url}/healthz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
            if time.monotonic() > deadline:
                pytest.fail(f"execdb serve did not answer within {timeout}s:\n{self.output()}")
            time.sleep(0.05)

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, trust_env=False, **kwargs)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        return self.process.wait(timeout)


def get(url: str) -> httpx.Response:
    return httpx.get(url, timeout=5, trust_env=False)


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Start `execdb ARGS...` (which should serve on `port`) in the background."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(execdb: Execdb, *args: str, port: int) -> Served:
        n = len(processes)
        stdout, stderr = tmp_path / f"serve-{n}.out", tmp_path / f"serve-{n}.err"
        with stdout.open("wb") as out, stderr.open("wb") as err:
            process = subprocess.Popen(
                [str(EXECDB), *args],
                env=execdb.env,
                cwd=execdb.cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,  # a Ctrl-C meant for pytest is not for the server
            )
        processes.append(process)
        return Served(process, f"http://127.0.0.1:{port}", stdout, stderr)

    try:
        yield start
    finally:
        for process in processes:
            _terminate(process)


@pytest.mark.postgres
def test_serve_refuses_an_unmigrated_postgres_database(
    databases: Databases, execdb: Execdb
) -> None:
    url = make_url(databases.url("postgres")).set(password=DB_PASSWORD)
    on_postgres = execdb.using(EXECDB_DATABASE_URL=url.render_as_string(hide_password=False))
    started = time.monotonic()
    result = on_postgres("serve", "--port", str(free_port()), timeout=30)
    assert time.monotonic() - started < 15
    message = failed_cleanly(result)
    assert "not current; run `execdb db upgrade` first" in message
    assert DB_PASSWORD not in result.stdout + result.stderr


def create_token(data_dir: Path, name: str, *scopes: str) -> str:
    """A token's secret, made in the embedded database of `data_dir` without the CLI."""
    services = Services.build(Settings(data_dir=data_dir))
    try:
        migrations.upgrade(services.db.engine)
        return services.tokens.create(name, scopes, utcnow())[1]
    finally:
        services.db.close()


def assert_stopped_cleanly(served: Served, signum: int) -> None:
    started = time.monotonic()
    code = served.stop(signum)
    assert time.monotonic() - started < 15
    # uvicorn shuts down gracefully, then exits 0 or dies of the signal it caught.
    assert code in {0, -signum, 128 + signum}, code
    output = served.output()
    assert "Application shutdown complete" in output
    assert "Traceback" not in output
    assert "ERROR:" not in output


@pytest.mark.slow
def test_serve_on_the_embedded_database(
    execdb: Execdb, serve: Callable[..., Served], tmp_path: Path, home: Path
) -> None:
    data = tmp_path / "data"
    embedded = execdb.using(EXECDB_DATA_DIR=data)
    served = serve(embedded, "serve", "--port", str(port := free_port()), port=port)
    served.wait_until_up()
    assert (data / "execdb.sqlite").is_file()
    ready = get(f"{served.url}/readyz")
    assert ready.status_code == 200, ready.text

    # A token made by the command line while the server runs is good at once.
    secret = embedded("token", "create", "-q", "bot", "--scope", "create", "--scope", "report")
    assert secret.returncode == 0, secret
    headers = {"Authorization": f"Bearer {secret.stdout.strip()}"}
    with served.client(headers=headers) as client:
        created = client.post("/api/v1/jobs", json=NEW_JOB)
        assert created.status_code == 201, created.text
        job = f"/api/v1/jobs/{created.json()['uuid']}"
        running = client.patch(job, json={"state": "RUNNING", "executor": {"name": "bb"}})
        assert running.status_code == 200, running.text
        finished = client.patch(job, json={"state": "FINISHED"})
        assert finished.status_code == 200, finished.text
        assert client.get(job).json()["state"] == "FINISHED"
        history = client.get(f"{job}/events").json()["data"]
    assert [(e["from_state"], e["to_state"]) for e in history][-2:] == [
        ("SCHEDULED", "RUNNING"),
        ("RUNNING", "FINISHED"),
    ]

    assert_stopped_cleanly(served, signal.SIGTERM)
    assert list(home.iterdir()) == [], "nothing is written to the home directory"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("level", "signum"),
    [("debug", signal.SIGTERM), ("trace", signal.SIGINT)],
    ids=["debug-TERM", "trace-INT"],
)
def test_tokens_never_appear_in_the_logs(
    execdb: Execdb, serve: Callable[..., Served], tmp_path: Path, level: str, signum: int
) -> None:
    """Nor in uvicorn's trace of each request; and the server stops on Ctrl-C as on TERM."""
    data = tmp_path / "data"
    secret = create_token(data, "ci", "admin")
    env = execdb.using(EXECDB_DATA_DIR=data, EXECDB_LOG_LEVEL=level, EXECDB_ACCESS_LOG="true")
    served = serve(env, "serve", "--port", str(port := free_port()), port=port)
    served.wait_until_up()

    valid = {"Authorization": f"Bearer {secret}"}
    invalid = {"Authorization": f"Bearer {FAKE_SECRET}"}
    nowhere = f"/api/v1/jobs/{uuid.uuid4()}"
    with served.client() as client:
        job = client.post("/api/v1/jobs", json=NEW_JOB, headers=valid).json()["uuid"]
        path = f"/api/v1/jobs/{job}"
        for state in ("RUNNING", "FINISHED", "RUNNING"):
            last = client.patch(path, json={"state": state}, headers=valid)
        statuses = {
            ("PATCH", path, 409): last.status_code,
            ("PATCH", nowhere, 404): client.patch(
                nowhere, json={"state": "RUNNING"}, headers=valid
            ).status_code,
            ("GET", "/no/such/page", 404): client.get("/no/such/page", headers=valid).status_code,
            ("POST", "/api/v1/jobs", 401): client.post(
                "/api/v1/jobs", json=NEW_JOB, headers=invalid
            ).status_code,
            ("GET", "/api/v1/nothing", 404): client.get(
                "/api/v1/nothing", headers=invalid
            ).status_code,
            ("POST", "/api/v1/jobs?x=1", 401): client.post(
                "/api/v1/jobs?x=1", json=NEW_JOB, headers={"Authorization": secret}
            ).status_code,
            # A token pasted into the URL is not used, and its value is never written.
            ("GET", "/api/v1/jobs?token=REDACTED", 400): (
                in_query := client.get(f"/api/v1/jobs?token={secret}")
            ).status_code,
            ("GET", f"{path}?state=x&Access_Token=REDACTED", 200): client.get(
                f"{path}?state=x&Access_Token={FAKE_SECRET}"
            ).status_code,
        }
    assert in_query.json()["message"] == "token: unknown parameter", "nor echoed"
    assert {key: key[2] for key in statuses} == statuses
    assert_stopped_cleanly(served, signum)

    output = served.output()
    for method, target, status in statuses:
        assert f'"{method} {target} HTTP/1.1" {status}' in output, "the access log is on"
    for leaked in (secret, FAKE_SECRET):
        assert leaked not in output
        assert leaked.removeprefix("execdb_") not in output


# -- settings ------------------------------------------------------------------------------


BAD_SETTINGS = [
    pytest.param("bogus_key = 1\n", "bogus_key", id="unknown key"),
    pytest.param('port = "high"\n', "port", id="wrong type"),
    pytest.param("workers = 0\n", "workers", id="out of range"),
    pytest.param("access_log = [1]\n", "access_log", id="wrong type list"),
]


@pytest.mark.parametrize(("content", "key"), BAD_SETTINGS)
def test_a_bad_settings_file_names_the_key(
    execdb: Execdb, tmp_path: Path, content: str, key: str
) -> None:
    config = tmp_path / "execdb.toml"
    config.write_text(content)
    data = tmp_path / "data"
    result = execdb.using(EXECDB_DATA_DIR=data)("--config", str(config), "token", "list")
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("execdb: bad settings: ")
    assert key in result.stderr
    assert not data.exists(), "nothing is done on bad settings"


def test_serve_refuses_a_bad_settings_file(execdb: Execdb, tmp_path: Path) -> None:
    config = tmp_path / "execdb.toml"
    config.write_text("port = 5003\nbogus_key = 1\n")
    data = tmp_path / "data"
    result = execdb.using(EXECDB_DATA_DIR=data)("--config", str(config), "serve", timeout=30)
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("execdb: bad settings: ")
    assert "bogus_key" in result.stderr
    assert not data.exists(), "nothing is started on bad settings"


@pytest.mark.parametrize(("content", "key"), BAD_SETTINGS[:2])
def test_a_bad_settings_file_is_reported_in_one_line(
    execdb: Execdb, tmp_path: Path, content: str, key: str
) -> None:
    config = tmp_path / "execdb.toml"
    config.write_text(content)
    message = failed_cleanly(execdb("--config", str(config), "token", "list"))
    assert key in message


def test_a_missing_or_broken_settings_file(execdb: Execdb, tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    message = failed_cleanly(execdb.using(EXECDB_CONFIG=missing)("token", "list"))
    assert f"settings file {missing} does not exist" in message
    message = failed_cleanly(execdb("--config", str(missing), "token", "list"))
    assert f"settings file {missing} does not exist" in message

    broken = tmp_path / "broken.toml"
    broken.write_text("port = \n")
    message = failed_cleanly(execdb("--config", str(broken), "token", "list"))
    assert "bad settings" in message
    assert "line 1" in message


@pytest.mark.slow
def test_the_settings_file_is_honoured_and_the_environment_wins(
    execdb: Execdb, serve: Callable[..., Served], tmp_path: Path
) -> None:
    file_port = env_port = free_port()
    while env_port == file_port:
        env_port = free_port()
    config = tmp_path / "execdb.toml"
    from_file, from_env = tmp_path / "from-file", tmp_path / "from-env"
    config.write_text(
        f"port = {file_port}\ndata_dir = {json.dumps(str(from_file))}\n"
        "log_level = 'warning'\naccess_log = false\n"
    )
    # The log level is raised from the environment to see uvicorn say where it listens.
    by_file = serve(
        execdb.using(EXECDB_LOG_LEVEL="info"), "--config", str(config), "serve", port=file_port
    )
    by_file.wait_until_up()
    assert (from_file / "execdb.sqlite").is_file()
    assert_stopped_cleanly(by_file, signal.SIGTERM)
    assert "GET /healthz" not in by_file.output(), "access_log = false is honoured"

    # EXECDB_CONFIG names the file as --config does; EXECDB_* variables override it.
    by_env = serve(
        execdb.using(
            EXECDB_CONFIG=config,
            EXECDB_PORT=str(env_port),
            EXECDB_DATA_DIR=from_env,
            EXECDB_LOG_LEVEL="info",
        ),
        "serve",
        port=env_port,
    )
    by_env.wait_until_up()
    assert (from_env / "execdb.sqlite").is_file()
    assert f"ExecDB on http://127.0.0.1:{env_port}  database: sqlite:///{from_env}/" in (
        by_env.output()
    )
    assert_stopped_cleanly(by_env, signal.SIGTERM)


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_a_hostile_policy_file_stops_start_up_naming_the_rule_and_field(
    execdb: Execdb, tmp_path: Path, command: str
) -> None:
    config = tmp_path / "execdb.toml"
    config.write_text(
        '[[retry.rules]]\naction = "retry"\n\n'
        '[[retry.rules]]\nname = "koji"\ncause = "koji"\naction = "retry"\nfactor = 1e9\n'
    )
    data = tmp_path / "data"
    result = execdb.using(EXECDB_DATA_DIR=data)("--config", str(config), command, timeout=30)
    message = failed_cleanly(result)
    assert "retry.rules[1].factor: Input should be less than or equal to 10" in message
    assert not data.exists(), "nothing is started on bad settings"


def test_a_bad_rules_file_stops_start_up_naming_the_rule(execdb: Execdb, tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(
        '["site.koji"]\ncause = "koji.timeout"\nprecedence = 70\ndescription = "x"\n'
        'match = ["(unclosed"]\nexamples = ["x"]\n'
    )
    data = tmp_path / "data"
    result = execdb.using(EXECDB_DATA_DIR=data, EXECDB_RULES_FILE=rules)("serve", timeout=30)
    message = failed_cleanly(result)
    assert str(rules) in message
    assert "site.koji" in message
    assert not data.exists(), "nothing is started on bad rules"


def test_worker_once_does_a_round_on_the_embedded_database(execdb: Execdb, tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = execdb.using(EXECDB_DATA_DIR=data)("worker", "--once")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Tick(retried=0, crashed=0, delivered=0, failed=0)"
    assert (data / "execdb.sqlite").exists()  # created and migrated like `serve` does


@pytest.mark.slow
def test_serve_does_the_background_work_itself_on_the_embedded_database(
    execdb: Execdb, serve: Callable[..., Served], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    embedded = execdb.using(EXECDB_DATA_DIR=data, EXECDB_WORKER_INTERVAL="0.2")
    config = tmp_path / "execdb.toml"
    config.write_text('[watchdog]\nscheduled = "1s"\n')
    served = serve(
        embedded, "--config", str(config), "serve", "--port", str(port := free_port()), port=port
    )
    served.wait_until_up()
    secret = create_token(data, "trigger", "create")
    with served.client(headers={"Authorization": f"Bearer {secret}"}) as client:
        job = client.post("/api/v1/jobs", json=NEW_JOB).json()
        deadline = time.monotonic() + 15
        while client.get(f"/api/v1/jobs/{job['uuid']}").json()["state"] == "SCHEDULED":
            assert time.monotonic() < deadline, served.output()
            time.sleep(0.1)
        crashed = client.get(f"/api/v1/jobs/{job['uuid']}").json()
    assert (crashed["state"], crashed["cause"]) == ("CRASHED", "watchdog.not_started")
    assert "watchdog crashed job" in served.output()
    assert_stopped_cleanly(served, signal.SIGTERM)


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*path, name))


def test_every_option_and_argument_has_help() -> None:
    """`execdb COMMAND --help` explains each of its options (hidden aliases aside)."""
    from execdb.cli.main import build_parser

    missing = [
        f"execdb {' '.join(path)}: {action.option_strings or action.dest}"
        for path, parser in _commands(build_parser())
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction) and action.help is None
    ]
    assert not missing, missing


def test_session_revoke_signs_out_every_browser_of_a_token(execdb: Execdb, tmp_path: Path) -> None:
    data = tmp_path / "data"
    run = execdb.using(EXECDB_DATA_DIR=data)
    created = run("token", "create", "alice", "--scope", "triage", "-q")
    assert created.returncode == 0, created
    services = Services.build(Settings(data_dir=data))
    try:
        started = [services.sessions.start(created.stdout.strip(), utcnow()) for _ in range(2)]
        secrets = [s[0] for s in started if s is not None]
        assert len(secrets) == 2
        ended = run("session", "revoke", "alice")
        assert ended.returncode == 0, ended
        assert "ended 2 session(s) of token 'alice'" in ended.stdout
        assert all(services.sessions.recognise(s, utcnow()) is None for s in secrets)
        assert run("token", "list").stdout.split()[:2] == ["alice", "triage"], "token kept"
    finally:
        services.db.close()
    assert "no active token named 'bob'" in failed_cleanly(run("session", "revoke", "bob"))
