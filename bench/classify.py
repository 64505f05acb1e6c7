"""Log classification speed: the shipped rules on ordinary and hostile logs.

Logs are written by task code, so the engine must stay fast whatever the text. This times
`Engine.classify` (median and p90 of N runs after a warm-up) on a realistic 256 KiB tail and
on 1 MiB logs built to hurt: one huge line of near misses, 100 000 short near-miss lines,
lines the rules veto, bait for the rules that pair two lines (a traceback's frames, a
service's URL far above a failure), binary junk, and every rule
firing at once. It prints a table (with the median CPU time
beside the wall-clock times) and writes JSON; it exits 1 when a budget is missed
(256 KiB under 10 ms, 1 MiB under 50 ms, both medians).

    .venv/bin/python bench/classify.py [--runs 30] [--json bench/results/classify.json]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from execdb.causes.catalogue import load_catalogue
from execdb.classify import Engine, load_rules
from execdb.classify.logs import TAIL_BYTES

MIB = 1 << 20
BUDGET_MS = {TAIL_BYTES: 10.0, MIB: 50.0}

# What a passing stretch of a run's log looks like: the runner's own lines in its formats,
# dnf's progress, rpmlint's findings, ansible's play output.
ORDINARY = [
    "[libtaskotron:runner.py:{n}] 2024-05-01 12:{m:02}:{s:02} DEBUG   Running directive {w}",
    "[libtaskotron] 12:{m:02}:{s:02} INFO    Downloaded {n} RPMs to /var/tmp/taskotron/{w}/rpms",
    "2024-05-01 12:{m:02}:{s:02},{n:03} INFO Reporting {n} results to ResultsDB",
    "  Installing       : python3-{w}-{n}.{m}-1.fc40.noarch                       {n}/{s}",
    "{w}.x86_64: W: unstripped-binary-or-object /usr/lib64/lib{w}.so.{n}",
    "{w}.src: E: description-line-too-long C The {w} library for things of {n} kinds",
    "TASK [Install {w}] **************************************************************",
    "ok: [192.168.122.{n}]",
    "changed: [localhost] => (item=python3-{w})",
    "Fedora 40 - x86_64 - Updates                    {n} kB/s | {s} MB     00:0{m}",
]
WORDS = ["rpmlint", "xchat", "koji_build", "depcheck", "timeout", "error", "mirror", "bodhi"]

# Lines that look like failures the rules know but are not: each misses by a word or a veto.
NEAR_MISSES = [
    "Name or service not know",
    "koji timed ou",
    "Failed to download metadat",
    "No space left on devic",
    "command timed out: 12 seconds without outpu",
    '  File "x.py", line 1, in ',
    "Out of memory: Kill proces",
    "ERROR! Syntax Error while loading YAM",
    "Connection reset by pee",
    "nothing provides requeste",
    "bodhi 50 Server Error",
]
VETOED = [
    "[MIRROR] x.rpm: Curl error (6): Could not resolve host: mirror.example.org",
    "[libtaskotron] 12:00:01 DEBUG ssh: connect to host 192.168.122.5 port 22: Connection refused",
    "[koji:__init__.py:2744] 2024-05-01 12:00:02 INFO    Try #1 for call 4 (getBuild) failed: "
    "('Connection aborted.', RemoteDisconnected('Remote end closed connection'))",
    "libvirt: QEMU Driver error : Domain not found: no domain with matching name 'x'",
]


def ordinary_tail(size: int, rng: random.Random) -> bytes:
    lines = []
    total = 0
    while total < size:
        line = rng.choice(ORDINARY).format(
            n=rng.randint(1, 999), m=rng.randint(0, 59), s=rng.randint(0, 59), w=rng.choice(WORDS)
        )
        lines.append(line)
        total += len(line) + 1
    crash = [
        "Traceback (most recent call last):",
        '  File "/usr/lib/python3.12/site-packages/libtaskotron/koji_utils.py", line 140, in get',
        "    return self.session.getBuild(nvr, strict=True)",
        "requests.exceptions.ReadTimeout: HTTPSConnectionPool(host='koji.fedoraproject.org', "
        "port=443): Read timed out. (read timeout=43200)",
    ]
    text = "\n".join(lines + crash) + "\n"
    return text.encode()[-size:]


def repeated(pieces: list[str], size: int, sep: str) -> bytes:
    out = []
    total = 0
    i = 0
    while total < size:
        out.append(pieces[i % len(pieces)])
        total += len(out[-1]) + len(sep)
        i += 1
    return sep.join(out).encode()[:size]


def cases(engine: Engine, rng: random.Random) -> dict[str, tuple[int, bytes]]:
    examples = [example for rule in engine.rules.rules for example in rule.examples]
    bait = ['  File "/tmp/task.py", line 1, in f', "    x()", "    y()", "    z()", "    w()"]
    # A service named on one line, a failure that names no host too far below it to pair.
    far = (
        ["+ curl -fsSO https://kojipkgs.fedoraproject.org/packages/x/1/1.fc40/x86_64/x.rpm"]
        + ["  Installing       : python3-x-1.0-1.fc40.noarch"] * 45
        + ["curl: (28) Operation timed out after 30000 milliseconds with 0 out of 0 bytes"]
    )
    return {
        "ordinary 256 KiB tail, Koji timeout at the end": (
            TAIL_BYTES,
            ordinary_tail(TAIL_BYTES, rng),
        ),
        "one 1 MiB line of near misses": (MIB, repeated(NEAR_MISSES, MIB, " ")),
        "100 000 short near-miss lines": (MIB, repeated(NEAR_MISSES, MIB, "\n")),
        "1 MiB of lines the rules veto": (MIB, repeated(VETOED, MIB, "\n")),
        "1 MiB of traceback frames, no exception": (MIB, repeated(bait, MIB, "\n")),
        "1 MiB of service lines, failures too far below": (MIB, repeated(far, MIB, "\n")),
        "1 MiB of random bytes (NULs, invalid UTF-8)": (MIB, rng.randbytes(MIB)),
        "1 MiB where every rule fires": (MIB, repeated(examples, MIB, "\n")),
    }


def timed(run: Callable[[], object], runs: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU milliseconds of each run. On a machine shared with other work the
    wall clock also counts the time spent waiting for a core; the CPU time does not."""
    run()  # warm-up: the set's DFA is built lazily, on the first texts it sees
    wall, cpu = [], []
    for _ in range(runs):
        began, began_cpu = time.perf_counter(), time.thread_time()
        run()
        wall.append((time.perf_counter() - began) * 1000)
        cpu.append((time.thread_time() - began_cpu) * 1000)
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--json", type=Path, default=Path("bench/results/classify.json"))
    args = parser.parse_args()

    began = time.perf_counter()
    engine = Engine(load_rules(load_catalogue()))
    load_ms = (time.perf_counter() - began) * 1000
    print(f"{len(engine.rules)} rules (version {engine.version}) loaded in {load_ms:.1f} ms\n")

    rows = []
    over = False
    print(
        f"{'log':<48} {'size':>9} {'p50 ms':>8} {'p90 ms':>8} {'cpu p50':>8} {'budget':>7}  answer"
    )
    for name, (size, text) in cases(engine, random.Random(12)).items():
        wall, cpu = timed(lambda text=text: engine.classify(text), args.runs)
        samples = sorted(wall)
        p50, p90 = statistics.median(samples), samples[int(0.9 * (len(samples) - 1))]
        cpu50 = statistics.median(cpu)
        budget = BUDGET_MS[size]
        verdict = engine.classify(text)
        ok = p50 < budget
        over |= not ok
        print(
            f"{name:<48} {len(text):>9} {p50:>8.2f} {p90:>8.2f} {cpu50:>8.2f} {budget:>7.0f}  "
            f"{verdict.cause or 'UNKNOWN'}{'' if ok else '  OVER BUDGET'}"
        )
        rows.append(
            {
                "log": name,
                "bytes": len(text),
                "runs": args.runs,
                "p50_ms": round(p50, 3),
                "p90_ms": round(p90, 3),
                "cpu_p50_ms": round(cpu50, 3),
                "budget_ms": budget,
                "within_budget": ok,
                "cause": verdict.cause,
            }
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    result = {"benchmark": "classify", "rules": len(engine.rules), "load_ms": load_ms}
    args.json.write_text(json.dumps(result | {"results": rows}, indent=2))
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
