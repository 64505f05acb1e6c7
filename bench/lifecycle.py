"""Benchmark of a job's life on a real ExecDB server: create, RUNNING, FINISHED or CRASHED.

For each backend (SQLite, PostgreSQL) and each worker count it starts `execdb serve` as a
subprocess with production settings (no access log, log level warning) on a fresh database,
then measures, K times and interleaved so that both see the same machine:

  floor      GET /healthz: what the HTTP stack and the framework alone allow,
  lifecycle  POST /api/v1/jobs, PATCH RUNNING, PATCH FINISHED (90 %) or CRASHED (10 %),
             over and over on every connection; each request counts as one,
  lifecycle+readers (with --readers N) the lifecycle again while N more connections load
             the dashboard (GET /) and GET /api/v1/stats in turn, back to back.

The load comes from bench/loadgen.py in a process of its own (N keep-alive connections, one
request in flight on each). The table gives medians over the K runs, the errors summed over
them, and the ratio of lifecycle to floor requests/s (the median of the K side-by-side ratios).
With --seed-jobs the database starts with bench/scale.py's generated history (cached), so
that the statistics have jobs to read.

    .venv/bin/python bench/lifecycle.py [--backends sqlite,postgres] [--workers 1,2]
        [--connections 32] [--duration 10] [--repeat 3] [--json bench/results/lifecycle.json]
        [--readers 2 --seed-jobs 100000 --seed-days 31]

PostgreSQL comes from tests/pgcluster.py (a throwaway server; needs the `postgresql`
package's binaries). Every process started here is stopped on exit, on error and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import http.client
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
LOADGEN = BENCH_DIR / "loadgen.py"
PGCLUSTER = REPO / "tests" / "pgcluster.py"
DEFAULT_JSON = BENCH_DIR / "results" / "lifecycle.json"
HOST = "127.0.0.1"
BACKENDS = ("sqlite", "postgres")

# The goals of the lifecycle benchmark (SQLite, 32 connections, load on the same machine);
# readers_p99: the lifecycle's p99 with --readers over its p99 without them, at most.
TARGETS = {"rps": 1500.0, "p99_ms": 100.0, "errors": 0, "ratio": 0.3, "readers_p99": 2.0}

SERVER_START_TIMEOUT = 60.0


class BenchError(Exception):
    """Something the benchmark cannot go on without; reported in one message."""


class ServerStartError(BenchError):
    pass


# -- processes -------------------------------------------------------------------------------


def _execdb_command() -> list[str]:
    """The `execdb` script beside this interpreter, else the module."""
    script = Path(sys.executable).parent / "execdb"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "execdb.cli.main"]


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def _descendants(pid: int) -> list[int]:
    """`pid` and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(raw[raw.rfind(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def _stop_group(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """Stop the process group that `proc` leads: SIGTERM, then SIGKILL for what is left."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout)
    # Workers that outlived their supervisor, or a supervisor stuck in its shutdown.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _http(port: int, method: str, path: str, body: Any = None, token: str = "") -> tuple[int, Any]:
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw.decode(errors="replace")
    finally:
        conn.close()


def clean_env() -> dict[str, str]:
    """This environment without its ExecDB settings, plus the benchmark's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXECDB_")}
    return env | {"EXECDB_ACCESS_LOG": "false", "EXECDB_LOG_LEVEL": "warning"}


def _scale() -> types.ModuleType:
    # bench/scale.py builds on this module; imported only when a seed is asked for.
    import scale

    return scale


@dataclass
class Database:
    """Where a server keeps its data: the environment that points execdb at it."""

    backend: str
    env: dict[str, str]
    description: str


class Server:
    """`execdb serve` in a process group of its own."""

    def __init__(self, env: dict[str, str], workers: int, log_path: Path) -> None:
        self.env = env
        self.workers = workers
        self.log_path = log_path
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        cmd = [*_execdb_command(), "serve", "--port", str(self.port)]
        cmd += ["--workers", str(self.workers)]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us; we stop it in order
            )
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerStartError(
                    f"the server exited with {self.proc.returncode} while starting:\n"
                    + _tail(self.log_path)
                )
            with contextlib.suppress(OSError, http.client.HTTPException):
                if _http(self.port, "GET", "/readyz")[0] == 200:
                    break
            time.sleep(0.1)
        else:
            raise ServerStartError(
                f"the server did not become ready within {SERVER_START_TIMEOUT:.0f} s:\n"
                + _tail(self.log_path)
            )
        if self.workers > 1:
            self._wait_for_workers(deadline)

    def _wait_for_workers(self, deadline: float) -> None:
        # uvicorn's supervisor spawns the workers (and multiprocessing's resource tracker);
        # wait until all workers exist, then give the last one time to load the app.
        assert self.proc is not None
        while time.monotonic() < deadline:
            if len(self._worker_pids()) >= self.workers:
                time.sleep(1.0)
                return
            time.sleep(0.1)
        raise ServerStartError(f"not all {self.workers} workers started:\n{_tail(self.log_path)}")

    def _worker_pids(self) -> list[int]:
        workers = []
        for pid in self.pids()[1:]:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"resource_tracker" not in cmdline:
                workers.append(pid)
        return workers

    def pids(self) -> list[int]:
        return _descendants(self.proc.pid) if self.proc is not None else []

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            _stop_group(proc)


def _run_execdb(args: Sequence[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        [*_execdb_command(), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise ServerStartError(f"`execdb {' '.join(args)}` failed:\n{done.stderr.strip()}")
    return done.stdout


def _load_pgcluster() -> types.ModuleType:
    if not PGCLUSTER.is_file():
        raise BenchError(f"{PGCLUSTER} is missing: it provides the throwaway PostgreSQL server")
    spec = importlib.util.spec_from_file_location("execdb_bench_pgcluster", PGCLUSTER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


class Environment:
    """The temporary directory, the PostgreSQL cluster and the servers of one benchmark run.

    `close()` stops everything it started, whatever state it is in.
    """

    def __init__(self, keep_logs: bool) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="execdb-bench-"))
        self.keep_logs = keep_logs
        self.cluster: Any = None
        self.servers: list[Server] = []
        self.databases = 0

    def database(self, backend: str, seed: Path | None = None) -> Database:
        """A fresh, migrated database; a copy of the SQLite database `seed` if given."""
        self.databases += 1
        env = clean_env()
        if backend == "sqlite":
            data_dir = self.tmp / f"sqlite-{self.databases}"
            env["EXECDB_DATA_DIR"] = str(data_dir)
            if seed is not None:
                data_dir.mkdir(parents=True)
                shutil.copyfile(seed, data_dir / "execdb.sqlite")
            return Database(backend, env, f"SQLite in {data_dir}")
        if self.cluster is None:
            pgcluster = _load_pgcluster()
            cluster = pgcluster.PostgresCluster(self.tmp)
            try:
                cluster.start()
            except Exception as exc:
                raise BenchError(f"cannot start PostgreSQL: {exc}") from exc
            self.cluster = cluster
        url: str = self.cluster.create_database(f"execdb_bench_{self.databases}")
        env["EXECDB_DATA_DIR"] = str(self.tmp / "unused")
        env["EXECDB_DATABASE_URL"] = url
        if seed is None:
            _run_execdb(["db", "upgrade"], env)
        else:
            _scale().load_postgres(seed, url, env)
        return Database(backend, env, f"PostgreSQL {url}")

    @contextlib.contextmanager
    def server(self, db: Database, workers: int) -> Iterator[tuple[Server, str]]:
        token = _run_execdb(["token", "create", "bench", "--scope", "admin", "-q"], db.env)
        server = Server(db.env, workers, self.tmp / f"server-{self.databases}-w{workers}.log")
        self.servers.append(server)
        try:
            server.start()
            yield server, token.strip()
        finally:
            server.stop()
            self.servers.remove(server)

    @contextlib.contextmanager
    def trivial_server(self) -> Iterator[tuple[int, list[int]]]:
        """bench/loadgen.py's canned-answer server: the generator's own ceiling."""
        port = _free_port()
        cmd = [sys.executable, str(LOADGEN), "trivial-server", "--port", str(port)]
        proc = subprocess.Popen(
            [*cmd, "--seconds", "3600"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != b"ready":
                raise ServerStartError("the trivial server did not start")
            yield port, [proc.pid]
        finally:
            _stop_group(proc)

    def close(self) -> None:
        for server in self.servers:
            server.stop()
        self.servers.clear()
        cluster, self.cluster = self.cluster, None
        if cluster is not None:
            cluster.stop()
        if self.keep_logs:
            print(f"logs kept in {self.tmp}", file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


# -- measuring -------------------------------------------------------------------------------


def smoke(port: int, token: str) -> None:
    """One job's life through the API, so that a broken setup fails before the load."""
    status, job = _http(
        port,
        "POST",
        "/api/v1/jobs",
        {"task": "rpmlint", "item": "foo-1.0-1.fc40", "item_type": "koji_build", "arch": "x86_64"},
        token,
    )
    if status != 201 or not isinstance(job, dict) or "uuid" not in job:
        raise BenchError(f"creating a job answered {status}: {job}")
    for report in ({"state": "RUNNING", "executor": {"name": "bench"}}, {"state": "FINISHED"}):
        status, answer = _http(port, "PATCH", f"/api/v1/jobs/{job['uuid']}", report, token)
        if status != 200:
            raise BenchError(f"reporting {report['state']} answered {status}: {answer}")


def generate(
    port: int, token: str, mode: str, args: argparse.Namespace, server_pids: Sequence[int]
) -> dict[str, Any]:
    """One load run by bench/loadgen.py in a process of its own; for `lifecycle+readers`,
    the lifecycle's, with the readers' (a second generator, run alongside) under "reads"."""
    if mode != "lifecycle+readers":
        return _finish(_start(port, token, mode, args.connections, args, server_pids), args)
    readers = _start(port, token, "reads", args.readers, args, [])
    try:
        lifecycle = _start(port, token, "lifecycle", args.connections, args, server_pids)
        result = _finish(lifecycle, args)
    except BaseException:
        readers.kill()
        readers.wait()
        raise
    return {**result, "mode": mode, "reads": _finish(readers, args)}


def _start(
    port: int,
    token: str,
    mode: str,
    connections: int,
    args: argparse.Namespace,
    server_pids: Sequence[int],
) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, str(LOADGEN), "run", "--port", str(port), "--mode", mode]
    cmd += ["--connections", str(connections), "--duration", str(args.duration)]
    cmd += ["--warmup", str(args.warmup), "--timeout", str(args.timeout)]
    if mode == "lifecycle" and args.crash_log_bytes:
        cmd += ["--crash-log-bytes", str(args.crash_log_bytes)]
    for pid in server_pids:
        cmd += ["--server-pid", str(pid)]
    return subprocess.Popen(
        cmd,
        env={**os.environ, "EXECDB_BENCH_TOKEN": token},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _finish(proc: subprocess.Popen[bytes], args: argparse.Namespace) -> dict[str, Any]:
    try:
        out, err = proc.communicate(timeout=args.warmup + args.duration + args.timeout + 60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode != 0:
        raise BenchError(f"the load generator failed ({proc.returncode}):\n{err.decode()[-3000:]}")
    result: dict[str, Any] = json.loads(out)
    return result


def measure(
    port: int, token: str, pids: Callable[[], list[int]], args: argparse.Namespace
) -> dict[str, list[dict[str, Any]]]:
    """`args.repeat` runs of each measurement, interleaved."""
    modes = ["floor", "lifecycle"] + (["lifecycle+readers"] if args.readers else [])
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
    for k in range(args.repeat):
        # Rotate the order so that none always runs on a warmer server.
        order = modes[k % len(modes) :] + modes[: k % len(modes)]
        for mode in order:
            result = generate(port, token or "x", mode, args, pids())
            runs[mode].append(result)
            print(
                f"  run {k + 1}/{args.repeat} {mode:<17} {result['rps']:>8.0f} req/s  "
                f"p50 {result['latency']['p50_ms']:.2f} ms  "
                f"p99 {result['latency']['p99_ms']:.2f} ms  errors {result['errors']}  "
                f"server CPU {result['server_cpu_cores'] or 0:.2f} cores  "
                f"generator CPU {result['generator_cpu_cores']:.2f} cores",
                file=sys.stderr,
            )
            if "reads" in result:
                steps = result["reads"]["steps"]
                print(
                    f"      readers {result['reads']['rps']:.1f} req/s  dashboard p50 "
                    f"{steps['dashboard']['p50_ms']:.1f} ms  stats p50 "
                    f"{steps['stats']['p50_ms']:.1f} ms  errors {result['reads']['errors']}",
                    file=sys.stderr,
                )
    return runs


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def summarise(
    backend: str, workers: int, runs: dict[str, list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Medians over the repeats of each measurement; its ratio to the paired floors."""
    rows = []
    floors = runs["floor"]
    for what, results in runs.items():
        ratios = [r["rps"] / fl["rps"] for fl, r in zip(floors, results, strict=True) if fl["rps"]]
        row: dict[str, Any] = {
            "backend": backend,
            "workers": workers,
            "what": what,
            "rps": round(_median([r["rps"] for r in results]), 1),
            "p50_ms": round(_median([r["latency"]["p50_ms"] for r in results]), 2),
            "p99_ms": round(_median([r["latency"]["p99_ms"] for r in results]), 2),
            "errors": sum(r["errors"] for r in results),
            "ratio": round(_median(ratios), 3),
            "server_cpu_cores": _median([r["server_cpu_cores"] or 0.0 for r in results]),
            # Server CPU time per request: less sensitive to a busy machine than requests/s.
            # With readers, it holds the readers' work too (per lifecycle request).
            "server_cpu_ms_per_request": round(
                _median(
                    [1000 * (r["server_cpu_cores"] or 0.0) / r["rps"] for r in results if r["rps"]]
                ),
                3,
            ),
            "generator_cpu_cores": _median([r["generator_cpu_cores"] for r in results]),
            "runs": results,
        }
        if what != "floor":
            row["steps"] = _steps(results)
            row["ratio_per_run"] = [round(r, 3) for r in ratios]
        if what == "lifecycle+readers":
            row |= _readers(results, runs["lifecycle"])
        rows.append(row)
    return rows


def _steps(results: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    return {
        step: {
            "p50_ms": round(_median([r["steps"][step]["p50_ms"] for r in results]), 2),
            "p99_ms": round(_median([r["steps"][step]["p99_ms"] for r in results]), 2),
        }
        for step in results[0]["steps"]
    }


def _readers(
    results: Sequence[dict[str, Any]], without: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """The readers' own figures, and the lifecycle's p99 with them over its p99 without."""
    reads = [r["reads"] for r in results]
    p99 = _median([r["latency"]["p99_ms"] for r in results])
    p99_without = _median([r["latency"]["p99_ms"] for r in without])
    return {
        "readers": {
            "connections": reads[0]["connections"],
            "rps": round(_median([r["rps"] for r in reads]), 2),
            "errors": sum(r["errors"] for r in reads),
            "steps": _steps(reads),
        },
        "p99_over_without_readers": round(p99 / p99_without, 2) if p99_without else None,
    }


def check_targets(row: dict[str, Any], readers: dict[str, Any] | None) -> dict[str, bool]:
    met = {
        "rps": row["rps"] >= TARGETS["rps"],
        "p99_ms": row["p99_ms"] < TARGETS["p99_ms"],
        "errors": row["errors"] == TARGETS["errors"],
        "ratio": row["ratio"] >= TARGETS["ratio"],
    }
    if readers is not None:
        over = readers["p99_over_without_readers"]
        met["readers_p99"] = over is not None and over < TARGETS["readers_p99"]
    return met


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    header = (
        "backend",
        "workers",
        "what",
        "requests/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "ratio",
        "server CPU ms/req",
    )
    lines = [
        (
            r["backend"],
            str(r["workers"]),
            r["what"],
            f"{r['rps']:.0f}",
            f"{r['p50_ms']:.2f}",
            f"{r['p99_ms']:.2f}",
            str(r["errors"]),
            f"{r['ratio']:.2f}",
            f"{r['server_cpu_ms_per_request']:.3f}",
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    right = {3, 4, 5, 6, 7, 8}

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *map(fmt, lines)])


def _find(rows: Sequence[dict[str, Any]], backend: str, workers: int, what: str) -> Any:
    for row in rows:
        if (row["backend"], row["workers"], row["what"]) == (backend, workers, what):
            return row
    return None


def print_readers(rows: Sequence[dict[str, Any]]) -> None:
    """The lifecycle's p99 with and without the readers, and what the readers got."""
    for row in rows:
        if row["what"] != "lifecycle+readers":
            continue
        readers, steps = row["readers"], row["readers"]["steps"]
        without = _find(rows, row["backend"], row["workers"], "lifecycle")
        print(
            f"{row['backend']}, {row['workers']} worker(s), {readers['connections']} readers: "
            f"lifecycle p99 {row['p99_ms']:.2f} ms against {without['p99_ms']:.2f} ms without "
            f"(x{row['p99_over_without_readers']}); readers {readers['rps']:.1f} req/s, "
            f"dashboard p50 {steps['dashboard']['p50_ms']:.1f} ms, "
            f"stats p50 {steps['stats']['p50_ms']:.1f} ms, errors {readers['errors']}"
        )


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = {}
    for package in ("execdb", "fastapi", "starlette", "pydantic", "uvicorn", "uvloop",
                    "httptools", "sqlalchemy", "psycopg"):  # fmt: skip
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[package] = importlib.metadata.version(package)
    commit = subprocess.run(
        ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": os.getloadavg(),
        "packages": versions,
        "commit": commit or None,
    }


# -- command line ----------------------------------------------------------------------------


def _csv(kind: type, choices: Sequence[Any] | None = None) -> Any:
    def parse(text: str) -> list[Any]:
        values = [kind(v.strip()) for v in text.split(",") if v.strip()]
        if not values:
            raise argparse.ArgumentTypeError("give at least one value")
        if choices is not None and (bad := [v for v in values if v not in choices]):
            raise argparse.ArgumentTypeError(f"unknown {bad}; choose from {', '.join(choices)}")
        return list(dict.fromkeys(values))

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--backends",
        type=_csv(str, BACKENDS),
        default=",".join(BACKENDS),
        help="comma-separated: sqlite, postgres",
    )
    p.add_argument(
        "--workers",
        type=_csv(int),
        default="1",
        help="server processes; comma-separated to compare, e.g. 1,2",
    )
    p.add_argument("--connections", type=int, default=32, help="concurrent keep-alive connections")
    p.add_argument("--duration", type=float, default=10.0, help="seconds measured per run")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of load before each run")
    p.add_argument("--repeat", type=int, default=3, help="runs of each measurement (medians)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds a request may take")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the results")
    p.add_argument(
        "--crash-log-bytes",
        type=int,
        default=0,
        help="the crashing 10 %% of jobs send a log of this size, classified by the server",
    )
    p.add_argument(
        "--calibrate",
        action="store_true",
        help="first run the generator against bench/loadgen.py's trivial server (its ceiling)",
    )
    p.add_argument(
        "--readers",
        type=int,
        default=0,
        help="also measure the lifecycle while this many connections load / and /api/v1/stats",
    )
    p.add_argument(
        "--seed-jobs",
        type=int,
        default=0,
        help="start each database with this many jobs of bench/scale.py's history (0: empty)",
    )
    p.add_argument("--seed-days", type=int, default=31, help="days the seeded history spans")
    p.add_argument(
        "--seed-dir",
        type=Path,
        default=None,
        help="where the seed is cached (default: bench/scale.py's, ~/.cache/execdb-bench)",
    )
    p.add_argument(
        "--keep-logs", action="store_true", help="keep the temporary directory (server logs)"
    )
    return p


def _check(args: argparse.Namespace) -> None:
    if not 1 <= args.connections <= 1024:
        raise SystemExit("--connections must be between 1 and 1024")
    if not 1 <= args.repeat <= 20:
        raise SystemExit("--repeat must be between 1 and 20")
    if not 0 < args.duration <= 600 or not 0 <= args.warmup <= 60:
        raise SystemExit("--duration must be in (0, 600] and --warmup in [0, 60] seconds")
    if any(not 1 <= w <= 16 for w in args.workers):
        raise SystemExit("--workers must be between 1 and 16")
    if not 0 <= args.readers <= 64:
        raise SystemExit("--readers must be between 0 and 64")
    if args.seed_jobs and (args.seed_jobs < 1000 or args.seed_days < 31):
        raise SystemExit("--seed-jobs must be 0 or at least 1000, --seed-days at least 31")


def seed(args: argparse.Namespace) -> tuple[Path | None, dict[str, Any] | None]:
    """bench/scale.py's cached seed (SQLite) of --seed-jobs jobs, if asked for."""
    if not args.seed_jobs:
        return None, None
    scale = _scale()
    options = argparse.Namespace(
        jobs=args.seed_jobs,
        days=args.seed_days,
        seed=1,
        data_dir=args.seed_dir or scale.DEFAULT_DATA,
        reseed=False,
    )
    with tempfile.TemporaryDirectory(prefix="execdb-bench-seed-") as unused:
        path, meta = scale.seed(options, clean_env() | {"EXECDB_DATA_DIR": unused})
    return path, meta


def _raise_interrupt(signum: int, frame: types.FrameType | None) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    report: dict[str, Any] = {
        "benchmark": "lifecycle",
        "started_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "options": {
            "backends": args.backends,
            "workers": args.workers,
            "connections": args.connections,
            "crash_log_bytes": args.crash_log_bytes,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "repeat": args.repeat,
            "timeout_s": args.timeout,
            "crash_ratio": 0.1,
            "calibrate": args.calibrate,
            "readers": args.readers,
            "seed_jobs": args.seed_jobs,
            "seed_days": args.seed_days,
        },
        "targets": TARGETS,
        "results": [],
    }
    rows: list[dict[str, Any]] = report["results"]
    source, report["seed"] = seed(args)
    env = Environment(args.keep_logs)
    try:
        if args.calibrate:
            print("generator against the trivial server", file=sys.stderr)
            with env.trivial_server() as (port, pids):
                runs = measure(port, "", lambda: pids, args)
            rows.extend(summarise("trivial", 1, runs))
        for backend in args.backends:
            for workers in args.workers:
                db = env.database(backend, source)
                print(f"{backend}, {workers} worker(s): {db.description}", file=sys.stderr)
                with env.server(db, workers) as (server, token):
                    smoke(server.port, token)
                    runs = measure(server.port, token, server.pids, args)
                rows.extend(summarise(backend, workers, runs))
    finally:
        env.close()

    report["machine"]["load_average_at_end"] = os.getloadavg()
    print()
    print(format_table(rows))
    print_readers(rows)
    for row in rows:
        if row["what"] == "lifecycle" and row["backend"] == "sqlite":
            readers = _find(rows, row["backend"], row["workers"], "lifecycle+readers")
            met = check_targets(row, readers)
            row["targets_met"] = met
            verdict = ", ".join(f"{k} {'ok' if v else 'MISSED'}" for k, v in met.items())
            print(f"targets, sqlite with {row['workers']} worker(s): {verdict}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results written to {args.json}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _check(args)
    # SIGTERM and SIGHUP unwind like Ctrl-C, so that the servers are stopped; Ctrl-C itself
    # too when started with SIGINT ignored (as `cmd &` in a script does).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("interrupted; everything started has been stopped", file=sys.stderr)
        return 130
    except BenchError as exc:
        print(f"lifecycle benchmark: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
