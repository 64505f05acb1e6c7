"""Cold start of the executor command: `execdb job start UUID` against a local server.

A build step runs the command once per step, so its start-up is on every build's path. This
starts `execdb serve` on a fresh SQLite database, creates jobs, then times N runs of
`execdb job start` (process start to exit), next to the interpreter's own start
(`python -c pass`) and `execdb --version`, and prints a table and writes JSON.

    .venv/bin/python bench/cold_start.py [--runs 30] [--json bench/results/cold_start.json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent
EXECDB = str(BIN / "execdb")
TARGET_MS = 300.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def timed(argv: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - began) * 1000


def summary(name: str, samples: list[float]) -> dict[str, object]:
    ordered = sorted(samples)
    return {
        "what": name,
        "runs": len(samples),
        "p50_ms": round(statistics.median(ordered), 1),
        "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))], 1),
        "min_ms": round(ordered[0], 1),
        "max_ms": round(ordered[-1], 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--json", type=Path, default=Path("bench/results/cold_start.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="execdb-cold-") as data:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EXECDB_")}
        env |= {"EXECDB_DATA_DIR": data, "EXECDB_ACCESS_LOG": "false"}
        token = subprocess.run(
            [EXECDB, "token", "create", "bench", "--scope", "admin", "-q"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [EXECDB, "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(f"{url}/healthz", timeout=1)  # noqa: S310
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit("the server did not start") from None
                    time.sleep(0.1)
            env |= {"EXECDB_URL": url, "EXECDB_TOKEN": token}
            uuids = [
                subprocess.run(
                    [
                        EXECDB,
                        "job",
                        "create",
                        "--task",
                        "t",
                        "--item",
                        f"i{n}",
                        "--item-type",
                        "k",
                        "-q",
                    ],
                    env=env,
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout.strip()
                for n in range(args.runs)
            ]
            rows = [
                summary(
                    "python -c pass",
                    [timed([sys.executable, "-c", "pass"], env) for _ in range(args.runs)],
                ),
                summary(
                    "execdb --version",
                    [timed([EXECDB, "--version"], env) for _ in range(args.runs)],
                ),
                summary(
                    "execdb job start UUID",
                    [timed([EXECDB, "job", "start", u], env) for u in uuids],
                ),
            ]
        finally:
            server.terminate()
            server.wait(timeout=20)
    print(f"{'what':<24} {'runs':>5} {'p50 ms':>8} {'p90 ms':>8} {'min ms':>8} {'max ms':>8}")
    for r in rows:
        print(
            f"{r['what']:<24} {r['runs']:>5} {r['p50_ms']:>8} {r['p90_ms']:>8} "
            f"{r['min_ms']:>8} {r['max_ms']:>8}"
        )
    verdict = "met" if float(rows[-1]["p50_ms"]) < TARGET_MS else "MISSED"  # type: ignore[arg-type]
    print(f"target: execdb job start p50 under {TARGET_MS:.0f} ms: {verdict}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"benchmark": "cold_start", "results": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
