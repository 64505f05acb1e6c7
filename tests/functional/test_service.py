"""What operators and proxies see: health, readiness, limits, failures, pages."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import text

from execdb.prepared import Prepared
from tests.conftest import Databases
from tests.helpers import create_job
from tests.live import LiveServer, StartServer
from tests.pgcluster import PostgresCluster


def test_health_and_readiness(server: LiveServer) -> None:
    with server.client() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ok"


def test_readiness_fails_when_the_schema_is_not_current(make_server: StartServer) -> None:
    server: LiveServer = make_server()
    with server.services.db.write() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'older'"))
    with server.client() as client:
        ready = client.get("/readyz")
        alive = client.get("/healthz")
    assert ready.status_code == 503
    assert "execdb db upgrade" in ready.json()["message"]
    assert alive.status_code == 200


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_the_limit_is_413(make_server: StartServer, chunked: bool) -> None:
    server: LiveServer = make_server(max_body_bytes=2048)
    body = b'{"task": "t", "item": "i", "item_type": "k", "trigger_data": {"x": "%s"}}' % (
        b"y" * 4096
    )
    with server.client("create") as client:
        content = iter([body[:1000], body[1000:]]) if chunked else body
        response = client.post(
            "/api/v1/jobs", content=content, headers={"Content-Type": "application/json"}
        )
        small = create_job(client, trigger_data={"x": "y" * 1000})
        listed = client.get("/api/v1/jobs").json()["data"]
    assert response.status_code == 413
    assert "2048-byte limit" in response.json()["message"]
    assert [j["uuid"] for j in listed] == [small["uuid"]], "only the small job was created"


def test_errors_are_json_without_traces(server: LiveServer) -> None:
    with server.client("admin") as client:
        responses = [
            client.get("/api/v1/nothing-here"),
            client.delete("/api/v1/jobs"),
            client.get("/api/v1/jobs/not-a-uuid"),
            client.patch("/api/v1/jobs/not-a-uuid", json={"state": "RUNNING"}),
        ]
    assert [r.status_code for r in responses] == [404, 405, 400, 400]
    for response in responses:
        assert response.headers["content-type"] == "application/json"
        assert response.json()["message"]
        assert "Traceback" not in response.text


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_an_unreachable_database_is_503_and_recovers(
    backend: str, databases: Databases, pg_cluster: PostgresCluster, make_server: StartServer
) -> None:
    server: LiveServer = make_server()
    name = server.settings.effective_database_url.rsplit("/", 1)[1]
    with server.client("admin") as client:
        job = create_job(client)
        with pg_cluster.connect() as admin:
            admin.autocommit = True
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            down = [
                client.get(f"/api/v1/jobs/{job['uuid']}"),
                client.patch(f"/api/v1/jobs/{job['uuid']}", json={"state": "RUNNING"}),
                client.get("/readyz"),
            ]
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        back = client.get(f"/api/v1/jobs/{job['uuid']}")
        if back.status_code == 503:  # a dead connection may be found once more per thread
            back = client.get(f"/api/v1/jobs/{job['uuid']}")
    assert [r.status_code for r in down] == [503, 503, 503]
    for response in down:
        assert "unavailable" in response.json()["message"]
        assert "Traceback" not in response.text
    assert down[0].headers["retry-after"] == "1"
    assert back.status_code == 200
    assert back.json()["state"] == "SCHEDULED", "the failed report changed nothing"


def test_api_docs_work_offline(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url) as client:
        docs = client.get("/docs")
        schema = client.get("/openapi.json")
        assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", docs.text)
        fetched = {url: client.get(url).status_code for url in assets}
    assert docs.status_code == 200
    assert assets, "the page loads its scripts and styles"
    assert all(url.startswith("/") for url in assets), f"external assets: {assets}"
    assert set(fetched.values()) == {200}, fetched
    assert "/api/v1/jobs/{job_uuid}" in schema.json()["paths"]


def test_the_document_describes_the_bodies_of_the_hot_routes(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url) as client:
        document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    for path, method, body in (
        ("/api/v1/jobs", "post", "JobCreate"),
        ("/api/v1/jobs/{job_uuid}", "patch", "JobReport"),
    ):
        content = document["paths"][path][method]["requestBody"]["content"]
        assert content["application/json"]["schema"] == {"$ref": f"#/components/schemas/{body}"}
        assert body in schemas
    assert {"state", "executor", "blame", "cause", "details"} <= set(
        schemas["JobReport"]["properties"]
    )
    assert {"task", "item", "item_type", "trigger_data"} <= set(schemas["JobCreate"]["properties"])


def test_the_speed_measures_can_be_switched_off_to_compare(make_server: StartServer) -> None:
    """docs/architecture.md: group commit and the prepared statements are settings, so that a
    benchmark can measure what each is worth; without them a job's life is the same."""
    server: LiveServer = make_server(group_commit=False, prepared_statements=False)
    try:
        with server.client("both") as client:
            job = create_job(client)
            for body in ({"state": "RUNNING"}, {"state": "CRASHED", "cause": "koji.timeout"}):
                answer = client.patch(f"/api/v1/jobs/{job['uuid']}", json=body)
                assert answer.status_code == 200, answer.text
            events = client.get(f"/api/v1/jobs/{job['uuid']}/events").json()["data"]
        assert answer.json()["blame"] == "THIRD_PARTY"
        assert [e["to_state"] for e in events] == ["SCHEDULED", "RUNNING", "CRASHED"]
    finally:
        Prepared.enabled = True
