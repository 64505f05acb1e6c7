"""The application factory: `create_app(settings)` gives a ready ASGI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from execdb import __version__, migrations
from execdb.causes.api import router as causes_router
from execdb.config import Settings, load_settings
from execdb.errors import DatabaseNotReady
from execdb.health import router as health_router
from execdb.http import BodyLimitMiddleware, register_handlers
from execdb.jobs.api import router as jobs_router
from execdb.jobs.views import router as job_views
from execdb.services import Services

DESCRIPTION = """\
ExecDB keeps the execution state of every test job: triggers create jobs, executors switch
their state, and a crash says who is to blame and why. Writes need
`Authorization: Bearer <token>`; see the README for a walk-through with curl.
"""


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    services = services or Services.build(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not await services.db.run(migrations.is_current, services.db.engine):
            raise DatabaseNotReady(
                "the database schema is not current: run `execdb db upgrade` first"
            )
        yield
        services.db.close()

    app = FastAPIOffline(
        title="ExecDB",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        static_url="/static/apidocs",
        telemetry={
            "tracing": settings.telemetry,
            "metrics": settings.telemetry,
            "logs": settings.telemetry,
            "operation_spans": settings.telemetry,
        },
    )
    app.state.services = services
    register_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    for router in (health_router, jobs_router, causes_router, job_views):
        app.include_router(router)
    return app


def app_from_environment() -> FastAPI:
    """Entry point for ASGI servers started by name (`execdb serve --workers N`)."""
    return create_app(load_settings())
