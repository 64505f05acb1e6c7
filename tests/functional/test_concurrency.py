"""Requests that race: conflicting reports on one job, and the same job created many times.

Every request comes from its own thread and its own HTTP connection, opened beforehand, and the
threads wait at a barrier so that the requests reach the server together.
"""

from __future__ import annotations

import ssl
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.helpers import NEW_JOB, events, job_in
from tests.live import LiveServer

# Conflicting ways for a RUNNING job to end; each appears several times among the reports,
# so the winner's twins must be answered as repeats and everything else refused.
ENDINGS: list[dict[str, Any]] = [
    {"state": "FINISHED"},
    {"state": "FINISHED", "details": "all checks passed"},
    {"state": "CANCELLED", "details": "superseded by a newer build"},
    {"state": "CRASHED", "cause": "koji.timeout"},
    {"state": "CRASHED", "cause": "task.exception", "details": "Traceback ..."},
    {"state": "CRASHED", "blame": "TASKOTRON", "cause": "minion.timeout"},
    {"state": "CRASHED", "blame": "TASK", "cause": "custom.not_in_the_catalogue"},
]
REPORTS = 50
CREATES = 30
ROUNDS = 3
# One TLS context for all clients (the server is plain HTTP): each client otherwise loads the
# CA bundle, which costs seconds for fifty of them.
TLS = ssl.create_default_context()


def race(
    server: LiveServer, token: str, count: int, send: Callable[[httpx.Client, int], httpx.Response]
) -> list[httpx.Response]:
    """`send(client, i)` for i in range(count), all at once, each on its own connection."""
    clients = [server.client(token, verify=TLS) for _ in range(count)]
    barrier = threading.Barrier(count, timeout=30)

    def one(i: int) -> httpx.Response:
        clients[i].get("/healthz").raise_for_status()  # connect before the start
        barrier.wait()
        return send(clients[i], i)

    try:
        with ThreadPoolExecutor(max_workers=count) as pool:
            return list(pool.map(one, range(count)))
    finally:
        for client in clients:
            client.close()


def _patches(
    url: str, bodies: list[dict[str, Any]]
) -> Callable[[httpx.Client, int], httpx.Response]:
    return lambda client, i: client.patch(url, json=bodies[i])


def _key(body: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(body.items()))


def _reported(payload: dict[str, Any]) -> dict[str, Any]:
    """An event's payload as it was reported: without what ExecDB concluded about a crash
    (every cause here is the reporter's, so the conclusion only says so)."""
    concluded = payload.get("classification")
    if concluded is not None:
        assert concluded["classified_by"] == "reporter", payload
    return {k: v for k, v in payload.items() if k != "classification"}


def test_one_of_many_conflicting_reports_wins(server: LiveServer) -> None:
    bodies = [ENDINGS[i % len(ENDINGS)] for i in range(REPORTS)]
    with server.client("admin") as admin:
        for _ in range(ROUNDS):
            job = job_in(admin, "RUNNING")
            url = f"/api/v1/jobs/{job['uuid']}"
            answers = race(server, "report", REPORTS, _patches(url, bodies))
            history = events(admin, job["uuid"])
            final = admin.get(url).json()
            check_one_winner(bodies, answers, history, final)


def check_one_winner(
    bodies: list[dict[str, Any]],
    answers: list[httpx.Response],
    history: list[dict[str, Any]],
    final: dict[str, Any],
) -> None:
    statuses = [a.status_code for a in answers]
    assert set(statuses) <= {200, 409}, [a.text for a in answers if a.status_code >= 500]

    # The history: the creation, RUNNING, then every one of the reports, exactly one accepted.
    assert [(e["to_state"], e["outcome"]) for e in history[:2]] == [
        ("SCHEDULED", "accepted"),
        ("RUNNING", "accepted"),
    ]
    raced = history[2:]
    assert len(raced) == REPORTS
    accepted = [e for e in raced if e["outcome"] == "accepted"]
    assert len(accepted) == 1, accepted
    winner = _reported(accepted[0]["payload"])
    assert winner in ENDINGS
    assert all(
        e["from_state"] == ("RUNNING" if e is accepted[0] else winner["state"]) for e in raced
    )
    assert sorted(e["outcome"] for e in raced if e is not accepted[0]) == sorted(
        "repeated" if _reported(e["payload"]) == winner else "refused"
        for e in raced
        if e is not accepted[0]
    )
    assert sorted(_key(_reported(e["payload"])) for e in raced) == sorted(map(_key, bodies))

    # The answers: 200 to the winner and its twins only, each showing the job as it ended.
    assert statuses.count(200) == bodies.count(winner)
    for body, answer in zip(bodies, answers, strict=True):
        if body == winner:
            assert answer.status_code == 200, answer.text
            shown = answer.json()
            shown.pop("warnings")
            assert shown == final
        else:
            assert answer.status_code == 409, answer.text
            assert answer.json()["state"] == winner["state"]

    assert final["state"] == winner["state"]
    assert final["cause"] == winner.get("cause")
    assert final["details"] == winner.get("details")
    assert final["finished_at"] is not None


def test_the_same_job_created_at_once_is_one_job(server: LiveServer) -> None:
    new = NEW_JOB | {"msg_id": f"msg-{uuid.uuid4()}", "trigger_data": {"n": 1}}
    answers = race(server, "create", CREATES, lambda c, i: c.post("/api/v1/jobs", json=new))

    assert all(a.status_code < 500 for a in answers), [a.text for a in answers]
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] * (CREATES - 1) + [201], [a.text for a in answers]
    assert len({a.json()["uuid"] for a in answers}) == 1
    made = next(a.json() for a in answers if a.status_code == 201)
    assert all(a.json() == made for a in answers)

    with server.client("admin") as admin:
        found = admin.get("/api/v1/jobs", params={"msg_id": new["msg_id"]}).json()["data"]
        assert [job["uuid"] for job in found] == [made["uuid"]]
        history = events(admin, made["uuid"])
    assert [(e["to_state"], e["outcome"], e["actor"]) for e in history] == [
        ("SCHEDULED", "accepted", "test-create")
    ]
