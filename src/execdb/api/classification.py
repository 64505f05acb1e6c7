"""A person's classification of a crash: PUT /api/v1/jobs/<uuid>/classification."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request, Response

from execdb.api.auth import Require
from execdb.api.deps import ServicesDep, base_url
from execdb.db import utcnow
from execdb.http import OwnBodyRoutes, json_answer, json_body
from execdb.jobs.schemas import ClassificationIn, Classified
from execdb.vocabulary import Actor, ClassifiedBy

router = APIRouter(prefix="/api/v1", tags=["jobs"])
own_body = OwnBodyRoutes(router)

TriageActor = Depends(Require("triage"))


@router.put(
    "/jobs/{job_uuid}/classification",
    response_model=Classified,
    responses={
        400: {"description": "Invalid input; the message names the field."},
        401: {"description": "No token, or an unknown or revoked one."},
        403: {"description": "The token lacks the scope triage."},
        404: {"description": "No such job."},
        409: {"description": "The job is not CRASHED; nothing was changed."},
        503: {"description": "Database unavailable; retry."},
    },
    openapi_extra=own_body.body(ClassificationIn),
)
async def classify(
    job_uuid: uuid.UUID,
    request: Request,
    services: ServicesDep,
    actor: Actor = TriageActor,
) -> Response:
    """Classify a crash by hand: its blame and cause, with a note (scope triage or admin).

    Recorded in the job's history; rules never overwrite it. The retry policy is applied to
    the new classification: a retry may become due or be cancelled (docs/policies.md).
    """
    change = await json_body(request, ClassificationIn)
    job, effect = await services.db.run_write(
        services.triage.classify, job_uuid, change, actor, utcnow()
    )
    services.metrics.classified(ClassifiedBy.PERSON)
    warnings = []
    if change.cause not in services.catalogue:
        warnings.append(f"cause: {change.cause!r} is not in the cause catalogue; kept as sent")
    answer = Classified.from_row(job, base_url(request), retry=effect.describe(), warnings=warnings)
    return json_answer(answer)
