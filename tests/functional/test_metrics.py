"""GET /metrics, scraped from live servers and read with prometheus-client's own parser: the
figures after a known workload (SQLite and PostgreSQL), the token rule, the worker's sign of
life, and two server processes on one PostgreSQL and one multiprocess directory whose
counters add up."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from execdb import __version__
from execdb.db import utcnow
from execdb.worker import Worker
from tests.conftest import Databases, settings_for
from tests.functional.test_classification import KOJI_TIMEOUT, log_ending
from tests.helpers import INTO, create_job, job_in, report
from tests.live import LiveServer, StartServer, make_tokens, prepare

EXECDB = Path(sys.executable).parent / "execdb"
JOB_ROUTE = "/api/v1/jobs/{job_uuid}"


@dataclass
class Scrape:
    """One scrape's samples, by name and labels."""

    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]
    families: dict[str, str]  # name -> type

    def __call__(self, name: str, **labels: str) -> float:
        """The sum of the samples called `name` whose labels include `labels`."""
        wanted = set(labels.items())
        found = [v for (n, ls), v in self.samples.items() if n == name and wanted <= ls]
        assert found, f"no sample {name} {labels}"
        return sum(found)

    def has(self, name: str) -> bool:
        return any(n == name for n, _ in self.samples)

    def label_values(self) -> set[str]:
        return {value for _, labels in self.samples for _, value in labels}


def scrape(client: httpx.Client) -> Scrape:
    answer = client.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    families = {}
    for family in text_string_to_metric_families(answer.text):
        families[family.name] = family.type
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return Scrape(samples, families)


def crashed(client: httpx.Client, **body: Any) -> str:
    job = job_in(client, "RUNNING")
    answer = report(client, job["uuid"], state="CRASHED", **body)
    assert answer.status_code == 200, answer.text
    return str(job["uuid"])


def workload(client: httpx.Client) -> list[str]:
    """2 scheduled, 1 running (its RUNNING repeated), 3 finished, 1 cancelled and 5 crashed
    jobs, and a refused report; the jobs' uuids."""
    made = [create_job(client)["uuid"] for _ in range(2)]
    running = job_in(client, "RUNNING")["uuid"]
    assert report(client, running, **INTO["RUNNING"]).status_code == 200  # repeated
    made += [running, job_in(client, "CANCELLED")["uuid"]]
    made += [job_in(client, "FINISHED")["uuid"] for _ in range(3)]
    crashes = [
        crashed(client, cause="koji.timeout"),  # THIRD_PARTY by the catalogue; reporter
        crashed(client, blame="TASK", cause="task.exception"),  # reporter
        crashed(client, log=log_ending(KOJI_TIMEOUT)),  # THIRD_PARTY koji.timeout; rules
        crashed(client, details="no idea"),  # UNKNOWN, no cause; nobody
        crashed(client, blame="TASKOTRON", cause="mystery.thing"),  # not in the catalogue
    ]
    assert report(client, crashes[0], state="FINISHED").status_code == 409
    return made + crashes


def test_a_scrape_after_a_known_workload_shows_it(make_server: StartServer) -> None:
    server = make_server(
        metrics_cache_seconds=0,
        notify={"admins": ["admins@example.org"]},
        base_url="https://execdb.example.org",
    )
    with server.client("both") as client:
        uuids = workload(client)
        assert client.get("/no/such/page").status_code == 404
        pending: dict[str, int] = {}
        for uuid in uuids:
            for delivery in client.get(f"/api/v1/jobs/{uuid}/deliveries").json()["data"]:
                pending[delivery["kind"]] = pending.get(delivery["kind"], 0) + 1
        got = scrape(client)

    assert got("execdb_build_info", version=__version__) == 1
    jobs = {s: got("execdb_jobs", state=s) for s in INTO}
    assert jobs == {"SCHEDULED": 2, "RUNNING": 1, "FINISHED": 3, "CRASHED": 5, "CANCELLED": 1}

    assert got.families["execdb_reports"] == "counter"
    assert got("execdb_reports_total", state="RUNNING", outcome="accepted") == 9
    assert got("execdb_reports_total", state="RUNNING", outcome="repeated") == 1
    assert got("execdb_reports_total", state="FINISHED", outcome="accepted") == 3
    assert got("execdb_reports_total", state="FINISHED", outcome="refused") == 1
    assert got("execdb_reports_total", state="CRASHED", outcome="accepted") == 5
    assert got("execdb_reports_total", state="CANCELLED", outcome="accepted") == 1
    assert got("execdb_reports_total") == 20

    crashes = {
        ("THIRD_PARTY", "koji"): 2,
        ("TASK", "task"): 1,
        ("UNKNOWN", "none"): 1,
        ("TASKOTRON", "other"): 1,
    }
    for (blame, family), count in crashes.items():
        assert got("execdb_crashes_total", blame=blame, cause_family=family) == count
    assert got("execdb_crashes_total") == 5
    assert got("execdb_crashes_total", cause_family="dnf") == 0  # a family of the catalogue

    sources = {s: got("execdb_crash_classifications_total", source=s) for s in ("reporter",)}
    sources |= {s: got("execdb_crash_classifications_total", source=s) for s in ("rules", "none")}
    assert sources == {"reporter": 3, "rules": 1, "none": 1}
    assert got("execdb_crash_classifications_total", source="person") == 0

    duration = "execdb_http_request_duration_seconds_count"
    assert got(duration, method="POST", route="/api/v1/jobs", code="201") == 12
    assert got(duration, method="PATCH", route=JOB_ROUTE, code="200") == 19
    assert got(duration, method="PATCH", route=JOB_ROUTE, code="409") == 1
    assert got(duration, method="GET", route="unmatched", code="404") == 1
    assert got("execdb_http_request_duration_seconds_bucket", route=JOB_ROUTE, le="+Inf") == 20
    assert not any(uuid in value for uuid in uuids for value in got.label_values())
    assert not any("/no/such" in value for value in got.label_values())

    assert pending["notification"] >= 3  # the crashes that are not the task's to hear of
    for kind in ("notification", "dispatch"):
        assert got("execdb_outbox_pending", kind=kind) == pending.get(kind, 0)
        assert got("execdb_outbox_failed", kind=kind) == 0
    assert 0 < got("execdb_outbox_oldest_pending_age_seconds", kind="notification") < 120
    assert got("execdb_outbox_oldest_pending_age_seconds", kind="dispatch") == 0
    assert not got.has("execdb_worker_last_round_timestamp_seconds")


def test_scheduled_and_running_are_counted_on_every_scrape_the_rest_now_and_then(
    make_server: StartServer,
) -> None:
    server = make_server(metrics_cache_seconds=600)
    with server.client("both") as client:
        first = job_in(client, "RUNNING")
        before = scrape(client)
        assert report(client, first["uuid"], state="FINISHED").status_code == 200
        create_job(client)
        after = scrape(client)
    assert (before("execdb_jobs", state="RUNNING"), before("execdb_jobs", state="FINISHED")) == (
        1,
        0,
    )
    assert after("execdb_jobs", state="RUNNING") == 0
    assert after("execdb_jobs", state="SCHEDULED") == 1
    # Counted at most every metrics_cache_seconds: the finished job is not there yet.
    assert after("execdb_jobs", state="FINISHED") == 0
    assert after("execdb_reports_total", state="FINISHED", outcome="accepted") == 1


def test_the_worker_s_last_round_appears_after_a_round(make_server: StartServer) -> None:
    server = make_server()
    with server.client() as client:
        assert not scrape(client).has("execdb_worker_last_round_timestamp_seconds")

    async def one_round() -> None:
        async with Worker(server.services, name="metrics-test") as worker:
            await worker.tick()

    began = time.time()
    asyncio.run(one_round())
    with server.client() as client:
        last = scrape(client)("execdb_worker_last_round_timestamp_seconds")
    assert began - 1 <= last <= time.time() + 1


def test_the_watchdog_s_crashes_are_counted_by_the_worker(make_server: StartServer) -> None:
    server = make_server()
    with server.client("both") as client:
        job_in(client, "RUNNING")

    async def one_round() -> None:
        async with Worker(server.services, name="watchdog-test") as worker:
            done = await worker.tick(utcnow() + timedelta(hours=7))
            assert done.crashed == 1

    asyncio.run(one_round())
    with server.client() as client:
        got = scrape(client)
    assert got("execdb_crashes_total") == 1
    assert got("execdb_reports_total", state="CRASHED", outcome="accepted") == 1


@pytest.mark.parametrize(
    ("settings", "without_token"),
    [
        ({}, 200),
        ({"require_token_for_reads": True}, 401),
        ({"metrics_require_token": True}, 401),
        ({"require_token_for_reads": True, "metrics_require_token": False}, 200),
    ],
)
def test_metrics_need_a_token_as_reads_do_unless_set_apart(
    make_server: StartServer, settings: dict[str, bool], without_token: int
) -> None:
    server = make_server(**settings)
    with server.client() as client:
        answer = client.get("/metrics")
    assert answer.status_code == without_token, answer.text
    if without_token == 401:
        assert "token" in answer.json()["message"]
    with server.client("report") as client:
        assert client.get("/metrics").status_code == 200


def test_metrics_are_left_out_of_the_openapi_document(server: LiveServer) -> None:
    with server.client() as client:
        assert "/metrics" not in client.get("/openapi.json").json()["paths"]


# --- several processes ------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServeProcess:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def wait_until_ready(self, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while True:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"execdb serve did not start:\n{self.log.read_text()}")
            time.sleep(0.1)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    started: list[ServeProcess] = []

    def start(database_url: str, multiproc: Path, name: str) -> ServeProcess:
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("EXECDB_")}
        env |= {
            "HOME": str(tmp_path),
            "EXECDB_DATABASE_URL": database_url,
            "EXECDB_PORT": str(port),
            "EXECDB_ACCESS_LOG": "false",
            "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
        }
        log = tmp_path / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(EXECDB), "serve", "--no-worker"],
                env=env,
                cwd=tmp_path,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        server = ServeProcess(process, f"http://127.0.0.1:{port}", log)
        started.append(server)
        return server

    yield start
    for server in started:
        server.process.terminate()
    for server in started:
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@pytest.mark.postgres
def test_two_server_processes_count_together(
    databases: Databases, serve: Any, tmp_path: Path
) -> None:
    url = databases.url("postgres")
    services = prepare(settings_for(url))
    tokens = make_tokens(services)
    services.db.close()
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    one, two = serve(url, multiproc, "one"), serve(url, multiproc, "two")
    one.wait_until_ready()
    two.wait_until_ready()
    headers = {"Authorization": f"Bearer {tokens['both']}"}
    with (
        httpx.Client(base_url=one.url, headers=headers) as a,
        httpx.Client(base_url=two.url, headers=headers) as b,
    ):
        for _ in range(3):
            job_in(a, "FINISHED")
        for _ in range(2):
            crashed(b, cause="koji.timeout")
        scrapes = [scrape(a), scrape(b)]
    for got in scrapes:
        assert got("execdb_reports_total", state="RUNNING", outcome="accepted") == 5
        assert got("execdb_reports_total", state="FINISHED", outcome="accepted") == 3
        assert got("execdb_crashes_total", blame="THIRD_PARTY", cause_family="koji") == 2
        count = "execdb_http_request_duration_seconds_count"
        assert got(count, method="POST", route="/api/v1/jobs", code="201") == 5
        assert got("execdb_jobs", state="FINISHED") == 3
        assert got("execdb_jobs", state="CRASHED") == 2
    assert len(list(multiproc.glob("counter_*.db"))) == 2


def test_serve_refuses_a_multiprocess_dir_that_does_not_exist(
    databases: Databases, serve: Any, tmp_path: Path
) -> None:
    url = databases.url("sqlite")
    missing = tmp_path / "no-such-dir"
    server = serve(url, missing, "refused")
    assert server.process.wait(timeout=60) != 0
    output = server.log.read_text()
    assert f"PROMETHEUS_MULTIPROC_DIR={missing} is not a directory" in output
    assert "Traceback" not in output
