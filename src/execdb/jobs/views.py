"""Server-rendered pages of the job domain."""

from __future__ import annotations

import uuid
from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from execdb.auth.api import ReadAccess
from execdb.http import ServicesDep, base_url
from execdb.jobs.schemas import EventPublic, JobPublic

router = APIRouter(include_in_schema=False, dependencies=[ReadAccess])
templates = Jinja2Templates(directory=str(resources.files("execdb.web") / "templates"))


@router.get("/jobs/{job_uuid}", response_class=HTMLResponse)
async def job_page(job_uuid: uuid.UUID, services: ServicesDep, request: Request) -> HTMLResponse:
    job = await services.db.run(services.jobs.get, job_uuid)
    events = await services.db.run(services.jobs.events, job_uuid, None, 1000)
    return templates.TemplateResponse(
        request,
        "job.html",
        {
            "job": JobPublic.from_row(job, base_url(request)),
            "events": [EventPublic.model_validate(dict(row)) for row in events.rows],
            "cause": services.catalogue.get(job["cause"]) if job["cause"] else None,
        },
    )
