"""`GET /metrics`: the Prometheus text format, for Prometheus to scrape (docs/deployment.md).

Left out of the OpenAPI document: it is not part of the JSON API, and docs/api.md lists it.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4

from execdb import __version__, metrics
from execdb.api.auth import require_token
from execdb.api.deps import ServicesDep
from execdb.db import utcnow

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def scrape(request: Request, services: ServicesDep) -> Response:
    """Counters of every server process and figures read from the database."""
    needs_token = services.settings.metrics_require_token
    if needs_token is None:
        needs_token = services.settings.require_token_for_reads
    if needs_token:
        await require_token(request)
    figures = await services.db.run_read(services.figures.read, utcnow())
    text = metrics.exposition(services.metrics, figures, __version__)
    # The classic text format, which every Prometheus since 2.0 reads.
    return Response(text, media_type=CONTENT_TYPE_PLAIN_0_0_4)
