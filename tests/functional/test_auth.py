"""Authentication and scopes on every write route, found from the app itself so that a new
write route cannot be added without being covered here."""

from __future__ import annotations

from uuid import uuid4

import pytest

from execdb.app import create_app
from execdb.config import Settings
from tests.helpers import create_job, job_in
from tests.live import LiveServer, StartServer

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# The scope each write route needs; a new route fails test_every_write_route_is_listed.
SCOPE = {
    ("POST", "/api/v1/jobs"): "create",
    ("PATCH", "/api/v1/jobs/{job_uuid}"): "report",
    ("POST", "/api/v1/jobs/{job_uuid}/reschedule"): "create",
    ("POST", "/api/v1/jobs/{job_uuid}/heartbeat"): "report",
    ("POST", "/api/v1/admin/reclassify"): "admin",
    ("PUT", "/api/v1/jobs/{job_uuid}/classification"): "triage",
    # The rules' writes: triage (or admin).
    ("POST", "/api/v1/rules"): "triage",
    ("PUT", "/api/v1/rules/{rule_id}"): "triage",
    ("POST", "/api/v1/rules/{rule_id}/disable"): "triage",
    ("POST", "/api/v1/rules/try"): "triage",
    ("POST", "/api/v1/rules/{rule_id}/apply"): "triage",
}
# A shipped rule, for the routes that name one.
RULE_ID = "resources.oom_killer"
RULE = {
    "cause": "resources.oom",
    "precedence": 95,
    "description": "The OOM killer killed a process.",
    "match": [r"Out of memory: Killed process \d+"],
    "examples": ["Out of memory: Killed process 4242 (python3)"],
}
BODY = {
    ("POST", "/api/v1/jobs"): {"task": "t", "item": "i", "item_type": "koji_build"},
    ("PATCH", "/api/v1/jobs/{job_uuid}"): {"state": "RUNNING"},
    ("POST", "/api/v1/jobs/{job_uuid}/reschedule"): {},
    ("POST", "/api/v1/jobs/{job_uuid}/heartbeat"): None,
    ("POST", "/api/v1/admin/reclassify"): {"dry_run": False},
    ("PUT", "/api/v1/jobs/{job_uuid}/classification"): {"cause": "task.exception"},
    ("POST", "/api/v1/rules"): RULE | {"id": "site.oom"},
    ("PUT", "/api/v1/rules/{rule_id}"): RULE,
    ("POST", "/api/v1/rules/{rule_id}/disable"): {"note": "n"},
    ("POST", "/api/v1/rules/try"): {"rule": RULE},
    ("POST", "/api/v1/rules/{rule_id}/apply"): {},
}
# The state a route's job is put in first, so that the request can succeed.
FROM = {
    ("POST", "/api/v1/jobs/{job_uuid}/reschedule"): "CANCELLED",
    ("POST", "/api/v1/jobs/{job_uuid}/heartbeat"): "RUNNING",
    ("PUT", "/api/v1/jobs/{job_uuid}/classification"): "CRASHED",
}


def write_routes() -> set[tuple[str, str]]:
    paths = create_app(Settings(database_url="sqlite://")).openapi()["paths"]
    return {
        (method.upper(), path)
        for path, operations in paths.items()
        for method in operations
        if method.upper() in WRITE_METHODS
    }


def test_every_write_route_is_listed() -> None:
    assert write_routes() == set(SCOPE)


def test_every_write_route_declares_the_token_in_the_openapi_document() -> None:
    document = create_app(Settings(database_url="sqlite://")).openapi()
    assert document["components"]["securitySchemes"]["token"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An ExecDB API token.",
    }
    for method, path in SCOPE:
        assert document["paths"][path][method.lower()]["security"] == [{"token": []}], path


def _call(server: LiveServer, route: tuple[str, str], headers: dict[str, str]) -> tuple[int, str]:
    method, path = route
    with server.client("admin") as admin:
        uuid = job_in(admin, FROM.get(route, "SCHEDULED"))["uuid"]
        before = admin.get(f"/api/v1/jobs/{uuid}").json()
        rules_before = admin.get("/api/v1/rules").json()["rules_version"]
        with server.client() as client:
            response = client.request(
                method,
                path.format(job_uuid=uuid, rule_id=RULE_ID),
                json=BODY[route],
                headers=headers,
            )
        after = admin.get(f"/api/v1/jobs/{uuid}").json()
        listed = admin.get("/api/v1/jobs").json()["data"]
        rules_after = admin.get("/api/v1/rules").json()["rules_version"]
    if response.status_code >= 400:
        assert after == before, "a refused request changes nothing"
        assert len(listed) == 1, "a refused request creates nothing"
        assert rules_after == rules_before, "a refused request changes no rule"
    return response.status_code, response.text


@pytest.mark.parametrize("route", sorted(SCOPE), ids=" ".join)
def test_without_a_token_is_401(server: LiveServer, route: tuple[str, str]) -> None:
    status, text = _call(server, route, {})
    assert status == 401
    assert "Authorization: Bearer" in text


@pytest.mark.parametrize("route", sorted(SCOPE), ids=" ".join)
@pytest.mark.parametrize(
    "header", ["Bearer nope", "Bearer", "Basic dXNlcjpwYXNz", "execdb_x"], ids=repr
)
def test_a_bad_token_is_401(server: LiveServer, route: tuple[str, str], header: str) -> None:
    status, text = _call(server, route, {"Authorization": header})
    assert status == 401
    assert "nope" not in text, "the error never echoes a secret"


@pytest.mark.parametrize("route", sorted(SCOPE), ids=" ".join)
def test_a_revoked_token_is_401(server: LiveServer, route: tuple[str, str]) -> None:
    status, text = _call(server, route, {"Authorization": f"Bearer {server.tokens['revoked']}"})
    assert status == 401
    assert "revoked" in text


@pytest.mark.parametrize("route", sorted(SCOPE), ids=" ".join)
def test_the_wrong_scope_is_403(server: LiveServer, route: tuple[str, str]) -> None:
    wrong = "report" if SCOPE[route] == "create" else "create"
    status, text = _call(server, route, {"Authorization": f"Bearer {server.tokens[wrong]}"})
    assert status == 403
    assert SCOPE[route] in text


@pytest.mark.parametrize("route", sorted(SCOPE), ids=" ".join)
@pytest.mark.parametrize("token", ["admin", "scoped"])
def test_the_right_scope_or_admin_is_accepted(
    server: LiveServer, route: tuple[str, str], token: str
) -> None:
    if token == "scoped":
        token = "triage" if SCOPE[route] == "triage" else "both"
    status, text = _call(server, route, {"Authorization": f"Bearer {server.tokens[token]}"})
    if SCOPE[route] == "admin" and token != "admin":
        assert status == 403, "create and report together are not admin"
    else:
        assert status in (200, 201), text


def test_reports_name_the_token_that_sent_them(server: LiveServer) -> None:
    with server.client("create") as trigger, server.client("report") as executor:
        job = create_job(trigger)
        executor.patch(f"/api/v1/jobs/{job['uuid']}", json={"state": "RUNNING"})
        history = executor.get(f"/api/v1/jobs/{job['uuid']}/events").json()["data"]
    assert [e["actor"] for e in history] == ["test-create", "test-report"]


def test_reads_are_public_by_default(server: LiveServer) -> None:
    with server.client("admin") as admin:
        job = job_in(admin, "RUNNING")
    with server.client() as anonymous:
        for path in (
            f"/api/v1/jobs/{job['uuid']}",
            f"/api/v1/jobs/{job['uuid']}/events",
            "/api/v1/jobs",
            "/api/v1/causes",
            f"/jobs/{job['uuid']}",
        ):
            assert anonymous.get(path).status_code == 200, path


def test_reads_can_require_a_token(make_server: StartServer) -> None:
    server: LiveServer = make_server(require_token_for_reads=True)
    with server.client("admin") as admin:
        job = create_job(admin)
    paths = [
        f"/api/v1/jobs/{job['uuid']}",
        "/api/v1/jobs",
        "/api/v1/causes",
        f"/jobs/{job['uuid']}",
    ]
    with server.client() as anonymous, server.client("report") as reader:
        for path in paths:
            assert anonymous.get(path).status_code == 401, path
            assert reader.get(path).status_code == 200, path
        assert anonymous.get("/healthz").status_code == 200


@pytest.mark.parametrize("route", sorted(SCOPE), ids=" ".join)
@pytest.mark.parametrize(
    ("token", "status"),
    [(None, 401), ("revoked", 401), ("wrong", 403)],
    ids=["none", "revoked", "scope"],
)
@pytest.mark.parametrize("broken", ["uuid", "body", "both"])
def test_the_token_is_checked_before_the_input(
    server: LiveServer, route: tuple[str, str], token: str | None, status: int, broken: str
) -> None:
    """A malformed UUID or body does not tell a caller without a valid token anything."""
    method, path = route
    if token == "wrong":
        token = "report" if SCOPE[route] == "create" else "create"
    uuid = "not-a-uuid" if broken in ("uuid", "both") else str(uuid4())
    body = b"{not json" if broken in ("body", "both") else b"{}"
    with server.client(token) as client:
        response = client.request(
            method,
            path.format(job_uuid=uuid, rule_id="r" * 300 if broken != "body" else RULE_ID),
            content=body,
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == status, response.text
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"
    else:
        assert "lacks the scope" in response.json()["message"]


@pytest.mark.parametrize("route", sorted(r for r in SCOPE if "{job_uuid}" in r[1]), ids=" ".join)
def test_with_a_valid_token_a_malformed_uuid_is_400(
    server: LiveServer, route: tuple[str, str]
) -> None:
    method, path = route
    with server.client("admin") as client:
        response = client.request(method, path.format(job_uuid="not-a-uuid"), json=BODY[route])
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith("job_uuid: Input should be a valid UUID")


@pytest.mark.parametrize("body", [b"", b"null", b'{"force": false}'])
def test_reschedule_takes_no_body_or_its_options(server: LiveServer, body: bytes) -> None:
    with server.client("admin") as client:
        job = job_in(client, "FINISHED")
        headers = {"Content-Type": "application/json"} if body else {}
        refused = client.post(
            f"/api/v1/jobs/{job['uuid']}/reschedule", content=body, headers=headers
        )
        bad = client.post(
            f"/api/v1/jobs/{job['uuid']}/reschedule",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        )
    assert refused.status_code == 409, "without force, a FINISHED job is not run again"
    assert bad.status_code == 400
    assert bad.json()["message"].startswith("the body is not valid JSON")
