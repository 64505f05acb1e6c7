"""What every answer carries (the security headers), and HEAD on every page and API read."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from execdb.headers import CONTENT_SECURITY_POLICY
from tests.conftest import Databases, settings_for
from tests.helpers import create_job, job_in
from tests.live import LiveServer, make_tokens, prepare

EXPECTED = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}


def test_the_policy_allows_only_the_service_itself() -> None:
    directives = dict(d.split(" ", 1) for d in CONTENT_SECURITY_POLICY.split("; "))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY


class FailingServer(LiveServer):
    """The usual server, plus a route that fails as a bug would."""

    def app(self) -> FastAPI:
        app = super().app()

        @app.get("/fail")
        async def fail() -> None:
            raise RuntimeError("a bug")

        return app


@pytest.fixture
def failing(databases: Databases) -> Iterator[LiveServer]:
    settings = settings_for(databases.url("sqlite"), max_body_bytes=1024)
    services = prepare(settings)
    server = FailingServer(settings, services, tokens=make_tokens(services)).start()
    yield server
    server.stop()


def test_every_kind_of_answer_carries_the_security_headers(failing: LiveServer) -> None:
    with failing.client("admin") as client:
        job = create_job(client)["uuid"]
        answers = {
            "health": client.get("/healthz"),
            "api read": client.get(f"/api/v1/jobs/{job}"),
            "api write": client.patch(f"/api/v1/jobs/{job}", json={"state": "RUNNING"}),
            "page": client.get(f"/jobs/{job}"),
            "page 404": client.get("/jobs/not-a-job"),
            "api 404": client.get("/api/v1/nothing"),
            "400": client.get("/api/v1/jobs", params={"limit": 0}),
            "413": client.post("/api/v1/jobs", content=b"x" * 2048),
            "static": client.get("/static/web/style.css"),
            "docs": client.get("/docs"),
            "openapi": client.get("/openapi.json"),
            "500": client.get("/fail"),
        }
        with failing.client() as anonymous:
            answers["401"] = anonymous.post("/api/v1/jobs", json={})
    statuses = {name: answer.status_code for name, answer in answers.items()}
    assert statuses == {
        "health": 200,
        "api read": 200,
        "api write": 200,
        "page": 200,
        "page 404": 404,
        "api 404": 404,
        "400": 400,
        "413": 413,
        "static": 200,
        "docs": 200,
        "openapi": 200,
        "500": 500,
        "401": 401,
    }
    for name, answer in answers.items():
        got = {key: answer.headers.get(key) for key in EXPECTED}
        assert got == EXPECTED, name
        assert answer.headers.get_list("x-frame-options") == ["DENY"], "added once"


def test_the_api_docs_start_swagger_ui_without_inline_script(server: LiveServer) -> None:
    with server.client() as client:
        page = client.get("/docs").text
        script = client.get("/static/web/apidocs.js")
    assert 'data-openapi-url="/openapi.json"' in page
    assert "<script>" not in page, "every script is a file of the service"
    assert "style=" not in page
    assert script.status_code == 200
    assert "SwaggerUIBundle(" in script.text


READS = [
    "/",
    "/jobs",
    "/jobs/{job}",
    "/stats",
    "/causes",
    "/docs",
    "/healthz",
    "/api/v1/jobs",
    "/api/v1/jobs/{job}",
    "/api/v1/jobs/{job}/events",
    "/api/v1/jobs/{job}/deliveries",
    "/api/v1/causes",
    "/api/v1/stats",
    "/openapi.json",
    "/static/web/style.css",
]


@pytest.mark.parametrize("path", READS)
def test_head_answers_what_get_would_without_the_body(server: LiveServer, path: str) -> None:
    with server.client("admin") as client:
        url = path.format(job=job_in(client, "CRASHED")["uuid"])
        # One connection: a body sent after a HEAD answer would garble the GET after it.
        with httpx.Client(base_url=server.url, http1=True) as one:
            head = one.head(url)
            get = one.get(url)
    assert head.status_code == get.status_code == 200, head.text
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    if "content-length" in get.headers:
        assert int(head.headers["content-length"]) == len(get.content) > 0
    assert head.headers["x-content-type-options"] == "nosniff"


def test_head_on_a_missing_job_is_404(server: LiveServer) -> None:
    with server.client() as client:
        page = client.head("/jobs/0190d9a3-0000-7000-8000-000000000000")
        api = client.head("/api/v1/jobs/0190d9a3-0000-7000-8000-000000000000")
    assert (page.status_code, page.content) == (404, b"")
    assert (api.status_code, api.content) == (404, b"")
