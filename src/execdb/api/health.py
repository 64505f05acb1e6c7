"""Liveness and readiness, for load balancers and process supervisors."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from execdb import migrations
from execdb.api.deps import ServicesDep
from execdb.http import error_response

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive (says nothing about the database)."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Not ready; the message says why."}})
async def readyz(services: ServicesDep) -> JSONResponse:
    """The database answers and its schema is the one this code expects."""
    try:
        ready = await services.db.run(migrations.is_current, services.db.engine)
    except SQLAlchemyError as exc:
        return error_response(503, f"the database is unavailable: {exc.__class__.__name__}")
    if not ready:
        return error_response(503, "the database schema is not current; run `execdb db upgrade`")
    return JSONResponse({"status": "ok", "schema": migrations.head()})
