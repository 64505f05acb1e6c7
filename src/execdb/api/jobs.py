"""The jobs API under /api/v1: thin routes that parse, call the service and shape answers."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from execdb.api.auth import NEEDS_TOKEN, CreateActor, ReadAccess, ReportActor, authorize
from execdb.api.deps import ServicesDep, base_url, get_services
from execdb.automation.schemas import DeliveryPublic
from execdb.db import utcnow
from execdb.errors import TransitionRefused
from execdb.http import OwnBodyRoutes, json_answer, json_body, optional_json_body
from execdb.jobs.schemas import (
    EventList,
    EventPublic,
    JobCreate,
    JobFound,
    JobList,
    JobPublic,
    JobReport,
    JobReported,
)
from execdb.jobs.search import JobSearch, with_period
from execdb.paging import Cursor
from execdb.vocabulary import Outcome

router = APIRouter(prefix="/api/v1", tags=["jobs"])
# The two routes that take nearly all the traffic read their own bodies (see below).
own_body = OwnBodyRoutes(router)

_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"description": text}
    for code, text in {
        400: "Invalid input; the message names the field.",
        401: "No token, or an unknown or revoked one.",
        403: "The token lacks the scope.",
        413: "The body, or its executor or trigger_data, is too large; the message names it.",
        503: "Database unavailable; retry.",
    }.items()
}


def _link(request: Request, cursor: Cursor | None) -> str | None:
    if cursor is None:
        return None
    url = request.url.include_query_params(cursor=cursor.encode())
    configured = base_url(request)
    return f"{configured}{url.path}?{url.query}"


# Creating jobs and reporting take nearly all the traffic, and FastAPI's work for each
# dependency and for a body parameter was most of what they cost. So these two routes check
# the token and read the body themselves, and declare both for the OpenAPI document in
# `openapi_extra` (figures in docs/benchmarks.md).
#
# Every write checks the token before it looks at its input, so that a caller without a
# valid token learns nothing but 401. FastAPI validates path parameters before a route's code
# runs (after its dependencies), and reads a body parameter before both: so `report` takes
# its UUID as text and parses it after `authorize`, and `reschedule`, whose token is checked
# by a dependency, reads its body itself.

_UUID = TypeAdapter(uuid.UUID)
# Declared as FastAPI declares a uuid.UUID parameter.
JobUuidText = Annotated[str, Path(json_schema_extra={"format": "uuid"})]


def _job_uuid(text: str) -> uuid.UUID:
    try:
        return _UUID.validate_python(text)
    except ValidationError as exc:
        errors = [{**e, "loc": ("path", "job_uuid")} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


@router.post(
    "/jobs",
    status_code=201,
    response_model=JobPublic,
    responses={200: {"description": "The job already made for this msg_id and target."}, **_ERRORS},
    openapi_extra=NEEDS_TOKEN | own_body.body(JobCreate),
)
async def create_job(request: Request) -> Response:
    """Create a job (SCHEDULED) and get its UUID (scope create)."""
    actor = await authorize(request, "create")
    new = await json_body(request, JobCreate)
    services = get_services(request)
    job, created = await services.db.run_write(services.jobs.create, new, actor, utcnow())
    return json_answer(JobPublic.from_row(job, base_url(request)), 201 if created else 200)


_READ_ERRORS: dict[int | str, dict[str, object]] = {
    400: {"description": "Invalid input; the message names the parameter."},
    404: {"description": "No such job."},
    503: {"description": "Database unavailable; retry."},
}


@router.get(
    "/jobs/{job_uuid}", response_model=JobPublic, dependencies=[ReadAccess], responses=_READ_ERRORS
)
async def get_job(job_uuid: uuid.UUID, services: ServicesDep, request: Request) -> JobPublic:
    """One job."""
    job = await services.db.run(services.jobs.get, job_uuid)
    return JobPublic.from_row(job, base_url(request))


@router.patch(
    "/jobs/{job_uuid}",
    response_model=JobReported,
    responses={
        404: {"description": "No such job."},
        409: {"description": "Illegal transition; the body holds the current state."},
        **_ERRORS,
    },
    openapi_extra=NEEDS_TOKEN | own_body.body(JobReport),
)
async def report(job_uuid: JobUuidText, request: Request) -> Response:
    """Switch a job's state (RUNNING, FINISHED, CRASHED, CANCELLED; scope report).

    Repeating the current state with the same content changes nothing and answers 200. An
    illegal switch answers 409 and is recorded in the job's history all the same.
    """
    actor = await authorize(request, "report")
    parsed = _job_uuid(job_uuid)
    body = await json_body(request, JobReport)
    services = get_services(request)
    try:
        done = await services.db.run_write(services.jobs.report, parsed, body, actor, utcnow())
    except TransitionRefused:
        services.metrics.reported(body.state, Outcome.REFUSED, None)
        raise
    services.metrics.reported(body.state, done.outcome, done.job)
    return json_answer(JobReported.from_row(done.job, base_url(request), warnings=done.warnings))


@router.get(
    "/jobs/{job_uuid}/log",
    response_class=PlainTextResponse,
    dependencies=[ReadAccess],
    responses={
        200: {"content": {"text/plain": {}}, "description": "The tail of the run's log."},
        **_READ_ERRORS,
        404: {"description": "No such job, or no log kept of it; the message says which."},
    },
)
async def job_log(job_uuid: uuid.UUID, services: ServicesDep) -> PlainTextResponse:
    """The tail of a job's log, as its CRASHED (or sampled FINISHED) report sent it."""
    log = await services.db.run(services.jobs.log, job_uuid)
    return PlainTextResponse(
        log["text"],
        headers={"X-Log-Original-Bytes": str(log["original_bytes"]), "X-Log-State": log["state"]},
    )


@router.get(
    "/jobs/{job_uuid}/events",
    response_model=EventList,
    dependencies=[ReadAccess],
    responses=_READ_ERRORS,
)
async def job_events(
    job_uuid: uuid.UUID,
    services: ServicesDep,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(description="From a prev or next link.")] = None,
) -> EventList:
    """A job's history, oldest first: every report, accepted or refused.

    A page ends early, with a `next` link, once its payloads hold about page_max_bytes.
    """
    after = Cursor.decode(cursor) if cursor else None
    events = await services.db.run(services.jobs.events, job_uuid, after, limit)
    return EventList(
        data=[EventPublic.model_validate(dict(row)) for row in events.rows],
        prev=_link(request, events.prev),
        next=_link(request, events.next),
    )


@router.get(
    "/jobs",
    response_model=JobList,
    dependencies=[ReadAccess],
    responses={k: v for k, v in _READ_ERRORS.items() if k != 404},
)
async def search_jobs(
    search: Annotated[JobSearch, Query()], services: ServicesDep, request: Request
) -> JobList:
    """Search jobs, newest first.

    A page ends early, with a `next` link, once its jobs' trigger_data, executor and details
    hold about page_max_bytes.
    """
    found = await services.db.run(services.jobs.search, with_period(search, utcnow()))
    root = base_url(request)
    return JobList(
        data=[JobFound.from_row(row, root, match=row.get("match")) for row in found.rows],
        prev=_link(request, found.prev),
        next=_link(request, found.next),
    )


class RescheduleOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    force: bool = Field(default=False, description="Also run a FINISHED job again.")


@router.post(
    "/jobs/{job_uuid}/reschedule",
    status_code=201,
    response_model=JobPublic,
    responses={
        200: {"description": "The job had been rescheduled already: its next attempt."},
        404: {"description": "No such job."},
        409: {"description": "The job is not CRASHED or CANCELLED (or FINISHED, with force)."},
        **_ERRORS,
    },
    openapi_extra=own_body.body(RescheduleOptions, required=False),
)
async def reschedule(
    job_uuid: uuid.UUID,
    actor: CreateActor,
    services: ServicesDep,
    request: Request,
    response: Response,
) -> JobPublic:
    """Run a job again: a new job, its next attempt, linked both ways (scope create or admin).

    Rescheduling the same job twice answers 200 with the attempt made the first time.
    """
    options = await optional_json_body(request, RescheduleOptions)
    job, created = await services.db.run_write(
        services.jobs.reschedule, job_uuid, actor, utcnow(), force=options.force
    )
    if not created:
        response.status_code = 200
    return JobPublic.from_row(job, base_url(request))


@router.post(
    "/jobs/{job_uuid}/heartbeat",
    response_model=JobPublic,
    responses={
        404: {"description": "No such job."},
        409: {"description": "The job is not RUNNING (the watchdog may have crashed it)."},
        **_ERRORS,
    },
)
async def heartbeat(
    job_uuid: uuid.UUID, actor: ReportActor, services: ServicesDep, request: Request
) -> JobPublic:
    """Say the executor running a job is alive; once a job has sent heartbeats, the watchdog
    crashes it when they stop."""
    job = await services.db.run_write(services.jobs.heartbeat, job_uuid, utcnow())
    return JobPublic.from_row(job, base_url(request))


class DeliveryList(BaseModel):
    data: list[DeliveryPublic]


@router.get(
    "/jobs/{job_uuid}/deliveries",
    response_model=DeliveryList,
    dependencies=[ReadAccess],
    responses=_READ_ERRORS,
)
async def deliveries(job_uuid: uuid.UUID, services: ServicesDep) -> DeliveryList:
    """What ExecDB sent or must send about a job: its dispatch and its notifications."""
    rows = await services.db.run(services.outbox.for_job, job_uuid)
    return DeliveryList(data=[DeliveryPublic.model_validate(row) for row in rows])
