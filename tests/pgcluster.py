"""A throwaway PostgreSQL server for the test suite.

``PostgresCluster`` runs ``initdb`` into a fresh temporary directory, starts a
``postgres`` server on a free TCP port of 127.0.0.1 with settings that trade
durability for speed, and removes everything again on ``stop()``::

    with PostgresCluster(tmp_path) as cluster:
        url = cluster.create_database("execdb_test_1")
        # "postgresql+psycopg://execdb_test@127.0.0.1:PORT/execdb_test_1"

The server binaries are taken from the newest ``/usr/lib/postgresql/<N>/bin``
(Debian's layout) or else from ``PATH``. ``initdb`` and ``postgres`` refuse to
run as root, so when this process is root they run as the ``postgres`` system
user (or ``nobody``) instead.

Run as a script, it starts a cluster, prints its URL and keeps it running until
interrupted (Ctrl-C or SIGTERM)::

    python tests/pgcluster.py [--database NAME] [--base-dir DIR]
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import dataclasses
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import types
import urllib.parse
from pathlib import Path
from typing import IO, Literal, Self

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

SUPERUSER = "execdb_test"
HOST = "127.0.0.1"

_DEBIAN_PG_ROOT = Path("/usr/lib/postgresql")
_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 10.0
_PORT_ATTEMPTS = 5
# Longest path a Unix socket can have (sun_path is 108 bytes, NUL included).
_MAX_SOCKET_PATH = 107

# Settings for a cluster whose data is thrown away: no durability at all.
_SERVER_SETTINGS: dict[str, str] = {
    "listen_addresses": HOST,
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "128MB",
}

_BIND_FAILURE_MARKERS = (
    "could not bind",
    "Address already in use",
    "could not create any TCP/IP sockets",
)


def _version_key(path: Path) -> tuple[int, ...]:
    parts = path.name.split(".")
    return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else ()


@dataclasses.dataclass(frozen=True)
class Binaries:
    initdb: Path
    postgres: Path


def find_binaries() -> Binaries:
    """Locate ``initdb`` and ``postgres``: newest Debian install, else PATH."""
    versions = sorted(
        (d for d in _DEBIAN_PG_ROOT.glob("*") if _version_key(d)),
        key=_version_key,
        reverse=True,
    )
    for version_dir in versions:
        bindir = version_dir / "bin"
        initdb, postgres = bindir / "initdb", bindir / "postgres"
        if os.access(initdb, os.X_OK) and os.access(postgres, os.X_OK):
            return Binaries(initdb, postgres)
    initdb_path, postgres_path = shutil.which("initdb"), shutil.which("postgres")
    if initdb_path and postgres_path:
        return Binaries(Path(initdb_path), Path(postgres_path))
    raise RuntimeError(
        "PostgreSQL server binaries (initdb, postgres) not found in "
        f"{_DEBIAN_PG_ROOT}/<version>/bin or on PATH; install Debian's "
        "`postgresql` package (apt-get install postgresql), as scripts/test does"
    )


@dataclasses.dataclass(frozen=True)
class _RunAs:
    """Credentials for the server's processes; ``None`` means this process's."""

    user: str | None = None
    uid: int | None = None
    gid: int | None = None
    groups: tuple[int, ...] = ()

    @property
    def extra_groups(self) -> list[int] | None:
        # When switching user, drop root's supplementary groups too.
        return None if self.uid is None else []

    def can_traverse(self, path: Path) -> bool:
        """Whether this user may reach files below ``path`` (ACLs ignored)."""
        if self.uid is None:
            return True
        for p in (path, *path.parents):
            st = p.stat()
            if st.st_uid == self.uid:
                bit = stat.S_IXUSR
            elif st.st_gid in self.groups:
                bit = stat.S_IXGRP
            else:
                bit = stat.S_IXOTH
            if not st.st_mode & bit:
                return False
        return True

    def chown(self, path: Path) -> None:
        if self.uid is not None and self.gid is not None:
            os.chown(path, self.uid, self.gid)


def _run_as() -> _RunAs:
    if os.geteuid() != 0:
        return _RunAs()
    for name in ("postgres", "nobody"):
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            continue
        groups = tuple(os.getgrouplist(name, pw.pw_gid))
        return _RunAs(name, pw.pw_uid, pw.pw_gid, groups)
    raise RuntimeError(
        "running as root, but there is neither a 'postgres' nor a 'nobody' "
        "user to run the PostgreSQL server as"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def _tail(path: Path, offset: int = 0, lines: int = 40) -> str:
    """The last ``lines`` lines of ``path`` after byte ``offset``."""
    try:
        with path.open("rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
    except OSError as exc:
        return f"(no server log: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def _parent_death_prefix() -> list[str]:
    """A command prefix that makes the server quit (SIGQUIT: immediate
    shutdown) if this process dies without stopping it, e.g. when killed.

    The kernel sends the signal when the *thread* that started the server
    ends, so this is only done from the main thread. Needs util-linux's
    ``setpriv`` (2.33 or later); without it the server just outlives us.
    """
    if threading.current_thread() is not threading.main_thread():
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return []
    prefix = [setpriv, "--pdeathsig", "QUIT", "--"]
    probe = subprocess.run(
        [*prefix, "true"], check=False, stdin=subprocess.DEVNULL, capture_output=True
    )
    return prefix if probe.returncode == 0 else []


def _children(pid: int) -> list[int]:
    """PIDs whose parent is ``pid`` (Linux /proc; empty elsewhere)."""
    result = []
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                raw = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            # Format: "PID (COMM) STATE PPID ..."; COMM may contain spaces.
            fields = raw[raw.rfind(")") + 2 :].split()
            if len(fields) > 1 and fields[1] == str(pid):
                result.append(int(entry.name))
    return result


class PostgresCluster:
    """A private PostgreSQL server under a temporary directory of ``base_dir``.

    ``start()`` creates the directory (falling back to the system temporary
    directory when running as root and the server's user cannot reach
    ``base_dir``), ``stop()`` shuts the server down and deletes it.
    """

    user = SUPERUSER
    host = HOST

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = Path(base_dir)
        self._run_as = _run_as()
        self._binaries: Binaries | None = None
        self._tmpdir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._port: int | None = None

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Create the cluster and start the server; return once it accepts
        connections. Cleans up after itself if that fails."""
        if self._tmpdir is not None:
            raise RuntimeError("cluster already started")
        self._binaries = find_binaries()
        atexit.register(self.stop)
        try:
            self._tmpdir = self._make_tmpdir()
            self._initdb()
            self._start_server()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server (fast shutdown, then SIGQUIT, then SIGKILL) and
        delete its directory. Safe to call more than once."""
        proc, self._proc = self._proc, None
        if proc is not None:
            _shutdown(proc)
        tmpdir, self._tmpdir = self._tmpdir, None
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)
        self._port = None
        atexit.unregister(self.stop)

    # -- use ---------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("cluster not started")
        return self._port

    @property
    def data_dir(self) -> Path:
        if self._tmpdir is None:
            raise RuntimeError("cluster not started")
        return self._tmpdir / "data"

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the default ``postgres`` database."""
        return self.url_for("postgres")

    def url_for(self, dbname: str) -> str:
        """SQLAlchemy URL of database ``dbname`` (which need not exist)."""
        name = urllib.parse.quote(dbname, safe="")
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{name}"

    def connect(self, dbname: str = "postgres") -> psycopg.Connection[TupleRow]:
        """An autocommit psycopg connection to ``dbname`` as the superuser."""
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            dbname=dbname,
            connect_timeout=5,
            autocommit=True,
        )

    def create_database(self, name: str) -> str:
        """Create database ``name`` and return its SQLAlchemy URL."""
        with self.connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` if it exists, closing its connections."""
        with self.connect() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    # -- internals ---------------------------------------------------------

    def _make_tmpdir(self) -> Path:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        parent = self.base_dir.resolve()
        if not self._run_as.can_traverse(parent):
            parent = Path(tempfile.gettempdir()).resolve()
        tmpdir = Path(tempfile.mkdtemp(prefix="pgcluster-", dir=parent))
        self._run_as.chown(tmpdir)
        socket_dir = tmpdir / "sock"
        socket_dir.mkdir(mode=0o700)
        self._run_as.chown(socket_dir)
        return tmpdir

    def _initdb(self) -> None:
        assert self._binaries is not None
        assert self._tmpdir is not None
        cmd = [
            str(self._binaries.initdb),
            "--pgdata",
            str(self.data_dir),
            "--auth=trust",
            f"--username={self.user}",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ]
        result = subprocess.run(
            cmd,
            check=False,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # The server's user may not be allowed into our working directory.
            cwd=self._tmpdir,
            user=self._run_as.uid,
            group=self._run_as.gid,
            extra_groups=self._run_as.extra_groups,
        )
        if result.returncode != 0:
            output = result.stdout.decode(errors="replace")
            raise RuntimeError(f"initdb failed ({result.returncode}):\n{output}")

    def _start_server(self) -> None:
        assert self._tmpdir is not None
        log_path = self._tmpdir / "postgres.log"
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            port = _free_port()
            with log_path.open("ab") as log:
                offset = log.tell()
                self._proc = self._spawn(port, log)
            self._port = port
            status = self._wait_ready(self._proc)
            if status == "ready":
                return
            log_tail = _tail(log_path, offset)
            if status == "exited":
                self._proc = None
                bind_failed = any(m in log_tail for m in _BIND_FAILURE_MARKERS)
                if bind_failed and attempt < _PORT_ATTEMPTS:
                    continue  # someone else took the port meanwhile
                raise RuntimeError(f"PostgreSQL server exited:\n{log_tail}")
            raise RuntimeError(
                f"PostgreSQL server did not accept connections within "
                f"{_START_TIMEOUT:.0f}s:\n{log_tail}"
            )

    def _spawn(self, port: int, log: IO[bytes]) -> subprocess.Popen[bytes]:
        assert self._binaries is not None
        assert self._tmpdir is not None
        socket_dir = self._tmpdir / "sock"
        if len(f"{socket_dir}/.s.PGSQL.{port}") > _MAX_SOCKET_PATH:
            socket_dirs = ""  # path too long for a Unix socket: TCP only
        else:
            socket_dirs = str(socket_dir)
        settings = {
            **_SERVER_SETTINGS,
            "port": str(port),
            "unix_socket_directories": socket_dirs,
        }
        cmd = [*_parent_death_prefix(), str(self._binaries.postgres), "-D", str(self.data_dir)]
        for name, value in settings.items():
            cmd += ["-c", f"{name}={value}"]
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self._tmpdir,
            user=self._run_as.uid,
            group=self._run_as.gid,
            extra_groups=self._run_as.extra_groups,
            # A session of its own, so that a Ctrl-C meant for the test run
            # does not reach the server; stop() shuts it down in order.
            start_new_session=True,
        )

    def _wait_ready(self, proc: subprocess.Popen[bytes]) -> Literal["ready", "exited", "timeout"]:
        # Like pg_ctl: wait for postmaster.pid to say "ready", then make sure
        # with a connection. Connecting before that could reach whoever else
        # holds the port if our server failed to bind it.
        pidfile = self.data_dir / "postmaster.pid"
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return "exited"
            if _pidfile_ready(pidfile, proc.pid):
                try:
                    with self.connect() as conn:
                        conn.execute("SELECT 1")
                except psycopg.OperationalError:
                    pass
                else:
                    return "ready"
            time.sleep(0.02)
        return "timeout"


def _pidfile_ready(pidfile: Path, pid: int) -> bool:
    """Whether postmaster.pid is ``pid``'s and says it accepts connections."""
    try:
        lines = pidfile.read_text().splitlines()
    except OSError:
        return False
    # Line 1 is the PID, line 8 the status (PostgreSQL 10 and later).
    return len(lines) >= 8 and lines[0].strip() == str(pid) and lines[7].strip() == "ready"


def _shutdown(proc: subprocess.Popen[bytes]) -> None:
    """Stop a postmaster: fast shutdown, then immediate, then SIGKILL."""
    for sig, timeout in (
        (signal.SIGINT, _STOP_TIMEOUT),  # fast shutdown
        (signal.SIGQUIT, 5.0),  # immediate shutdown
    ):
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            continue
        return
    # The server's children are their own process-group leaders, so kill
    # them one by one along with the postmaster.
    pids = [proc.pid, *_children(proc.pid)]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait()


def _raise_keyboard_interrupt(_signum: int, _frame: types.FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run a throwaway PostgreSQL server until interrupted."
    )
    parser.add_argument(
        "--base-dir",
        type=Path,
        default=Path(tempfile.gettempdir()),
        help="directory to create the cluster's temporary directory in",
    )
    parser.add_argument(
        "--database",
        "-d",
        help="also create this database and print its URL instead",
    )
    args = parser.parse_args(argv)
    # Also when started with SIGINT ignored (as background jobs of scripts are).
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_keyboard_interrupt)
    try:
        with PostgresCluster(args.base_dir) as cluster:
            url = cluster.create_database(args.database) if args.database else cluster.url
            print(url, flush=True)
            print(
                f"PostgreSQL running in {cluster.data_dir}; Ctrl-C to stop",
                file=sys.stderr,
                flush=True,
            )
            while cluster.running:
                time.sleep(0.5)
            print("PostgreSQL server exited unexpectedly", file=sys.stderr)
            return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
