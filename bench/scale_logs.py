"""Kept logs for bench/scale.py: a log for every crash of the seed (about 100,000 in a
million jobs), and the full-text searches (`q=`) to time over them.

The logs are added to the cached SQLite seed once (the full-text index follows by its
triggers, migration 0008), recorded in the seed's JSON under "logs"; PostgreSQL gets them with
the jobs, and its index is built from them in one statement.
"""

from __future__ import annotations

import json
import random
import sqlite3
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

LOGS_FORMAT = 1
# What a run prints before it fails; {n} and the like vary per line.
ORDINARY = [
    "[libtaskotron:runner.py:{n}] {stamp} DEBUG step {n} of runtask done",
    "[libtaskotron:koji_utils.py:{n}] {stamp} INFO downloading {pkg}-{v}.fc{f}.x86_64.rpm",
    "[libtaskotron:directives.py:{n}] {stamp} DEBUG running directive {word}",
    "[libtaskotron:check.py:{n}] {stamp} INFO result for {pkg}-{v}.fc{f}: PASSED",
    '  File "/usr/lib/python3.{f}/site-packages/libtaskotron/{word}.py", line {n}, in {word}',
]
# The line that says why, by cause family.
FAILURES = {
    "koji": "requests.exceptions.ReadTimeout: HTTPSConnectionPool(host='koji.fedoraproject.org',"
    " port=443): Read timed out. (read timeout={n})",
    "bodhi": "bodhi.client.BodhiClientException: 502 Bad Gateway from bodhi.fedoraproject.org",
    "network": "curl: (7) Failed to connect to mirrors.fedoraproject.org port 443: No route",
    "mirror": "Curl error (28): Timeout was reached for https://dl.fedoraproject.org/{pkg}",
    "resources": "[ {n}.12] Out of memory: Killed process {n} (python3) total-vm:{n}kB",
    "watchdog": "command timed out: {n} seconds without output running [b'runtask']",
    "minion": "testcloud.exceptions.TestcloudInstanceError: instance {word}-{n} did not boot",
    "git": "fatal: unable to access 'https://pagure.io/taskotron/task-{word}.git/'",
    "dnf": "Error: Unable to find a match: {pkg}-{word}",
    "task": "{word}Error: {pkg} check raised an unhandled exception at {word}.py:{n}",
}
WORDS = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
    "juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo",
    "sierra", "tango", "uniform", "victor", "whiskey", "xray", "yankee", "zulu",
]  # fmt: skip


def _log(rng: random.Random, cause: str | None, packages: list[str], stamp: str) -> str:
    def fill(line: str) -> str:
        return line.format(
            n=rng.randint(1, 99999),
            stamp=stamp,
            pkg=rng.choice(packages),
            v=f"{rng.randint(0, 9)}.{rng.randint(0, 30)}",
            f=rng.randint(30, 42),
            word=rng.choice(WORDS),
        )

    lines = [fill(rng.choice(ORDINARY)) for _ in range(rng.randint(20, 40))]
    lines.append("Traceback (most recent call last):")
    family = (cause or "").split(".")[0]
    lines.append(fill(FAILURES.get(family, "RuntimeError: {word} went wrong in {pkg}")))
    lines.append("program finished with exit code 1")
    return "\n".join(lines) + "\n"


def _params(meta: dict[str, Any]) -> dict[str, Any]:
    return {"format": LOGS_FORMAT, "jobs": meta["jobs"], "end": meta["end"]}


def seed_logs(path: Path, packages: list[str], seed: int) -> dict[str, Any]:
    """A log for every crash of the seed at `path`, unless it has them already."""
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    if meta.get("logs", {}).get("params") == _params(meta):
        print(f"  the seed has {meta['logs']['count']} logs already", file=sys.stderr)
        return dict(meta["logs"])
    rng = random.Random(seed)
    began = time.monotonic()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    conn.execute("DELETE FROM job_logs")
    crashes = conn.execute(
        "SELECT id, cause, created_at, finished_at FROM jobs WHERE state = 'CRASHED' ORDER BY id"
    ).fetchall()
    insert = (
        "INSERT INTO job_logs (job_id, text, original_bytes, state, created_at) "
        "VALUES (?, ?, ?, 'CRASHED', ?)"
    )
    batch: list[tuple[Any, ...]] = []
    for number, (job_id, cause, created, finished) in enumerate(crashes, 1):
        text = _log(rng, cause, packages, str(finished or created)[:19])
        batch.append((job_id, text, len(text.encode()), finished or created))
        if len(batch) == 5000:
            conn.executemany(insert, batch)
            batch.clear()
            print(f"  {number:>7} logs, {time.monotonic() - began:4.0f} s", file=sys.stderr)
    conn.executemany(insert, batch)
    conn.execute("COMMIT")
    conn.close()
    logs = {"params": _params(meta), "count": len(crashes)}
    logs["seconds"] = round(time.monotonic() - began, 1)
    meta["logs"] = logs
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return logs


def copy_logs(lite: sqlite3.Connection, pg: Any) -> None:
    """The seed's logs into PostgreSQL, and its full-text index built in one statement."""
    columns = "job_id, text, original_bytes, state, created_at"
    pg.execute("ALTER TABLE job_logs DISABLE TRIGGER job_fts_log")
    print("  COPY job_logs into PostgreSQL", file=sys.stderr)
    with pg.cursor() as cur, cur.copy(f"COPY job_logs ({columns}) FROM STDIN") as copy:
        for row in lite.execute(f"SELECT {columns} FROM job_logs ORDER BY job_id"):
            copy.write_row(row)
    pg.execute("ALTER TABLE job_logs ENABLE TRIGGER job_fts_log")
    print("  indexing crash details and logs (job_fts)", file=sys.stderr)
    pg.execute("DROP INDEX ix_job_fts_document")
    # The text of job_fts_refresh (migration 0008), for every row at once.
    pg.execute(
        "INSERT INTO job_fts (job_id, document) SELECT jobs.id, to_tsvector('simple', "
        "regexp_replace(left(coalesce(CASE WHEN jobs.state = 'CRASHED' THEN jobs.details END, '')"
        " || ' ' || coalesce(job_logs.text, ''), 300000), '[^[:alnum:]]+', ' ', 'g')) "
        "FROM jobs LEFT JOIN job_logs ON job_logs.job_id = jobs.id "
        "WHERE jobs.state = 'CRASHED' OR job_logs.job_id IS NOT NULL"
    )
    pg.execute("CREATE INDEX ix_job_fts_document ON job_fts USING gin (document)")
    pg.execute("VACUUM ANALYZE job_logs")
    pg.execute("VACUUM ANALYZE job_fts")


def searches(packages: list[str], week: str, old_year: int | None) -> dict[str, str]:
    """q= searches of several selectivities: a number (a few dozen logs), a package name (two
    words, a tenth of the logs), three words, a phrase of one failure family, a word of every
    log (also 50 to a page, as the /jobs page shows them), a word with other filters, and the
    year of the oldest logs' time stamps when it is not this year's (a word of thousands of
    logs, none of them recent: the case where the newest documents hold nothing)."""
    quote = urllib.parse.quote
    rare = packages[len(packages) // 3]
    other = WORDS[5]
    found = {
        "q=43210 (a number)": "q=43210",
        f"q={rare}": f"q={quote(rare)}",
        f"q={rare} {other}": f"q={quote(rare + ' ' + other)}",
        "q=read timed out": "q=read+timed+out",
        "q=runtask (in every log)": "q=runtask",
        "q=runtask&limit=50": "q=runtask&limit=50",
        f"q={rare}&state=CRASHED&since=<7 days>": f"q={quote(rare)}&state=CRASHED&since={week}",
    }
    if old_year is not None:
        found[f"q={old_year} (only in the oldest logs)"] = f"q={old_year}"
    return found
