"""The triage page's query over a big database: how long grouping a window of unclassified
crashes by signature takes, on the embedded SQLite database.

It makes a database of `--jobs` jobs (default 1,000,000) over a year, a tenth of them crashed
and about one crash in twenty unclassified, each crash with one of a few hundred signatures,
straight with SQL (the other benchmarks go through the API; this one is about one query),
then times `TriageService.groups` for the last 7 and 30 days and prints SQLite's plan.

    .venv/bin/python bench/triage.py [--jobs 1000000] [--repeat 20] [--path FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import func, select, text

from execdb import migrations
from execdb.config import Settings
from execdb.jobs.models import Job
from execdb.jobs.triage import unclassified
from execdb.services import Services

CHUNK = 50_000
CAUSES = ["koji.timeout", "task.exception", "dnf.install_failed", "mirror.unavailable"]


def seed(services: Services, jobs: int, rng: random.Random, end: dt.datetime) -> None:
    insert = text(
        "INSERT INTO jobs (id, uuid, state, task, item, item_type, arch, trigger_data, blame,"
        " cause, attempt, state_by_system, created_at, updated_at, signature, signature_text)"
        " VALUES (:id, :uuid, :state, :task, :item, :item_type, :arch, '{}', :blame, :cause, 1,"
        " 0, :created_at, :created_at, :signature, :signature_text)"
    )
    for start in range(1, jobs + 1, CHUNK):
        rows = [_job(n, jobs, rng, end) for n in range(start, min(start + CHUNK, jobs + 1))]
        with services.db.write() as conn:
            conn.execute(insert, rows)
    with services.db.write() as conn:
        conn.execute(text("ANALYZE"))


def _job(n: int, jobs: int, rng: random.Random, end: dt.datetime) -> dict[str, object]:
    created = end - dt.timedelta(seconds=365 * 86400 * (jobs - n) / jobs)
    crashed = rng.random() < 0.1
    unclassified = crashed and rng.random() < 0.05
    cause = None if unclassified else (rng.choice(CAUSES) if crashed else None)
    kind = rng.randrange(400)
    signature_text = f"failure of kind {kind} at <path>" if crashed else None
    return {
        "id": n,
        "uuid": uuid.UUID(int=rng.getrandbits(128)).hex,
        "state": "CRASHED" if crashed else "FINISHED",
        "task": f"task{n % 40}",
        "item": f"pkg{n % 5000}-1.0-1.fc41",
        "item_type": "koji_build",
        "arch": ("x86_64", "aarch64", "noarch")[n % 3],
        "blame": ("UNKNOWN" if unclassified else "TASK") if crashed else None,
        "cause": cause,
        "created_at": created.strftime("%Y-%m-%d %H:%M:%S.%f"),
        "signature": (
            hashlib.sha256(signature_text.encode()).hexdigest()[:16] if signature_text else None
        ),
        "signature_text": signature_text,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument(
        "--path",
        type=Path,
        default=Path(tempfile.gettempdir()) / f"execdb-bench-triage-{os.getpid()}.sqlite",
    )
    args = p.parse_args()
    args.path.unlink(missing_ok=True)
    settings = Settings(database_url=f"sqlite:///{args.path}", access_log=False)
    services = Services.build(settings)
    migrations.upgrade(services.db.engine)
    end = dt.datetime.now(dt.UTC)
    began = time.monotonic()
    seed(services, args.jobs, random.Random(1), end)
    print(f"seeded {args.jobs} jobs in {time.monotonic() - began:.0f} s")
    results = {}
    for days in (7, 30):
        since = end - dt.timedelta(days=days)
        times = []
        for _ in range(args.repeat + 2):
            start = time.perf_counter()
            found = services.triage.groups(since)
            times.append((time.perf_counter() - start) * 1000)
        times = sorted(times[2:])
        results[f"{days}d"] = {
            "crashes": found.crashes,
            "groups": found.total_groups,
            "p50_ms": round(statistics.median(times), 1),
            "max_ms": round(times[-1], 1),
        }
        print(
            f"/triage {days:>2} days: {found.crashes} unclassified crashes in "
            f"{found.total_groups} groups, p50 {statistics.median(times):.1f} ms, "
            f"max {times[-1]:.1f} ms"
        )
    window = [*unclassified(services.catalogue), Job.created_at >= end - dt.timedelta(days=7)]
    grouped = select(Job.signature, func.count()).where(*window).group_by(Job.signature)
    sql = str(grouped.compile(services.db.engine, compile_kwargs={"literal_binds": True}))
    with services.db.read() as conn:
        plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}").all()
    print("plan:", "; ".join(row[-1] for row in plan))
    print(json.dumps(results))
    services.db.close()
    args.path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
