"""Small helpers that keep API tests about behaviour rather than plumbing."""

from __future__ import annotations

from typing import Any

import httpx

NEW_JOB: dict[str, Any] = {
    "task": "rpmlint",
    "item": "xchat-2.8.8-21.fc40",
    "item_type": "koji_build",
    "arch": "x86_64",
}


def create_job(client: httpx.Client, **overrides: Any) -> dict[str, Any]:
    response = client.post("/api/v1/jobs", json=NEW_JOB | overrides)
    assert response.status_code == 201, response.text
    job: dict[str, Any] = response.json()
    return job


def report(client: httpx.Client, uuid: str, **body: Any) -> httpx.Response:
    return client.patch(f"/api/v1/jobs/{uuid}", json=body)


# The report that takes a job into each state, and how to get there from SCHEDULED.
INTO: dict[str, dict[str, Any]] = {
    "RUNNING": {"state": "RUNNING", "executor": {"name": "buildbot", "build": 7}},
    "FINISHED": {"state": "FINISHED"},
    "CRASHED": {"state": "CRASHED", "blame": "TASK", "cause": "task.exception", "details": "x"},
    "CANCELLED": {"state": "CANCELLED", "details": "not needed"},
    "SCHEDULED": {"state": "SCHEDULED"},
}
PATH: dict[str, list[str]] = {
    "SCHEDULED": [],
    "RUNNING": ["RUNNING"],
    "FINISHED": ["RUNNING", "FINISHED"],
    "CRASHED": ["RUNNING", "CRASHED"],
    "CANCELLED": ["CANCELLED"],
}


def job_in(client: httpx.Client, state: str, **overrides: Any) -> dict[str, Any]:
    job = create_job(client, **overrides)
    for step in PATH[state]:
        response = report(client, job["uuid"], **INTO[step])
        assert response.status_code == 200, response.text
        job = response.json()
    return job


def events(client: httpx.Client, uuid: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/jobs/{uuid}/events", params={"limit": 1000})
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data
