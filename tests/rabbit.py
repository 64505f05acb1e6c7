"""A throwaway RabbitMQ broker for the test suite.

``RabbitBroker`` runs Debian's ``rabbitmq-server`` as a node of its own: its own node name,
AMQP, distribution and epmd ports (free ones of 127.0.0.1), and its data, logs and plugins
file in a temporary directory, so it never meets the system's broker (which Debian's package
starts on port 5672) or another test run's. ``guest``/``guest`` works over loopback. The
node runs as the ``rabbitmq`` user when this process is root, as tests/pgcluster.py runs
PostgreSQL::

    with RabbitBroker(tmp_path) as broker:
        broker.url              # "amqp://guest:guest@127.0.0.1:PORT/%2F"
        broker.stop_node()      # SIGTERM: stopped as an operator would, its queues kept
        broker.start_node()     # the same node again, same port and data

``stop()`` ends the node and the epmd it started (by its pid) and deletes the directory.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import types
from pathlib import Path
from typing import Self

HOST = "127.0.0.1"
_BIN = Path("/usr/lib/rabbitmq/bin")
_START_TIMEOUT = 120.0
_STOP_TIMEOUT = 30.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((HOST, port)) == 0


def _epmd_pids(port: int) -> list[int]:
    """The epmd daemons started for `port` (their environment names it; Linux /proc)."""
    found = []
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                comm = Path(entry.path, "comm").read_text().strip()
                environ = Path(entry.path, "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if comm == "epmd" and f"ERL_EPMD_PORT={port}".encode() in environ:
                found.append(int(entry.name))
    return found


class RabbitBroker:
    """A private RabbitMQ node under a temporary directory of `base_dir`."""

    def __init__(self, base_dir: Path) -> None:
        if not (_BIN / "rabbitmq-server").exists():
            raise RuntimeError(
                f"{_BIN}/rabbitmq-server not found: install Debian's `rabbitmq-server` "
                "package (apt-get install rabbitmq-server), as scripts/test does"
            )
        self.base_dir = Path(base_dir)
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = "rabbitmq" if _has_user("rabbitmq") else "nobody"
        self.dir: Path | None = None
        self.port = self._dist_port = self._epmd_port = 0
        self.node = f"execdb_test_{os.getpid()}@localhost"
        self._proc: subprocess.Popen[bytes] | None = None

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

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{HOST}:{self.port}/%2F"

    def start(self) -> None:
        atexit.register(self.stop)
        # A directory the broker's user can reach (a root test run's own may not be).
        base = self.base_dir if self.user is None else Path(tempfile.gettempdir())
        self.dir = Path(tempfile.mkdtemp(prefix="execdb-rabbit-", dir=base))
        self.dir.chmod(0o755)
        (self.dir / "enabled_plugins").write_text("[].\n")  # no management plugin
        self.port, self._dist_port, self._epmd_port = _free_port(), _free_port(), _free_port()
        if self.user is not None:
            shutil.chown(self.dir, self.user)
            for path in self.dir.iterdir():
                shutil.chown(path, self.user)
        try:
            self.start_node()
        except BaseException:
            self.stop()
            raise

    def start_node(self) -> None:
        """Start the node (again, after `stop_node`); return once it takes connections."""
        assert self.dir is not None, "start() first"
        log = (self.dir / "node.log").open("ab")
        self._proc = subprocess.Popen(
            [str(_BIN / "rabbitmq-server")],
            env=self._env(),
            cwd=self.dir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            user=self.user,
            group=self.user and pwd.getpwnam(self.user).pw_gid,
            extra_groups=[] if self.user else None,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + _START_TIMEOUT
        while not _listening(self.port):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"RabbitMQ did not start:\n{self.log_tail()}")
            time.sleep(0.2)

    def stop_node(self) -> None:
        """Stop the node as an operator would (SIGTERM); its durable queues stay on disk."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        beam = self._beam_pid()
        with contextlib.suppress(ProcessLookupError):
            os.kill(beam or proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        deadline = time.monotonic() + _STOP_TIMEOUT
        while beam and _alive(beam) and time.monotonic() < deadline:
            time.sleep(0.05)

    def ctl(self, *args: str) -> str:
        """rabbitmqctl on this node; its output."""
        # rabbitmqctl is a node of its own too; by default its port is the node's + 10000,
        # which can be past 65535.
        port = str(_free_port())
        env = self._env() | {"RABBITMQ_CTL_DIST_PORT_MIN": port, "RABBITMQ_CTL_DIST_PORT_MAX": port}
        done = subprocess.run(
            [str(_BIN / "rabbitmqctl"), "-n", self.node, *args],
            env=env,
            cwd=self.dir,
            user=self.user,
            group=self.user and pwd.getpwnam(self.user).pw_gid,
            extra_groups=[] if self.user else None,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {done.stdout}{done.stderr}")
        return done.stdout

    def block_publishers(self) -> None:
        """A memory alarm: the broker stops reading what publishers send (confirms wait)."""
        self.ctl("set_vm_memory_high_watermark", "0")

    def unblock_publishers(self) -> None:
        self.ctl("set_vm_memory_high_watermark", "0.4")

    def stop(self) -> None:
        """End the node and its epmd, delete the directory; safe to call more than once."""
        self.stop_node()
        if self._epmd_port:
            for pid in _epmd_pids(self._epmd_port):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        directory, self.dir = self.dir, None
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)
        atexit.unregister(self.stop)

    def log_tail(self, lines: int = 30) -> str:
        if self.dir is None:
            return ""
        try:
            text = (self.dir / "node.log").read_text(errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"
        return "\n".join(text.splitlines()[-lines:])

    def _beam_pid(self) -> int | None:
        assert self.dir is not None
        with contextlib.suppress(OSError, ValueError):
            return int((self.dir / "node.pid").read_text().strip())
        return None

    def _env(self) -> dict[str, str]:
        assert self.dir is not None
        d = self.dir
        keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TMPDIR")}
        return keep | {
            "HOME": str(d),  # the Erlang cookie lives here
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": HOST,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self._dist_port),
            "ERL_EPMD_PORT": str(self._epmd_port),
            "ERL_EPMD_ADDRESS": HOST,
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "RABBITMQ_LOGS": "-",
            "RABBITMQ_PID_FILE": str(d / "node.pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(d / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(d / "rabbitmq-env.conf"),
        }


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
