"""Generated requests for every operation in the live server's OpenAPI document.

Schemathesis reads /openapi.json from the running server and generates requests from it, valid
and invalid ones, sent with an admin token so that the write routes get past authentication.
Whatever comes in, the server must not answer with a server error, and what it answers must
match the response schemas and content types the document declares.

The document only exists once a server runs, after collection. Schemathesis's lazy loader
(`schemathesis.pytest.from_fixture`) would wait for the fixture, but it sets
`Function._nodeid`, which pytest 9.2 no longer has; so the operations are listed here (and
checked against the document), and each one is fuzzed through `as_strategy` and Hypothesis.
Requests that fuzzing or probing found to end in a server error are kept below as explicit
cases.
"""

from __future__ import annotations

import logging
import socket
import time
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
import schemathesis.checks
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.generation import GenerationMode

from tests.helpers import create_job, job_in
from tests.live import LiveServer

OPERATIONS = (
    "GET /healthz",
    "GET /readyz",
    "POST /api/v1/jobs",
    "GET /api/v1/jobs",
    "GET /api/v1/jobs/{job_uuid}",
    "PATCH /api/v1/jobs/{job_uuid}",
    "GET /api/v1/jobs/{job_uuid}/events",
    "GET /api/v1/jobs/{job_uuid}/log",
    "POST /api/v1/jobs/{job_uuid}/reschedule",
    "POST /api/v1/jobs/{job_uuid}/heartbeat",
    "GET /api/v1/jobs/{job_uuid}/deliveries",
    "PUT /api/v1/jobs/{job_uuid}/classification",
    "GET /api/v1/causes",
    "GET /api/v1/stats",
    "POST /api/v1/admin/reclassify",
    "GET /api/v1/rules",
    "POST /api/v1/rules",
    "POST /api/v1/rules/try",
    "GET /api/v1/rules/{rule_id}",
    "PUT /api/v1/rules/{rule_id}",
    "POST /api/v1/rules/{rule_id}/disable",
    "POST /api/v1/rules/{rule_id}/apply",
)
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.content_type_conformance,
]
FUZZ = settings(
    max_examples=50,
    deadline=None,
    database=None,  # one inner test per operation: stored examples would cross over
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
)
# NUL in a search parameter is a server error on PostgreSQL (see HOSTILE below); generated
# text leaves NUL out so that the fuzzing stays about everything else. Set to True once fixed.
ALLOW_NUL = True


class ServerTracebacks(logging.Filter):
    """Takes the tracebacks off the server's error log records, for the test to show.

    On Python 3.11, formatting a traceback parses source lines with `ast`, whose recursion
    guard is shared by all threads: the server thread formatting one while pytest (in the test
    thread) builds a report can crash pytest with "AST constructor recursion depth mismatch".
    """

    LOGGERS = ("execdb", "uvicorn.error")

    def __init__(self) -> None:
        super().__init__()
        self.caught: list[BaseException] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            self.caught.append(record.exc_info[1])
            record.exc_info = None
        return True

    def explain(self, response_text: str) -> str:
        """The answer and the server's tracebacks (formatted here, in the test thread)."""
        deadline = time.monotonic() + 2
        while not self.caught and time.monotonic() < deadline:
            time.sleep(0.01)  # the server logs just after it answers
        shown = "".join(line for exc in self.caught[:1] for line in traceback.format_exception(exc))
        return f"{response_text}\n{shown}"


@pytest.fixture
def server_errors() -> Iterator[ServerTracebacks]:
    keeper = ServerTracebacks()
    for name in keeper.LOGGERS:
        logging.getLogger(name).addFilter(keeper)
    yield keeper
    for name in keeper.LOGGERS:
        logging.getLogger(name).removeFilter(keeper)


@pytest.fixture
def api_schema(server: LiveServer) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    schema.config.generation.update(allow_x00=ALLOW_NUL)
    return schema


def test_every_operation_is_fuzzed(api_schema: schemathesis.BaseSchema) -> None:
    listed = {result.ok().label for result in api_schema.get_all_operations()}
    assert listed == set(OPERATIONS)


@pytest.mark.parametrize(
    "operation", [pytest.param(op, id=op.replace(" ", ":")) for op in OPERATIONS]
)
def test_no_server_error_and_answers_match_the_document(
    server: LiveServer,
    api_schema: schemathesis.BaseSchema,
    server_errors: ServerTracebacks,
    operation: str,
) -> None:
    method, path = operation.split(" ")
    endpoint = api_schema[path][method]
    headers = {"Authorization": f"Bearer {server.tokens['admin']}"}

    variants: list[dict[str, Any]] = [{}]
    if "{job_uuid}" in path:
        # Generated UUIDs name no job: also aim at real jobs, at several points of their life.
        with server.client("admin") as admin:
            variants += [
                {"path_parameters": {"job_uuid": job_in(admin, state)["uuid"]}}
                for state in ("SCHEDULED", "RUNNING", "CRASHED")
            ]
    cases = st.one_of(
        [
            endpoint.as_strategy(mode, **variant)
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
            for variant in variants
        ]
    )

    @FUZZ
    @given(case=cases)
    def fuzz(case: schemathesis.Case) -> None:
        server_errors.caught.clear()
        response = case.call(base_url=server.url, headers=headers)
        if response.status_code >= 500:
            request = case.as_curl_command(base_url=server.url)
            raise AssertionError(f"{request}\n{server_errors.explain(response.text)}")
        case.validate_response(response, checks=CHECKS, headers=headers)

    fuzz()


# Requests that once passed validation and then failed on the way to the database or in it,
# leaving some of them stored where they broke every later listing: (method, "job" or "jobs",
# query parameters, raw JSON body).
NESTED = "[" * 300 + "]" * 300
HOSTILE = [
    pytest.param("GET", "jobs", {"task": "a\x00b"}, None, id="nul-task"),
    pytest.param("GET", "jobs", {"item:like": "x\x00*"}, None, id="nul-item-like"),
    pytest.param("GET", "jobs", {"msg_id": "\x00"}, None, id="nul-msg-id"),
    pytest.param("GET", "jobs", {"since": "0001-01-01T00:00:00+01:00"}, None, id="since-before-1"),
    pytest.param(
        "GET", "jobs", {"since": "2024-01-01,9999-12-31T23:00-05:00"}, None, id="since-9999"
    ),
    pytest.param(
        "PATCH",
        "job",
        None,
        '{"state": "CANCELLED", "details": "\\ud800"}',
        id="surrogate-details",
    ),
    pytest.param(
        "PATCH",
        "job",
        None,
        '{"state": "RUNNING", "executor": {"log": "\\udfff"}}',
        id="surrogate-executor",
    ),
    pytest.param(
        "PATCH",
        "job",
        None,
        '{"state": "RUNNING", "executor": {"\\ud800": 1}}',
        id="surrogate-executor-key",
    ),
    pytest.param(
        "POST",
        "jobs",
        None,
        '{"task": "t", "item": "i", "item_type": "k", "trigger_data": {"a": "\\ud800"}}',
        id="surrogate-trigger-data",
    ),
    pytest.param(
        "POST",
        "jobs",
        None,
        f'{{"task": "t", "item": "i", "item_type": "k", "trigger_data": {{"a": {NESTED}}}}}',
        id="nested-trigger-data",
    ),
    pytest.param(
        "PATCH",
        "job",
        None,
        f'{{"state": "RUNNING", "executor": {{"a": {NESTED}}}}}',
        id="nested-executor",
    ),
]


@pytest.mark.parametrize(("method", "target", "params", "body"), HOSTILE)
def test_hostile_input_is_no_server_error(
    server: LiveServer,
    server_errors: ServerTracebacks,
    method: str,
    target: str,
    params: dict[str, str] | None,
    body: str | None,
) -> None:
    with server.client("admin") as client:
        url = "/api/v1/jobs"
        if target == "job":
            url = f"{url}/{create_job(client)['uuid']}"
        headers = {"Content-Type": "application/json"}
        response = client.request(method, url, params=params, content=body, headers=headers)
        assert response.status_code < 500, server_errors.explain(response.text)
        # Nor may it leave behind anything that breaks the answers to others.
        server_errors.caught.clear()
        listing = client.get("/api/v1/jobs")
        assert listing.status_code == 200, server_errors.explain(listing.text)


@pytest.mark.parametrize("path", ["/api/v1/jobs", "/api/v1/jobs/{job_uuid}"])
def test_a_client_that_leaves_mid_body_is_no_server_error(
    server: LiveServer, server_errors: ServerTracebacks, path: str
) -> None:
    with server.client("admin") as client:
        job = create_job(client)
    method = "POST" if path == "/api/v1/jobs" else "PATCH"
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            f"{method} {path.format(job_uuid=job['uuid'])} HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {server.tokens['admin']}\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
            '{"state": "RUN'.encode()
        )
    time.sleep(0.5)  # the server sees the connection close and gives up on the request
    with server.client("admin") as client:
        listed = client.get("/api/v1/jobs").json()["data"]
    assert not server_errors.caught, server_errors.explain("")
    assert [(j["uuid"], j["state"]) for j in listed] == [(job["uuid"], "SCHEDULED")]
