"""The statistics API under /api/v1."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from execdb.api.auth import ReadAccess
from execdb.api.deps import ServicesDep, base_url
from execdb.db import utcnow
from execdb.jobs.search import with_period
from execdb.stats.schemas import Stats, StatsQuery

router = APIRouter(prefix="/api/v1", tags=["stats"])


@router.get(
    "/stats",
    response_model=Stats,
    dependencies=[ReadAccess],
    responses={
        400: {"description": "Invalid input; the message names the parameter."},
        503: {"description": "Database unavailable; retry."},
    },
)
async def stats(
    query: Annotated[StatsQuery, Query()], services: ServicesDep, request: Request
) -> Response:
    """Statistics of the jobs created in a window (`since` or `period`; default: 30 days)."""
    now = utcnow()
    stats = await services.db.run_read(
        services.stats.summary, with_period(query, now), now=now, base_url=base_url(request)
    )
    # Serialized straight to JSON: FastAPI's route would validate the model again and go
    # through Python dicts, which for a daily series by cause takes as long as the queries.
    return Response(stats.model_dump_json(), media_type="application/json")
