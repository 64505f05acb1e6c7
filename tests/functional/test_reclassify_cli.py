"""`execdb reclassify` through its installed entry point, on SQLite and PostgreSQL: crashes
reported over HTTP to a server with the shipped rules, then reclassified by an administrator
whose deployment added a rules file."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Databases, settings_for
from tests.functional.test_cli import EXECDB, environment, failed_cleanly, usage_error
from tests.functional.test_reclassify import KOJI_TIMEOUT, PROXY, RULES, TASK_BUG, crash, log_of
from tests.helpers import events
from tests.live import LiveServer, make_tokens, prepare


@dataclass
class Site:
    server: LiveServer  # the shipped rules, which classified the crashes when reported
    env: dict[str, str]  # `execdb` on the same database, with the deployment's rules file
    cwd: Path

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(EXECDB), "reclassify", *args],
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def job(self, job_uuid: str) -> dict[str, Any]:
        with self.server.client() as client:
            found: dict[str, Any] = client.get(f"/api/v1/jobs/{job_uuid}").json()
            return found


@pytest.fixture
def site(backend: str, databases: Databases, tmp_path: Path) -> Iterator[Site]:
    url = databases.url(backend)
    settings = settings_for(url)
    services = prepare(settings)
    server = LiveServer(settings, services, tokens=make_tokens(services)).start()
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    home = tmp_path / "home"
    home.mkdir()
    env = environment(home, EXECDB_DATABASE_URL=url, EXECDB_RULES_FILE=rules)
    try:
        yield Site(server, env, tmp_path)
    finally:
        server.stop()


def ok(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result
    assert result.stderr == "", result.stderr
    return result.stdout.splitlines()


def test_dry_run_then_apply(site: Site) -> None:
    with site.server.client("both") as client:
        nobody = crash(client, log=log_of(PROXY))
        retried = crash(client, log=log_of(KOJI_TIMEOUT, TASK_BUG))
        named = crash(client, cause="task.exception", log=log_of(PROXY))
        unchanged = crash(client, log=log_of(KOJI_TIMEOUT))
        history = [events(client, j["uuid"]) for j in (nobody, retried, named, unchanged)]
    stored = [site.job(j["uuid"]) for j in (nobody, retried, named, unchanged)]

    dry = ok(site("--dry-run"))
    assert dry[:2] == [
        f"{nobody['uuid']}: UNKNOWN (no cause) -> THIRD_PARTY mirror.unavailable"
        "  [rule site.frobnicator]",
        f"{retried['uuid']}: THIRD_PARTY koji.timeout -> TASK dnf.package_not_found"
        "  [rule site.task_bug]; pending retry withdrawn: no retry rule matches and "
        "dnf.package_not_found is not retryable",
    ]
    assert dry[2].startswith("rules ")
    assert dry[2].endswith(
        ": 3 crashes examined, 2 would change, 1 unchanged, 0 skipped (changed meanwhile); "
        "dry run, nothing written"
    )
    assert len(dry) == 3
    assert [site.job(j["uuid"]) for j in (nobody, retried, named, unchanged)] == stored
    with site.server.client() as client:
        after = [events(client, j["uuid"]) for j in (nobody, retried, named, unchanged)]
    assert after == history, "a dry run writes nothing"

    applied = [json.loads(line) for line in ok(site("--json"))]
    assert [line.get("uuid") for line in applied] == [nobody["uuid"], retried["uuid"], None]
    version = applied[-1]["rules_version"]
    assert applied[0] == {
        "uuid": nobody["uuid"],
        "old": {"blame": "UNKNOWN", "cause": None, "rule_id": None, "classified_by": None},
        "new": {
            "blame": "THIRD_PARTY",
            "cause": "mirror.unavailable",
            "rule_id": "site.frobnicator",
            "classified_by": "rules",
        },
        "rules_version": version,
        "retry_withdrawn": None,
    }
    assert applied[-1] == {
        "dry_run": False,
        "rules_version": version,
        "examined": 3,
        "changed": 2,
        "unchanged": 1,
        "skipped": 0,
        "signed": 0,
        "next": None,
    }
    moved = site.job(retried["uuid"])
    assert (moved["cause"], moved["retry_at"], moved["rules_version"]) == (
        "dnf.package_not_found",
        None,
        version,
    )
    with site.server.client() as client:
        last = events(client, retried["uuid"])[-1]
    assert last["actor"] == "reclassify"
    assert last["payload"]["reclassified"]["rules_version"] == version
    assert site.job(named["uuid"]) == stored[2], "a reporter's cause is never touched"
    assert site.job(unchanged["uuid"]) == stored[3]

    again = ok(site())
    assert again == [
        f"rules {version}: 3 crashes examined, 0 changed, 3 unchanged, 0 skipped "
        "(changed meanwhile)"
    ]


def test_limit_after_and_the_window(site: Site) -> None:
    with site.server.client("both") as client:
        crashed = [crash(client, log=log_of(PROXY))["uuid"] for _ in range(3)]
    first = ok(site("--dry-run", "--limit", "2"))
    assert [line.split(":")[0] for line in first[:2]] == crashed[:2]
    assert first[-1] == f"stopped at the limit; go on with --after {crashed[1]}"
    rest = ok(site("--dry-run", "--limit", "2", "--after", crashed[1]))
    assert [line.split(":")[0] for line in rest[:-1]] == crashed[2:]
    assert "1 crashes examined" in rest[-1]
    outside = ok(site("--since", "2000-01-01", "--until", "2000-12-31"))
    assert ": 0 crashes examined, 0 changed" in outside[0]
    assert site.job(crashed[0])["cause"] is None


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (("--limit", "0"), "expected a whole number of 1 or more, got '0'"),
        (("--since", "yesterday"), "'yesterday' is not an ISO 8601 date or time"),
        (("--after", "nobody"), "invalid UUID value: 'nobody'"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else None,
)
def test_usage_errors_exit_2(site: Site, args: tuple[str, ...], complaint: str) -> None:
    assert complaint in usage_error(site(*args))


def test_refusals_name_what_was_wrong(site: Site) -> None:
    backwards = site("--since", "2026-12-02", "--until", "2026-12-01")
    assert backwards.returncode == 2, backwards
    assert backwards.stderr == "execdb: --until is before --since\n"
    unknown = "01a23b16-65ad-766d-b695-6c4ebeb82cc8"
    assert f"after: no job with uuid {unknown}" in failed_cleanly(site("--after", unknown))
