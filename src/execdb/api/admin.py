"""The admin API under /api/v1/admin (scope admin): work on many jobs at once."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from execdb.api.auth import Require
from execdb.api.deps import ServicesDep, base_url
from execdb.db import utcnow
from execdb.http import OwnBodyRoutes, optional_json_body
from execdb.jobs.reclassify import Change, Scope
from execdb.jobs.schemas import (
    AnswerPublic,
    Reclassified,
    ReclassifyOptions,
    ReclassifyResult,
    links,
)
from execdb.vocabulary import Actor

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])
own_body = OwnBodyRoutes(router)

AdminActor = Annotated[Actor, Depends(Require("admin"))]


def _public(change: Change, root: str) -> Reclassified:
    href, _ = links(root, change.uuid)
    return Reclassified(
        uuid=change.uuid,
        href=href,
        old=AnswerPublic.model_validate(change.old.as_dict()),
        new=AnswerPublic.model_validate(change.new.as_dict()),
        retry_withdrawn=change.retry_withdrawn,
    )


@router.post(
    "/reclassify",
    response_model=ReclassifyResult,
    responses={
        400: {"description": "Invalid input; the message names the field."},
        401: {"description": "No token, or an unknown or revoked one."},
        403: {"description": "The token lacks the scope admin."},
        503: {"description": "Database unavailable; retry."},
    },
    openapi_extra=own_body.body(ReclassifyOptions, required=False),
)
async def reclassify(
    actor: AdminActor, services: ServicesDep, request: Request
) -> ReclassifyResult:
    """Run the current rules again over stored crashes the rules or nobody classified.

    Each change is listed (and, unless dry_run, written with a history event); crashes the
    rules answer the same are only counted. Crashes stored without a signature get one. At
    most `limit` crashes are examined per request; `next` says where to go on.
    """
    options = await optional_json_body(request, ReclassifyOptions)
    scope = Scope(options.since, options.until, options.limit, options.after)
    root = base_url(request)
    listed: list[Reclassified] = []
    summary = await services.reclassifier.run(
        scope,
        actor,
        dry_run=options.dry_run,
        clock=utcnow,
        each=lambda change: listed.append(_public(change, root)),
    )
    return ReclassifyResult(
        dry_run=summary.dry_run,
        rules_version=summary.rules_version,
        examined=summary.examined,
        changed=summary.changed,
        unchanged=summary.unchanged,
        skipped=summary.skipped,
        signed=summary.signed,
        data=listed,
        next=summary.next,
    )
