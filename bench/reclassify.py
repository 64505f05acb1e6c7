"""Reclassification speed: the current rules over stored crashes with their logs.

It reports N crashes (5000 by default), each with a 32 KiB log that no shipped rule
recognises, through the job service into a fresh embedded SQLite database; one in ten ends
with a line that a deployment's rule, added afterwards, does recognise. Then it times the
reclassification with that rule, in the process (no command start-up): a dry run, applying
(one transaction per change), and a second run that finds nothing to change. It prints a table
and writes JSON.

    .venv/bin/python bench/reclassify.py [--crashes 5000] [--log-bytes 32768]
        [--json bench/results/reclassify.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from execdb import migrations
from execdb.config import Settings
from execdb.db import utcnow
from execdb.jobs.reclassify import Scope
from execdb.jobs.schemas import JobCreate, JobReport
from execdb.services import Services
from execdb.vocabulary import Actor, State

RULES = """\
["site.frobnicator"]
cause = "mirror.unavailable"
precedence = 70
description = "Our mirror proxy lost its upstream."
match = ['\\bFROBNICATOR: upstream gone\\b']
examples = ["FROBNICATOR: upstream gone"]
"""
ACTOR = Actor("bench")


def log(size: int, recognised: bool) -> str:
    lines, total, n = [], 0, 0
    while total < size:
        lines.append(f"[libtaskotron:runner.py:{n}] 2026-12-02 12:00:00 DEBUG step {n} done")
        total += len(lines[-1]) + 1
        n += 1
    lines.append("FROBNICATOR: upstream gone" if recognised else "runtask exited 1")
    return "\n".join(lines) + "\n"


def seed(services: Services, crashes: int, log_bytes: int) -> float:
    began = time.perf_counter()
    for n in range(crashes):
        new = JobCreate(task="rpmlint", item=f"xchat-{n}", item_type="koji_build")
        job, _ = services.jobs.create(new, ACTOR, utcnow())
        services.jobs.report(job["uuid"], JobReport(state=State.RUNNING), ACTOR, utcnow())
        crash = JobReport(state=State.CRASHED, log=log(log_bytes, n % 10 == 0))
        services.jobs.report(job["uuid"], crash, ACTOR, utcnow())
    return time.perf_counter() - began


def timed_run(services: Services, *, dry_run: bool) -> tuple[float, int, int]:
    run = services.reclassifier.run(Scope(), ACTOR, dry_run=dry_run, clock=utcnow)
    began = time.perf_counter()
    summary = asyncio.run(run)
    return time.perf_counter() - began, summary.examined, summary.changed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crashes", type=int, default=5000)
    parser.add_argument("--log-bytes", type=int, default=32 * 1024)
    parser.add_argument("--json", type=Path, default=Path("bench/results/reclassify.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/execdb.sqlite"
        before = Services.build(Settings(database_url=url))
        migrations.upgrade(before.db.engine)
        seeded = seed(before, args.crashes, args.log_bytes)
        before.db.close()
        print(f"{args.crashes} crashes with {args.log_bytes}-byte logs seeded in {seeded:.1f} s\n")
        rules = Path(tmp) / "rules.toml"
        rules.write_text(RULES)
        after = Services.build(Settings(database_url=url, rules_file=rules))
        rows = []
        print(f"{'run':<28} {'examined':>9} {'changed':>8} {'seconds':>8} {'ms/crash':>9}")
        for name, dry_run in (("dry run", True), ("applying", False), ("again: nothing", False)):
            seconds, examined, changed = timed_run(after, dry_run=dry_run)
            per = 1000 * seconds / max(examined, 1)
            print(f"{name:<28} {examined:>9} {changed:>8} {seconds:>8.2f} {per:>9.3f}")
            rows.append({"run": name, "examined": examined, "changed": changed, "seconds": seconds})
        after.db.close()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"\npeak resident memory {peak_kib / 1024:.0f} MiB")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    result = {"benchmark": "reclassify", "crashes": args.crashes, "log_bytes": args.log_bytes}
    args.json.write_text(json.dumps(result | {"peak_kib": peak_kib, "results": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
