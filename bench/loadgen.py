"""A lean HTTP/1.1 load generator for the ExecDB benchmarks, and a trivial server to calibrate it.

One process, one asyncio (uvloop when installed) event loop, N keep-alive connections, one
request in flight per connection. Requests are prebuilt bytes written straight to the
transport; responses are parsed by hand (status line, Content-Length, body). Latency is the
time from writing a request to having its whole response, by `time.perf_counter_ns`.

Only responses that complete inside the measurement window (after the warm-up) count, so
requests/s is `2xx answers completed in the window / window length`. Any non-2xx answer, a
connection error, a malformed response or a request that takes longer than the timeout is an
error.

    python bench/loadgen.py run --port P --mode floor|lifecycle|reads [--connections 32] ...
        prints one JSON object with the results (the token comes from $EXECDB_BENCH_TOKEN);
        `reads` loads the dashboard (GET /) and GET /api/v1/stats in turn on each connection
    python bench/loadgen.py trivial-server --port P
        answers every request at once with a canned response of a real one's size
    python bench/loadgen.py capacity [--mode lifecycle]
        runs the trivial server in a second process and the generator against it: how many
        requests/s the generator itself manages on this machine

Standard library only (plus uvloop if present), so it starts fast and costs little CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

HOST = "127.0.0.1"
MODES = ("floor", "lifecycle", "reads")
# The requests of the lifecycle and of the reads, as named in the results.
STEPS = {"lifecycle": ("create", "running", "finish"), "reads": ("dashboard", "stats")}

# Hard bounds on every run, whatever the options say.
MAX_REQUESTS = 20_000_000
MAX_SECONDS = 3600.0


def _install_uvloop() -> str:
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


# -- the client ------------------------------------------------------------------------------


class ResponseError(Exception):
    """The connection broke, timed out or sent something that is not HTTP/1.1."""


class Connection(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.sent_ns = 0  # when the request in flight was written; 0 when none is
        self.closed = False
        # The parsed head of a response whose body has not fully arrived yet.
        self._status = 0
        self._body_start = -1
        self._length = 0
        self._close_after = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport, only alike.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.waiter is not None:
            self._parse()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ResponseError(f"connection lost: {exc!r}" if exc else "connection closed"))

    # use

    def request(self, raw: bytes) -> asyncio.Future[tuple[int, bytes]]:
        """Send `raw` (a whole request); the future gives (status, body)."""
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        self.waiter = waiter = loop.create_future()
        if self.closed:
            self._fail(ResponseError("connection closed"))
            return waiter
        self.sent_ns = time.perf_counter_ns()
        self.transport.write(raw)
        return waiter

    def abort(self, reason: str) -> None:
        self.closed = True
        self._fail(ResponseError(reason))
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        self.sent_ns = 0
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def _parse(self) -> None:
        buf = self.buf
        if self._body_start < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            if not head.startswith(b"http/1.1 ") or len(head) < 12 or not head[9:12].isdigit():
                self.abort(f"not an HTTP/1.1 response: {head[:40]!r}")
                return
            self._status = int(head[9:12])
            at = head.find(b"\r\ncontent-length:")
            if at < 0:
                if self._status in (204, 304):
                    self._length = 0
                else:  # chunked or close-delimited: not what ExecDB sends
                    self.abort(f"response without Content-Length: {head[:200]!r}")
                    return
            else:
                stop = head.find(b"\r\n", at + 2)
                self._length = int(head[at + 17 : stop if stop >= 0 else len(head)])
            self._close_after = b"\r\nconnection: close" in head
            self._body_start = end + 4
        total = self._body_start + self._length
        if len(buf) < total:
            return
        body = bytes(buf[self._body_start : total])
        del buf[:total]
        self._body_start = -1
        waiter, self.waiter = self.waiter, None
        self.sent_ns = 0
        if self._close_after:
            self.closed = True
            if self.transport is not None:
                self.transport.close()
        if waiter is not None and not waiter.done():
            waiter.set_result((self._status, body))


@dataclass
class Stats:
    """What one generator run counts; only responses inside [window_start, window_end)."""

    window_start: int
    window_end: int
    latencies: dict[str, list[int]] = field(default_factory=dict)
    ok: int = 0
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    sent: int = 0

    def record(self, step: str, started: int, status: int | None, error: str | None) -> None:
        now = time.perf_counter_ns()
        if not self.window_start <= now < self.window_end:
            return
        if error is None and status is not None and 200 <= status < 300:
            self.ok += 1
            self.latencies.setdefault(step, []).append(now - started)
            return
        self.errors += 1
        kind = error or f"{step}:{status}"
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1


class Client:
    """Drives one connection until the window ends, reconnecting after errors."""

    def __init__(self, gen: Generator, index: int) -> None:
        self.gen = gen
        self.index = index
        self.conn: Connection | None = None
        self.rng = random.Random(index)

    async def _connection(self) -> Connection:
        if self.conn is not None and not self.conn.closed:
            return self.conn
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(Connection, HOST, self.gen.port)
        sock = conn.transport.get_extra_info("socket") if conn.transport else None
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn = conn
        self.gen.connections.append(conn)
        return conn

    def _more(self) -> bool:
        gen = self.gen
        return time.perf_counter_ns() < gen.stats.window_end and gen.stats.sent < gen.max_requests

    async def call(self, step: str, raw: bytes) -> bytes | None:
        """One request; its body when the answer is 2xx, else None (the error is counted)."""
        stats = self.gen.stats
        stats.sent += 1
        started = time.perf_counter_ns()
        try:
            conn = await self._connection()
            status, body = await conn.request(raw)
        except (OSError, ResponseError) as exc:
            stats.record(step, started, None, f"{step}:{exc.__class__.__name__}")
            if self.conn is not None:
                self.conn.abort("error")
                self.conn = None
            await asyncio.sleep(0.01)  # do not spin on a refusing server
            return None
        stats.record(step, started, status, None)
        return body if 200 <= status < 300 else None

    async def floor(self) -> None:
        raw = self.gen.requests.healthz
        while self._more():
            await self.call("healthz", raw)

    async def lifecycle(self) -> None:
        build = self.gen.requests
        crash_ratio = self.gen.crash_ratio
        n = 0
        while self._more():
            n += 1
            body = await self.call("create", build.create(f"foo-1.0-{self.index}.{n}.fc40"))
            if body is None or not self._more():
                continue
            job = _job_uuid(body)
            if job is None:
                raise ResponseError(f"no job UUID in the answer to a create: {body[:200]!r}")
            if await self.call("running", build.running(job)) is None or not self._more():
                continue
            crash = self.rng.random() < crash_ratio
            await self.call("finish", build.crashed(job) if crash else build.finished(job))

    async def reads(self) -> None:
        build = self.gen.requests
        while self._more():
            await self.call("dashboard", build.dashboard)
            if self._more():
                await self.call("stats", build.stats)


def _job_uuid(body: bytes) -> bytes | None:
    at = body.find(b'"uuid":"')
    if at < 0:
        return None
    job = body[at + 8 : at + 44]
    return job if len(job) == 36 else None


CRASH_TAIL = """\
Traceback (most recent call last):
  File "/usr/lib/python3.12/site-packages/libtaskotron/koji_utils.py", line 101, in get_build
    return self.session.getBuild(nvr)
requests.exceptions.ReadTimeout: HTTPSConnectionPool(host='koji.fedoraproject.org', port=443): \
Read timed out. (read timeout=43200)
[libtaskotron:runner.py:212] 2026-12-02 12:41:09 INFO    cleaning up the minion
[libtaskotron:runner.py:230] 2026-12-02 12:41:10 INFO    done
"""


def crash_log(size: int) -> str:
    """A runtask log of about `size` bytes: ordinary lines, then a Koji timeout near the end
    (which the shipped rules recognise), then a little teardown."""
    lines = []
    total = len(CRASH_TAIL)
    n = 0
    while total < size:
        line = (
            f"[libtaskotron:python_utils.py:{n % 400}] 2026-12-02 "
            f"12:{n // 60 % 60:02d}:{n % 60:02d} DEBUG   step {n}: downloading rpm "
            f"{n}-1.0-1.fc40.x86_64.rpm from the build root\n"
        )
        lines.append(line)
        total += len(line)
        n += 1
    return "".join(lines) + CRASH_TAIL


class Requests:
    """Prebuilt request bytes."""

    def __init__(self, port: int, token: str, crash_log_bytes: int = 0) -> None:
        host = f"Host: {HOST}:{port}\r\n".encode()
        self.healthz = b"GET /healthz HTTP/1.1\r\n" + host + b"\r\n"
        self._write_head = host + f"Authorization: Bearer {token}\r\n".encode()
        self.dashboard = b"GET / HTTP/1.1\r\n" + self._write_head + b"\r\n"
        self.stats = b"GET /api/v1/stats HTTP/1.1\r\n" + self._write_head + b"\r\n"
        self._json = b"Content-Type: application/json\r\nContent-Length: "
        self._running = self._json_body(
            {"state": "RUNNING", "executor": {"name": "bench", "build": 42}}
        )
        self._finished = self._json_body({"state": "FINISHED"})
        self._crashed = self._json_body(
            {
                "state": "CRASHED",
                "blame": "THIRD_PARTY",
                "cause": "koji.timeout",
                "details": "koji did not answer in 300 s",
                **({"log": crash_log(crash_log_bytes)} if crash_log_bytes else {}),
            }
        )

    def _json_body(self, obj: dict[str, Any]) -> bytes:
        body = json.dumps(obj, separators=(",", ":")).encode()
        return self._json + str(len(body)).encode() + b"\r\n\r\n" + body

    def create(self, item: str) -> bytes:
        body = (
            b'{"task":"rpmlint","item":"'
            + item.encode()
            + b'","item_type":"koji_build","arch":"x86_64"}'
        )
        return (
            b"POST /api/v1/jobs HTTP/1.1\r\n"
            + self._write_head
            + self._json
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )

    def _patch(self, job: bytes, tail: bytes) -> bytes:
        return b"PATCH /api/v1/jobs/" + job + b" HTTP/1.1\r\n" + self._write_head + tail

    def running(self, job: bytes) -> bytes:
        return self._patch(job, self._running)

    def finished(self, job: bytes) -> bytes:
        return self._patch(job, self._finished)

    def crashed(self, job: bytes) -> bytes:
        return self._patch(job, self._crashed)


def _proc_cpu_ticks(pids: Sequence[int]) -> int:
    """utime + stime of these processes, in clock ticks (0 for ones that are gone)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                raw = f.read()
        except OSError:
            continue
        fields = raw[raw.rfind(b")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)
    return total


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(sorted_values: Sequence[int], fraction: float) -> int:
    """Nearest-rank percentile of an ascending sequence (0 when it is empty)."""
    if not sorted_values:
        return 0
    rank = max(1, min(len(sorted_values), round(fraction * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def _latency_summary(values_ns: list[int]) -> dict[str, float]:
    values = sorted(values_ns)
    ms = 1e-6
    return {
        "count": len(values),
        "p50_ms": round(percentile(values, 0.50) * ms, 3),
        "p90_ms": round(percentile(values, 0.90) * ms, 3),
        "p99_ms": round(percentile(values, 0.99) * ms, 3),
        "max_ms": round((values[-1] if values else 0) * ms, 3),
        "mean_ms": round((sum(values) / len(values) if values else 0) * ms, 3),
    }


class Generator:
    def __init__(
        self,
        *,
        port: int,
        token: str,
        mode: str,
        connections: int,
        warmup: float,
        duration: float,
        timeout: float,
        crash_ratio: float,
        crash_log_bytes: int = 0,
        max_requests: int,
        server_pids: Sequence[int],
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.port = port
        self.mode = mode
        self.n_connections = connections
        self.warmup = warmup
        self.duration = duration
        self.timeout = timeout
        self.crash_ratio = crash_ratio
        self.max_requests = min(max_requests, MAX_REQUESTS)
        self.server_pids = list(server_pids)
        self.requests = Requests(port, token, crash_log_bytes)
        self.connections: list[Connection] = []
        self.stats = Stats(0, 0)

    async def _watchdog(self) -> None:
        """Abort requests that take longer than the timeout (they count as errors)."""
        limit = int(self.timeout * 1e9)
        while True:
            await asyncio.sleep(min(0.25, self.timeout / 4))
            now = time.perf_counter_ns()
            for conn in self.connections:
                if conn.sent_ns and now - conn.sent_ns > limit:
                    conn.abort(f"no answer within {self.timeout} s")
            self.connections = [c for c in self.connections if not c.closed]

    async def run(self) -> dict[str, Any]:
        start = time.perf_counter_ns()
        window_start = start + int(self.warmup * 1e9)
        self.stats = Stats(window_start, window_start + int(self.duration * 1e9))
        clients = [Client(self, i) for i in range(self.n_connections)]
        job: Callable[[Client], Any] = getattr(Client, self.mode)
        tasks = [asyncio.ensure_future(job(c)) for c in clients]
        watchdog = asyncio.ensure_future(self._watchdog())

        # CPU use over the window: this process's and the server's.
        await asyncio.sleep(max(0.0, (window_start - time.perf_counter_ns()) / 1e9))
        gc.collect()
        gc.disable()
        cpu0, server0, wall0 = _own_cpu(), _proc_cpu_ticks(self.server_pids), time.perf_counter()
        await asyncio.sleep(max(0.0, (self.stats.window_end - time.perf_counter_ns()) / 1e9))
        cpu1, server1, wall1 = _own_cpu(), _proc_cpu_ticks(self.server_pids), time.perf_counter()
        gc.enable()

        # Clients stop on their own at the window's end; the watchdog bounds the stragglers.
        done, pending = await asyncio.wait(tasks, timeout=self.timeout + 5)
        for task in pending:
            task.cancel()
        watchdog.cancel()
        for conn in self.connections:
            if conn.transport is not None:
                conn.transport.close()
        for task in done:
            if (failure := task.exception()) is not None:
                raise failure

        stats = self.stats
        wall = wall1 - wall0
        ticks = os.sysconf("SC_CLK_TCK")
        every = [v for values in stats.latencies.values() for v in values]
        result: dict[str, Any] = {
            "mode": self.mode,
            "connections": self.n_connections,
            "warmup_s": self.warmup,
            "duration_s": self.duration,
            "requests": stats.ok + stats.errors,
            "ok": stats.ok,
            "errors": stats.errors,
            "error_kinds": stats.error_kinds,
            # Successful requests only: fast error answers must not look like throughput.
            "rps": round(stats.ok / self.duration, 1),
            "latency": _latency_summary(every),
            "generator_cpu_cores": round((cpu1 - cpu0) / wall, 3),
            "generator_cpu_us_per_request": round(
                (cpu1 - cpu0) / max(1, stats.ok + stats.errors) * 1e6, 1
            ),
            "server_cpu_cores": (
                round((server1 - server0) / ticks / wall, 3) if self.server_pids else None
            ),
        }
        if self.mode == "lifecycle":
            # Jobs whose last request completed in the window (crashed ones included).
            result["jobs_done"] = len(stats.latencies.get("finish", []))
        if self.mode in STEPS:
            steps = STEPS[self.mode]
            result["steps"] = {s: _latency_summary(stats.latencies.get(s, [])) for s in steps}
        return result


# -- the trivial server ----------------------------------------------------------------------

_JOB_BODY = json.dumps(
    {
        "uuid": "0193a5b0-7c1e-7d2a-9b1f-3c4d5e6f7a8b",
        "href": "http://127.0.0.1:5003/api/v1/jobs/0193a5b0-7c1e-7d2a-9b1f-3c4d5e6f7a8b",
        "page": "http://127.0.0.1:5003/jobs/0193a5b0-7c1e-7d2a-9b1f-3c4d5e6f7a8b",
        "state": "SCHEDULED",
        "task": "rpmlint",
        "item": "foo-1.0-1.fc40",
        "item_type": "koji_build",
        "arch": "x86_64",
        "msg_id": None,
        "trigger_data": {},
        "executor": None,
        "blame": None,
        "cause": None,
        "details": None,
        "attempt": 1,
        "rescheduled_from": None,
        "rescheduled_as": None,
        "created_at": "2024-12-01T12:00:00.000000Z",
        "started_at": None,
        "finished_at": None,
        "updated_at": "2024-12-01T12:00:00.000000Z",
    },
    separators=(",", ":"),
).encode()


def _response(status: str, body: bytes) -> bytes:
    return (
        f"HTTP/1.1 {status}\r\ndate: Sun, 01 Dec 2024 12:00:00 GMT\r\n"
        f"content-length: {len(body)}\r\ncontent-type: application/json\r\n\r\n"
    ).encode() + body


_CANNED = {
    b"GET": _response("200 OK", b'{"status":"ok"}'),
    b"POST": _response("201 Created", _JOB_BODY),
    b"PATCH": _response("200 OK", _JOB_BODY),
}


class TrivialServer(asyncio.Protocol):
    """Answers each request with a canned response chosen by its method; no routing, no app."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport, only alike.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        out = []
        while (end := buf.find(b"\r\n\r\n")) >= 0:
            head = bytes(buf[:end]).lower()
            at = head.find(b"\r\ncontent-length:")
            length = 0
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : stop if stop >= 0 else len(head)])
            if len(buf) < end + 4 + length:
                break
            out.append(_CANNED.get(head[: head.find(b" ")].upper(), _CANNED[b"GET"]))
            del buf[: end + 4 + length]
        if out and self.transport is not None:
            self.transport.write(b"".join(out))


async def _serve_trivial(port: int, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(TrivialServer, HOST, port, backlog=1024)
    print("ready", flush=True)
    async with server:
        await asyncio.sleep(seconds)


# -- command line ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def _add_load_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mode", choices=MODES, default="floor")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    p.add_argument("--duration", type=float, default=10.0, help="seconds measured")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds a request may take")
    p.add_argument("--crash-ratio", type=float, default=0.1)
    p.add_argument(
        "--crash-log-bytes", type=int, default=0, help="crashes send a log of this size (0: none)"
    )
    p.add_argument("--max-requests", type=int, default=MAX_REQUESTS)


def _check_bounds(args: argparse.Namespace) -> None:
    if not 1 <= args.connections <= 1024:
        raise SystemExit("--connections must be between 1 and 1024")
    if args.duration <= 0 or args.warmup < 0 or args.warmup + args.duration > MAX_SECONDS:
        raise SystemExit(f"--warmup + --duration must be positive and at most {MAX_SECONDS} s")


def _generator(args: argparse.Namespace, port: int, token: str, pids: Sequence[int]) -> Generator:
    return Generator(
        port=port,
        token=token,
        mode=args.mode,
        connections=args.connections,
        warmup=args.warmup,
        duration=args.duration,
        timeout=args.timeout,
        crash_ratio=args.crash_ratio,
        crash_log_bytes=getattr(args, "crash_log_bytes", 0),
        max_requests=args.max_requests,
        server_pids=pids,
    )


def _cmd_run(args: argparse.Namespace) -> int:
    _check_bounds(args)
    loop_name = _install_uvloop()
    token = os.environ.get("EXECDB_BENCH_TOKEN", "")
    if args.mode == "lifecycle" and not token:
        raise SystemExit("lifecycle mode needs the token in $EXECDB_BENCH_TOKEN")
    gen = _generator(args, args.port, token, args.server_pid)
    result = asyncio.run(gen.run())
    result["event_loop"] = loop_name
    print(json.dumps(result))
    return 0


def _cmd_trivial_server(args: argparse.Namespace) -> int:
    _install_uvloop()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_trivial(args.port, args.seconds))
    return 0


def start_trivial_server(port: int, seconds: float) -> subprocess.Popen[bytes]:
    """The trivial server in a process of its own; returns once it listens."""
    cmd = [sys.executable, __file__, "trivial-server", "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--seconds", str(seconds)],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != b"ready":
        stop_process(proc)
        raise RuntimeError("the trivial server did not start")
    return proc


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM `proc`'s process group (it leads one of its own), then SIGKILL."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
        return


def _cmd_capacity(args: argparse.Namespace) -> int:
    _check_bounds(args)
    loop_name = _install_uvloop()
    port = free_port()
    server = start_trivial_server(port, args.warmup + args.duration + args.timeout + 30)
    try:
        result = asyncio.run(_generator(args, port, "x", [server.pid]).run())
    finally:
        stop_process(server)
    result["event_loop"] = loop_name
    print(json.dumps(result, indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("run", help="load a server; print the results as JSON")
    p.add_argument("--port", type=int, required=True)
    p.add_argument(
        "--server-pid", type=int, action="append", default=[], help="to measure its CPU use"
    )
    _add_load_options(p)
    p.set_defaults(run=_cmd_run)
    p = commands.add_parser("trivial-server", help="a canned-answer HTTP server")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--seconds", type=float, default=300.0, help="stop after this long")
    p.set_defaults(run=_cmd_trivial_server)
    p = commands.add_parser("capacity", help="the generator against the trivial server")
    _add_load_options(p)
    p.set_defaults(run=_cmd_capacity)
    args = parser.parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
