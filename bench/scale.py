"""Read latency at scale: searches, job pages and statistics over a million jobs.

It seeds a year of history (1,000,000 jobs by default: several dozen tasks, thousands of
items, x86_64/aarch64/noarch/no arch, about 10 % crashed across blames and causes, chains of
retries, three or four events per job) into SQLite, keeps that file as a cache for later runs,
and copies it into a throwaway PostgreSQL (tests/pgcluster.py, COPY). Then, for each backend,
it starts `execdb serve` with production settings on that database and times requests one at
a time over one keep-alive connection, after a warm-up:

  search        GET /api/v1/jobs with common filters, page 1 and page 100 (following `next`)
  job           GET /api/v1/jobs/<uuid> and the job page /jobs/<uuid>, random jobs
  stats         GET /api/v1/stats, the last 30 days by cause per day, and others
  text          GET /api/v1/jobs?q=...: full-text search over the crashes' details and logs
  dashboard     GET /, if the server has one, and /triage over 7 and 30 days
  metrics       GET /metrics, if the server has one: back to back (the terminal states'
                count kept, as most scrapes find it), and once a second with the server's
                metrics_cache_seconds at 1 (every scrape counts every job)

The table gives the median and the 90th percentile of each measurement's repeats.

    .venv/bin/python bench/scale.py [--jobs 1000000] [--backends sqlite,postgres]
        [--repeat 30] [--data-dir ~/.cache/execdb-bench] [--json bench/results/scale.json]
        [--kinds search,text,job,stats,dashboard,metrics,metrics-count]

Every crash of the seed gets a kept log of 20 to 40 lines (bench/scale_logs.py), added to
the cached seed once. The PostgreSQL database made from the seed is kept too, as a dump
beside it (`pg_dump --format directory`), and restored in later runs.

The seed is rebuilt when its parameters or its schema revision change, or when it is more
than a week old (the default statistics window follows the clock). Every process started here
is stopped on exit, on error and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import heapq
import http.client
import json
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lifecycle  # bench/lifecycle.py: servers, PostgreSQL, machine description
import scale_logs  # bench/scale_logs.py: crash logs and the q= searches

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_JSON = BENCH_DIR / "results" / "scale.json"
DEFAULT_DATA = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "execdb-bench"
UTC = dt.UTC
MICROSECOND = dt.timedelta(microseconds=1)
SEED_FORMAT = 3  # bump when the generated data changes

# p50 goals on this 2-core machine, per kind of measurement.
TARGETS_MS = {
    "search": 20.0,
    "text": 50.0,
    "job": 20.0,
    "stats": 200.0,
    "dashboard": 200.0,
    "metrics": 20.0,
    "metrics-count": 200.0,
}
# The servers keep the terminal states' count this long (the default is 30 s), so that
# "counting every job" is measured by scraping a little less often.
METRICS_CACHE_SECONDS = 1
# Routes that older servers lack: a 404 there means "not available", not a failure.
OPTIONAL = frozenset({"dashboard", "metrics", "metrics-count"})

# -- the seed ------------------------------------------------------------------------------

TASKS = [
    "rpmlint", "rpmdeplint", "depcheck", "upgradepath", "abicheck", "python-versions",
    "rpmgrill", "dist.abicheck", "dist.rpmdeplint", "dist.upgradepath", "dist.python-versions",
    "dist.rpmlint", "dist.depcheck", "dist.rpmgrill", "dist.fedora-review", "dist.modularity",
    "dist.license-check", "dist.desktop-file-validate", "dist.appstream", "dist.systemd-lint",
    "dist.selinux-check", "dist.fedora-ci-gating", "dist.installability", "dist.repoclosure",
    "dist.sanity", "dist.shellcheck", "dist.annocheck", "dist.rpminspect", "dist.pylint",
    "dist.cppcheck", "dist.golang-check", "dist.rust-check", "dist.node-check",
    "dist.perl-check", "dist.ruby-check", "dist.java-check", "compose.boot", "compose.install",
    "compose.upgrade", "container.lint", "container.smoke", "docs.build",
]  # fmt: skip
ITEM_TYPES = [("koji_build", 70), ("bodhi_update", 20), ("compose", 5), ("docker_image", 5)]
ARCHES = [("x86_64", 45), ("aarch64", 25), ("noarch", 20), (None, 10)]
# Cause, weight; the blame is the catalogue's default. None: a crash without a cause.
CAUSES = [
    ("koji.timeout", 14), ("koji.error", 6), ("koji.build_not_found", 5), ("bodhi.error", 4),
    ("bodhi.timeout", 3), ("network.unreachable", 6), ("network.dns", 3),
    ("mirror.unavailable", 6), ("resources.oom", 4), ("resources.disk_full", 2),
    ("watchdog.timeout", 5), ("watchdog.not_started", 1), ("minion.creation_failed", 5),
    ("minion.timeout", 2), ("git.clone_failed", 3), ("dnf.install_failed", 5),
    ("dnf.package_not_found", 4), ("task.exception", 10), ("task.formula_invalid", 2),
    ("task.timeout", 3), ("executor.lost", 2), ("executor.timeout", 1), ("status_file.missing", 2),
    ("status_file.invalid", 1), (None, 3), ("gremlins.in_the_machine", 1),
]  # fmt: skip
PACKAGES = [
    f"{stem}{suffix}"
    for stem in ("python3-", "golang-", "rust-", "perl-", "ghc-", "nodejs-", "lib", "")
    for suffix in (
        "foo", "bar", "baz", "qux", "requests", "six", "numpy", "scipy", "gtk", "glib", "xml",
        "yaml", "json", "curl", "ssl", "zlib", "bz2", "lzma", "zstd", "sqlite", "pg", "redis",
        "kafka", "grpc", "proto", "tokio", "serde", "rand", "regex", "clap", "log", "time",
        "uuid", "http", "url", "mime", "toml", "ini", "csv", "png", "jpeg", "font", "cairo",
        "pango", "qt", "kde", "gnome", "dbus", "systemd", "selinux", "audit", "pam", "krb5",
        "ldap", "nss", "gnutls", "gpg", "rpm", "dnf", "koji", "bodhi", "mock", "fedpkg",
    )
]  # fmt: skip
_BLAME = {
    "koji": "THIRD_PARTY", "bodhi": "THIRD_PARTY", "network": "THIRD_PARTY",
    "mirror": "THIRD_PARTY", "resources": "TASKOTRON", "watchdog": "TASKOTRON",
    "minion": "TASKOTRON", "git": "TASKOTRON", "dnf": "TASK", "task": "TASK",
    "executor": "TASKOTRON", "status_file": "TASKOTRON",
}  # fmt: skip
RETRYABLE_FAMILIES = {"koji", "bodhi", "network", "mirror", "minion", "executor", "watchdog"}

JOB_COLUMNS = (
    "id", "uuid", "state", "task", "item", "item_type", "arch", "msg_id", "dedup_key",
    "trigger_data", "executor", "blame", "cause", "details", "attempt", "rescheduled_from",
    "rescheduled_as", "state_by_system", "created_at", "started_at", "finished_at",
    "updated_at", "queue_us", "run_us", "signature", "signature_text",
)  # fmt: skip
EVENT_COLUMNS = (
    "id", "job_id", "at", "actor", "by_system", "from_state", "to_state", "outcome", "payload",
    "message",
)  # fmt: skip


def _weighted(rng: random.Random, pairs: Sequence[tuple[Any, int]]) -> Any:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


def _stamp(moment: dt.datetime) -> str:
    """A datetime as SQLAlchemy stores it in SQLite: naive UTC text with microseconds."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def _uuid7(moment: dt.datetime, rng: random.Random) -> uuid.UUID:
    ms = int(moment.timestamp() * 1000)
    value = ms << 80 | 0x7 << 76 | rng.getrandbits(12) << 64 | 0b10 << 62 | rng.getrandbits(62)
    return uuid.UUID(int=value)


@dataclass(order=True)
class _Planned:
    created: dt.datetime
    seq: int
    task: str = field(compare=False)
    item: str = field(compare=False)
    item_type: str = field(compare=False)
    arch: str | None = field(compare=False)
    msg_id: str = field(compare=False)
    attempt: int = field(compare=False, default=1)
    previous: list[Any] | None = field(compare=False, default=None)  # the retried job's row


class Seeder:
    """Generates the jobs in creation order, with their events, as rows of both tables."""

    def __init__(self, jobs: int, days: int, end: dt.datetime, seed: int) -> None:
        self.total = jobs
        self.days = days
        self.end = end
        self.rng = random.Random(seed)
        self.queue: list[_Planned] = []
        self.seq = 0
        self.job_id = 0
        self.event_id = 0
        self.run_minutes = {t: self.rng.uniform(1, 20) for t in TASKS}
        self.task_weights = [1 / (n + 1) ** 0.8 for n in range(len(TASKS))]

    def _arrivals(self) -> Iterator[dt.datetime]:
        """Bus messages over the period, busier on working hours and weekdays."""
        rng = self.rng
        # A little more than enough messages: the oldest jobs beyond `total` are dropped.
        per_day = self.total / self.days / self._jobs_per_message() * 1.04
        start = self.end - dt.timedelta(days=self.days)
        for day in range(self.days):
            midnight = start + dt.timedelta(days=day)
            weekday = midnight.weekday() < 5
            count = int(rng.gauss(per_day * (1.15 if weekday else 0.62), per_day * 0.1))
            moments = []
            while len(moments) < count:
                hour = rng.uniform(0, 24)
                if rng.random() < 0.35 + 0.65 * (7 <= hour < 19):
                    moments.append(midnight + dt.timedelta(hours=hour))
            yield from sorted(moments)

    def _jobs_per_message(self) -> float:
        """Jobs per bus message, retries included, measured on a sample."""
        sample = Seeder(self.total, self.days, self.end, self.rng.randint(0, 2**32))
        now = self.end - dt.timedelta(days=self.days)
        for n in range(3000):
            sample._plan_message(now, n)
        planned = len(sample.queue)
        while sample.queue:
            sample._make(heapq.heappop(sample.queue))
        return sample.job_id / 3000 if planned else 1.0

    def _plan_message(self, moment: dt.datetime, number: int) -> None:
        rng = self.rng
        item_type = _weighted(rng, ITEM_TYPES)
        if item_type == "koji_build":
            version = f"{rng.randint(0, 12)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}"
            item = f"{rng.choice(PACKAGES)}-{version}-{rng.randint(1, 5)}.fc{rng.randint(40, 43)}"
        elif item_type == "bodhi_update":
            item = f"FEDORA-{moment.year}-{rng.getrandbits(40):010x}"
        elif item_type == "compose":
            item = f"Fedora-Rawhide-{moment:%Y%m%d}.n.{rng.randint(0, 2)}"
        else:
            item = f"registry.fedoraproject.org/{rng.choice(PACKAGES)}:{rng.randint(1, 99)}"
        msg_id = f"{moment.year}-{number:08x}"
        tasks = rng.choices(TASKS, weights=self.task_weights, k=rng.choice((1, 2, 3, 4)))
        for task in dict.fromkeys(tasks):
            arches = ["x86_64", "aarch64"] if rng.random() < 0.3 else [_weighted(rng, ARCHES)]
            for arch in arches:
                delay = dt.timedelta(seconds=rng.uniform(0, 2))
                self._push(_Planned(moment + delay, 0, task, item, item_type, arch, msg_id))

    def _push(self, planned: _Planned) -> None:
        self.seq += 1
        planned.seq = self.seq
        heapq.heappush(self.queue, planned)

    def rows(self) -> Iterator[tuple[list[Any], list[list[Any]]]]:
        """(job row, its event rows), oldest job first, a few more than `self.total`."""
        for number, moment in enumerate(self._arrivals()):
            while self.queue and self.queue[0].created <= moment:
                yield self._make(heapq.heappop(self.queue))
            self._plan_message(moment, number)
        while self.queue and self.queue[0].created <= self.end:
            yield self._make(heapq.heappop(self.queue))

    def _make(self, planned: _Planned) -> tuple[list[Any], list[list[Any]]]:
        rng = self.rng
        self.job_id += 1
        created = planned.created
        job_uuid = _uuid7(created, rng)
        identity = [planned.msg_id, planned.task, planned.item, planned.item_type, planned.arch]
        dedup = (
            hashlib.sha256(json.dumps(identity).encode()).hexdigest()
            if planned.attempt == 1
            else None
        )
        queued = dt.timedelta(seconds=min(rng.lognormvariate(3.4, 1.1), 6 * 3600))
        ran = dt.timedelta(
            minutes=min(rng.lognormvariate(0, 0.6) * self.run_minutes[planned.task], 300)
        )
        started, finished = created + queued, created + queued + ran
        roll = rng.random()
        blame = cause = details = None
        if roll < 0.03:
            state, started = "CANCELLED", None
            finished = created + queued * rng.random()
            details = "superseded by a newer build"
        else:
            crashed = roll < 0.13 or (planned.attempt > 1 and roll < 0.35)
            state = "CRASHED" if crashed else "FINISHED"
            if crashed:
                cause = _weighted(rng, CAUSES)
                blame = _BLAME.get(cause.split(".")[0], "UNKNOWN") if cause else "UNKNOWN"
                details = f"{cause or 'crash'}: " + " ".join(
                    rng.choice(("no", "answer", "from", "koji", "in", "300", "s", "retry"))
                    for _ in range(rng.randint(5, 40))
                )
                if cause in ("watchdog.not_started", "minion.creation_failed"):
                    started = None
        if finished > self.end:  # still going when the history ends
            state, blame, cause, details, finished = "RUNNING", None, None, None, None
            if started is None or started > self.end:
                state, started = "SCHEDULED", None
        executor = (
            {
                "name": "buildbot",
                "builder": planned.arch or "noarch",
                "build": self.job_id,
                "url": f"https://taskotron.example.org/builds/{self.job_id}",
            }
            if started is not None
            else None
        )
        previous = planned.previous
        signature = signature_text = None
        if state == "CRASHED":
            # A few dozen kinds of failure per cause, as the masked key lines group them.
            signature_text = f"{cause or 'unknown'}: failure of kind <n> ({rng.randint(0, 29)})"
            signature = hashlib.sha256(signature_text.encode()).hexdigest()[:16]
        job = [
            self.job_id,
            job_uuid.hex,
            state,
            planned.task,
            planned.item,
            planned.item_type,
            planned.arch,
            planned.msg_id,
            dedup,
            json.dumps({"msg_id": planned.msg_id, "item_type": planned.item_type}),
            json.dumps(executor),
            blame,
            cause,
            details,
            planned.attempt,
            previous[1] if previous else None,
            None,
            0,
            _stamp(created),
            _stamp(started) if started else None,
            _stamp(finished) if finished else None,
            _stamp(finished or started or created),
            (started - created) // MICROSECOND if started else None,
            (finished - started) // MICROSECOND if started and finished else None,
            signature,
            signature_text,
        ]
        if previous is not None:
            previous[16] = job_uuid.hex  # rescheduled_as: rows are written in batches, later
        events = [
            self._event(
                created,
                "trigger",
                None,
                "SCHEDULED",
                {
                    "task": planned.task,
                    "item": planned.item,
                    "item_type": planned.item_type,
                    "arch": planned.arch,
                    "msg_id": planned.msg_id,
                },
                "created",
            )
        ]
        before = "SCHEDULED"
        if started is not None:
            events.append(
                self._event(
                    started,
                    "buildbot",
                    before,
                    "RUNNING",
                    {"state": "RUNNING", "executor": executor},
                    None,
                )
            )
            before = "RUNNING"
        if finished is not None:
            payload = {"state": state, "blame": blame, "cause": cause, "details": details}
            payload = {k: v for k, v in payload.items() if v is not None}
            events.append(self._event(finished, "buildbot", before, state, payload, None))
            if rng.random() < 0.05:  # the executor did not get the answer and sent it again
                again = finished + dt.timedelta(seconds=rng.uniform(1, 30))
                events.append(
                    self._event(again, "buildbot", state, state, payload, None, "repeated")
                )
        if (
            state == "CRASHED"
            and finished is not None
            and planned.attempt < 3
            and (cause or "").split(".")[0] in RETRYABLE_FAMILIES
            and rng.random() < 0.7
        ):
            retry_at = finished + dt.timedelta(minutes=rng.uniform(1, 30))
            self._push(
                _Planned(
                    retry_at,
                    0,
                    planned.task,
                    planned.item,
                    planned.item_type,
                    planned.arch,
                    planned.msg_id,
                    planned.attempt + 1,
                    job,
                )
            )
        return job, events

    def _event(
        self,
        at: dt.datetime,
        actor: str,
        before: str | None,
        after: str,
        payload: dict[str, Any],
        message: str | None,
        outcome: str = "accepted",
    ) -> list[Any]:
        self.event_id += 1
        return [
            self.event_id,
            self.job_id,
            _stamp(at),
            actor,
            0,
            before,
            after,
            outcome,
            json.dumps(payload),
            message,
        ]


def _sqlite_indexes(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """The plain indexes of the two big tables: dropped for the load, made again after it."""
    return conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
        "AND tbl_name IN ('jobs', 'job_events') AND name LIKE 'ix_%'"
    ).fetchall()


def _insert(table: str, columns: Sequence[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def build_sqlite_seed(path: Path, env: dict[str, str], args: argparse.Namespace) -> None:
    """The seed as a migrated SQLite database at `path` (made anew)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in path.parent.glob(path.name + "*"):
        old.unlink()
    lifecycle._run_execdb(["db", "upgrade"], {**env, "EXECDB_DATABASE_URL": f"sqlite:///{path}"})
    end = dt.datetime.now(UTC).replace(microsecond=0)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    indexes = _sqlite_indexes(conn)
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    job_sql = _insert("jobs", JOB_COLUMNS)
    event_sql = _insert("job_events", EVENT_COLUMNS)
    seeder = Seeder(args.jobs, args.days, end, args.seed)
    began = time.monotonic()
    conn.execute("BEGIN")
    jobs: list[list[Any]] = []
    events: list[list[Any]] = []
    # Rows are held back for a while: a retry created up to a few hours later still has to
    # set rescheduled_as on the row of the attempt it retries.
    for job, job_events in seeder.rows():
        jobs.append(job)
        events.extend(job_events)
        if len(jobs) >= 60_000:
            conn.executemany(job_sql, jobs[:50_000])
            conn.executemany(event_sql, [e for e in events if e[1] <= jobs[49_999][0]])
            events = [e for e in events if e[1] > jobs[49_999][0]]
            del jobs[:50_000]
            print(f"  {seeder.job_id:>9} jobs, {time.monotonic() - began:5.0f} s", file=sys.stderr)
    conn.executemany(job_sql, jobs)
    conn.executemany(event_sql, events)
    extra = seeder.job_id - args.jobs
    if extra > 0:  # the oldest: the history keeps its end, now
        deleted = conn.execute("DELETE FROM job_events WHERE job_id <= ?", (extra,)).rowcount
        seeder.event_id -= deleted
        conn.execute("DELETE FROM jobs WHERE id <= ?", (extra,))
    conn.execute("COMMIT")
    print(f"  making {len(indexes)} indexes", file=sys.stderr)
    for _, sql in indexes:
        conn.execute(sql)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    meta = {
        "params": _seed_params(args),
        "end": end.isoformat(),
        "jobs": min(seeder.job_id, args.jobs),
        "events": seeder.event_id,
        "seconds": round(time.monotonic() - began, 1),
    }
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")


def _seed_params(args: argparse.Namespace) -> dict[str, Any]:
    return {"jobs": args.jobs, "days": args.days, "seed": args.seed, "format": SEED_FORMAT}


def seed(args: argparse.Namespace, env: dict[str, str]) -> tuple[Path, dict[str, Any]]:
    """The cached SQLite seed, built when missing, stale or of other parameters."""
    path = args.data_dir / f"scale-{args.jobs}-{args.seed}.sqlite"
    meta_path = path.with_suffix(".json")
    meta: dict[str, Any] | None = None
    with contextlib.suppress(OSError, ValueError):
        meta = json.loads(meta_path.read_text())
    fresh = (
        meta is not None
        and path.exists()
        and meta["params"] == _seed_params(args)
        and dt.datetime.now(UTC) - dt.datetime.fromisoformat(meta["end"]) < dt.timedelta(days=7)
    )
    if not fresh or args.reseed:
        print(f"seeding {args.jobs} jobs into {path}", file=sys.stderr)
        build_sqlite_seed(path, env, args)
        meta = json.loads(meta_path.read_text())
    else:
        print(f"using the seed in {path} (made {meta['end']})", file=sys.stderr)  # type: ignore[index]
    # New migrations (indexes) apply to the cached file in place.
    lifecycle._run_execdb(["db", "upgrade"], {**env, "EXECDB_DATABASE_URL": f"sqlite:///{path}"})
    print("  crash logs", file=sys.stderr)
    meta = json.loads(meta_path.read_text())
    meta["logs"] = scale_logs.seed_logs(path, PACKAGES, args.seed)
    return path, meta


def load_postgres(source: Path, url: str, env: dict[str, str]) -> float:
    """Copy the SQLite seed into the (empty) PostgreSQL database at `url`; seconds taken."""
    import psycopg

    began = time.monotonic()
    lifecycle._run_execdb(["db", "upgrade"], {**env, "EXECDB_DATABASE_URL": url})
    parts = urllib.parse.urlsplit(url.replace("postgresql+psycopg", "postgresql"))
    lite = sqlite3.connect(source)
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as pg:
        pg.execute("SET TIME ZONE 'UTC'")
        indexes = pg.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ('jobs', 'job_events')"
            " AND indexname LIKE 'ix_%'"
        ).fetchall()
        for name, _ in indexes:
            pg.execute(f'DROP INDEX "{name}"')
        for table, columns in (("jobs", JOB_COLUMNS), ("job_events", EVENT_COLUMNS)):
            print(f"  COPY {table} into PostgreSQL {parts.path[1:]}", file=sys.stderr)
            with pg.cursor() as cur:
                names = ", ".join(columns)
                with cur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                    for row in lite.execute(f"SELECT {names} FROM {table} ORDER BY id"):
                        copy.write_row(row)
            pg.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        print(f"  making {len(indexes)} indexes", file=sys.stderr)
        for _, sql in indexes:
            pg.execute(sql)
        scale_logs.copy_logs(lite, pg)
        pg.execute("VACUUM ANALYZE jobs")
        pg.execute("VACUUM ANALYZE job_events")
    lite.close()
    return time.monotonic() - began


def _pg_tool(name: str) -> str:
    binaries = lifecycle._load_pgcluster().find_binaries()
    return str(Path(binaries.postgres).parent / name)


def postgres_seed(
    source: Path, meta: dict[str, Any], url: str, env: dict[str, str]
) -> tuple[float, str]:
    """The seed in the empty PostgreSQL database at `url`: restored from the dump kept beside
    the SQLite seed when it was made from this seed, else copied from SQLite (which builds
    the full-text index, minutes at a million jobs) and dumped for the next run. Seconds
    taken, and which of the two it was."""
    dump = source.with_suffix(".pgdump")
    stamp = dump.with_suffix(".pgdump.json")
    made_from = {"end": meta["end"], "logs": meta["logs"]["params"]}
    plain = url.replace("postgresql+psycopg", "postgresql")
    with contextlib.suppress(OSError, ValueError):
        if json.loads(stamp.read_text()) == made_from and dump.is_dir():
            began = time.monotonic()
            print(f"  restoring {dump} into PostgreSQL", file=sys.stderr)
            subprocess.run(
                [_pg_tool("pg_restore"), "--jobs", "2", "--no-owner", "--dbname", plain, dump],
                check=True,
            )
            # Migrations newer than the dump, and the statistics a restore does not bring.
            lifecycle._run_execdb(["db", "upgrade"], {**env, "EXECDB_DATABASE_URL": url})
            import psycopg

            with psycopg.connect(plain, autocommit=True) as pg:
                for table in ("jobs", "job_events", "job_logs", "job_fts"):
                    pg.execute(f"VACUUM ANALYZE {table}")
            return time.monotonic() - began, "restored into"
    seconds = load_postgres(source, url, env)
    began = time.monotonic()
    print(f"  dumping PostgreSQL into {dump} for the next run", file=sys.stderr)
    shutil.rmtree(dump, ignore_errors=True)
    making = dump.with_suffix(".making")
    shutil.rmtree(making, ignore_errors=True)
    options = ["--format", "directory", "--jobs", "2", "--compress", "1", "--file", str(making)]
    subprocess.run([_pg_tool("pg_dump"), *options, plain], check=True)
    making.rename(dump)
    stamp.write_text(json.dumps(made_from, indent=2) + "\n")
    print(f"  dumped in {time.monotonic() - began:.0f} s", file=sys.stderr)
    return seconds, "loaded into"


# -- measuring -----------------------------------------------------------------------------


class Client:
    """One keep-alive HTTP/1.1 connection; times each request to its last byte."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection(lifecycle.HOST, port, timeout=60)

    def get(self, path: str) -> tuple[int, bytes, float]:
        began = time.perf_counter()
        self.conn.request("GET", path)
        response = self.conn.getresponse()
        body = response.read()
        return response.status, body, (time.perf_counter() - began) * 1000

    def close(self) -> None:
        self.conn.close()


@dataclass
class Measurement:
    kind: str
    name: str
    paths: list[str]  # requested in turn
    pause: float = 0.0  # seconds before each request


def _local(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def plan(client: Client, source: Path, meta: dict[str, Any], repeat: int) -> list[Measurement]:
    """The requests to time, chosen from the seed: its busiest task, its newest jobs ..."""
    lite = sqlite3.connect(source)
    rng = random.Random(7)
    (busiest,) = lite.execute(
        "SELECT task FROM jobs WHERE id > (SELECT max(id) - 20000 FROM jobs) "
        "GROUP BY task ORDER BY count(*) DESC LIMIT 1"
    ).fetchone()
    (top_id,) = lite.execute("SELECT max(id) FROM jobs").fetchone()
    picks = sorted(rng.sample(range(1, top_id + 1), repeat))
    sample = [
        str(uuid.UUID(hex=u))
        for (u,) in lite.execute(
            f"SELECT uuid FROM jobs WHERE id IN ({', '.join(map(str, picks))})"
        )
    ]
    (item,) = lite.execute("SELECT item FROM jobs WHERE id = ?", (top_id // 2,)).fetchone()
    lite.close()
    end = dt.datetime.fromisoformat(meta["end"])
    week = f"{(end - dt.timedelta(days=7)):%Y-%m-%dT%H:%M:%SZ}"
    month = f"{(end - dt.timedelta(days=30)):%Y-%m-%dT%H:%M:%SZ},{end:%Y-%m-%dT%H:%M:%SZ}"
    quote = urllib.parse.quote

    searches = {
        "all": "",
        "state=CRASHED": "state=CRASHED",
        f"task={busiest}": f"task={quote(busiest)}",
        "state=CRASHED&cause=koji": "state=CRASHED&cause=koji",
        "blame=THIRD_PARTY": "blame=THIRD_PARTY",
        f"task={busiest}&arch=aarch64": f"task={quote(busiest)}&arch=aarch64",
        "item=<an item>": f"item={quote(item)}",
        "state=CRASHED&since=<7 days>": f"state=CRASHED&since={week}",
    }
    measurements = []
    for name, query in searches.items():
        first = f"/api/v1/jobs?{query}" if query else "/api/v1/jobs"
        measurements.append(Measurement("search", f"search {name}, page 1", [first]))
        path: str | None = first
        for _ in range(99):  # follow `next` to page 100
            status, body, _ = client.get(path or "")
            link = json.loads(body)["next"] if status == 200 else None
            if link is None:
                path = None
                break
            path = _local(link)
        if path is not None:
            measurements.append(Measurement("search", f"search {name}, page 100", [path]))
    first = end - dt.timedelta(days=meta["params"]["days"])
    old_year = first.year if first.year != end.year else None
    for name, query in scale_logs.searches(PACKAGES, week, old_year).items():
        measurements.append(Measurement("text", f"search {name}", [f"/api/v1/jobs?{query}"]))
    measurements.append(
        Measurement("job", "GET /api/v1/jobs/<uuid>", [f"/api/v1/jobs/{u}" for u in sample])
    )
    measurements.append(Measurement("job", "job page /jobs/<uuid>", [f"/jobs/{u}" for u in sample]))
    stats = {
        "stats 30 days by cause, daily": f"since={month}&group_by=cause&interval=day",
        "stats 30 days": f"since={month}",
        "stats 30 days crashed, by task and cause": (
            f"since={month}&state=CRASHED&group_by=task,cause"
        ),
        "stats 30 days cause=koji, hourly": f"since={month}&cause=koji&interval=hour",
        "stats default window (last 30 days)": "group_by=cause&interval=day",
    }
    for name, query in stats.items():
        measurements.append(Measurement("stats", name, [f"/api/v1/stats?{query}"]))
    measurements.append(Measurement("dashboard", "dashboard /", ["/"]))
    measurements.append(Measurement("metrics", "GET /metrics, terminal counts kept", ["/metrics"]))
    measurements.append(
        Measurement(
            "metrics-count",
            "GET /metrics, counting every job",
            ["/metrics"],
            pause=METRICS_CACHE_SECONDS + 0.05,
        )
    )
    measurements.append(Measurement("dashboard", "triage /triage (7 days)", ["/triage"]))
    measurements.append(
        Measurement("dashboard", "triage /triage?period=30d", ["/triage?period=30d"])
    )
    return measurements


def run_measurement(client: Client, m: Measurement, repeat: int, warmup: int) -> dict[str, Any]:
    times: list[float] = []
    statuses: dict[int, int] = {}
    sizes: list[int] = []
    for n in range(warmup + repeat):
        if m.pause:
            time.sleep(m.pause)
        status, body, ms = client.get(m.paths[n % len(m.paths)])
        if n >= warmup:
            times.append(ms)
            statuses[status] = statuses.get(status, 0) + 1
            sizes.append(len(body))
        if status == 404 and m.kind in OPTIONAL:
            return {"kind": m.kind, "what": m.name, "available": False}
    times.sort()
    ok = statuses.get(200, 0) == len(times)
    return {
        "kind": m.kind,
        "what": m.name,
        "available": True,
        "ok": ok,
        "statuses": statuses,
        "p50_ms": round(statistics.median(times), 2),
        "p90_ms": round(times[int(0.9 * (len(times) - 1))], 2),
        "min_ms": round(times[0], 2),
        "max_ms": round(times[-1], 2),
        "bytes": int(statistics.median(sizes)),
        "target_ms": TARGETS_MS[m.kind],
        "met": ok and statistics.median(times) < TARGETS_MS[m.kind],
    }


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    header = ("backend", "what", "p50 ms", "p90 ms", "target", "bytes")
    lines = []
    for r in rows:
        if not r["available"]:
            lines.append((r["backend"], r["what"], "n/a", "n/a", f"< {r['target_ms']:.0f}", ""))
            continue
        verdict = "ok" if r["met"] else ("MISSED" if r["ok"] else f"ERRORS {r['statuses']}")
        lines.append(
            (
                r["backend"],
                r["what"],
                f"{r['p50_ms']:.1f}",
                f"{r['p90_ms']:.1f}",
                f"< {r['target_ms']:.0f} {verdict}",
                str(r["bytes"]),
            )
        )
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in (2, 3, 5) else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *map(fmt, lines)])


# -- command line --------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--backends",
        type=lifecycle._csv(str, lifecycle.BACKENDS),
        default=",".join(lifecycle.BACKENDS),
        help="comma-separated: sqlite, postgres",
    )
    p.add_argument("--jobs", type=int, default=1_000_000, help="jobs in the seed")
    p.add_argument("--days", type=int, default=365, help="days of history in the seed")
    p.add_argument("--seed", type=int, default=1, help="random seed of the generated history")
    p.add_argument("--repeat", type=int, default=30, help="timed requests per measurement")
    p.add_argument("--warmup", type=int, default=3, help="untimed requests before them")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help="where the seed is kept")
    p.add_argument("--reseed", action="store_true", help="build the seed even if one is cached")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the results")
    p.add_argument("--keep-logs", action="store_true", help="keep the server logs")
    p.add_argument(
        "--kinds",
        type=lifecycle._csv(str, tuple(TARGETS_MS)),
        default=",".join(TARGETS_MS),
        help="comma-separated kinds of measurement: " + ", ".join(TARGETS_MS),
    )
    return p


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def serving(env: dict[str, str], tmp: Path, name: str) -> Iterator[lifecycle.Server]:
    server = lifecycle.Server(env, 1, tmp / f"server-{name}.log")
    try:
        server.start()
        yield server
    finally:
        server.stop()


def run(args: argparse.Namespace) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXECDB_")}
    env |= {"EXECDB_ACCESS_LOG": "false", "EXECDB_LOG_LEVEL": "warning"}
    env["EXECDB_METRICS_CACHE_SECONDS"] = str(METRICS_CACHE_SECONDS)
    tmp = Path(tempfile.mkdtemp(prefix="execdb-scale-"))
    env["EXECDB_DATA_DIR"] = str(tmp / "unused")
    report: dict[str, Any] = {
        "benchmark": "scale",
        "started_at": dt.datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": lifecycle.machine(),
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "targets_ms": TARGETS_MS,
        "results": [],
    }
    rows: list[dict[str, Any]] = report["results"]
    cluster: Any = None
    try:
        source, meta = seed(args, env)
        report["seed"] = meta
        for backend in args.backends:
            if backend == "sqlite":
                db_env = {**env, "EXECDB_DATABASE_URL": f"sqlite:///{source}"}
            else:
                if cluster is None:
                    cluster = lifecycle._load_pgcluster().PostgresCluster(tmp)
                    cluster.start()
                url = cluster.create_database("execdb_scale")
                seconds, how = postgres_seed(source, meta, url, env)
                report["postgres_load_s"] = round(seconds, 1)
                report["postgres_load"] = how
                print(f"  {how} PostgreSQL in {seconds:.0f} s", file=sys.stderr)
                db_env = {**env, "EXECDB_DATABASE_URL": url}
            with serving(db_env, tmp, backend) as server:
                client = Client(server.port)
                try:
                    for m in plan(client, source, meta, args.repeat):
                        if m.kind not in args.kinds:
                            continue
                        row = {
                            "backend": backend,
                            **run_measurement(client, m, args.repeat, args.warmup),
                        }
                        rows.append(row)
                        shown = f"{row['p50_ms']:.1f} ms" if row["available"] else "n/a"
                        print(f"  {backend:<8} {m.name:<52} {shown}", file=sys.stderr)
                finally:
                    client.close()
    finally:
        if cluster is not None:
            cluster.stop()
        if args.keep_logs:
            print(f"logs kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    report["machine"]["load_average_at_end"] = os.getloadavg()
    print()
    print(format_table(rows))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results written to {args.json}")
    return 0 if all(r["met"] for r in rows if r["available"]) else 3


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.jobs < 1000 or args.days < 31 or not 1 <= args.repeat <= 1000:
        raise SystemExit("--jobs must be at least 1000, --days at least 31, --repeat 1 to 1000")
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("interrupted; everything started has been stopped", file=sys.stderr)
        return 130
    except (lifecycle.BenchError, subprocess.SubprocessError) as exc:
        print(f"scale benchmark: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
