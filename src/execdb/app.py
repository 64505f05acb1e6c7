"""The application factory: `create_app(settings)` gives a ready ASGI app."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi_offline import FastAPIOffline

from execdb import __version__, accesslog, migrations
from execdb.api import admin as admin_api
from execdb.api import classification as classification_api
from execdb.api import jobs as jobs_api
from execdb.api import rules as rules_api
from execdb.api.causes import router as causes_router
from execdb.api.health import router as health_router
from execdb.api.metrics import router as metrics_router
from execdb.api.stats import router as stats_router
from execdb.config import Settings, load_settings
from execdb.errors import DatabaseNotReady
from execdb.headers import ResponseHeaders
from execdb.http import BodyLimitMiddleware, own_body_components, register_handlers
from execdb.metrics import RequestTimer
from execdb.services import Services
from execdb.web import apidocs, rulepages
from execdb.web import signin as web_signin
from execdb.web import triage as web_triage
from execdb.web import views as web
from execdb.worker import background

DESCRIPTION = """\
ExecDB keeps the execution state of every test job: triggers create jobs, executors switch
their state, and a crash says who is to blame and why. Writes need
`Authorization: Bearer <token>`; see the README for a walk-through with curl.
"""

ROUTERS = (
    health_router,
    causes_router,
    stats_router,
    metrics_router,
    web.router,
    web_triage.router,
    web_signin.router,
    rulepages.router,
    apidocs.router,
)


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    services = services or Services.build(settings)
    accesslog.install()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not await services.db.run(migrations.is_current, services.db.engine):
            raise DatabaseNotReady(
                "the database schema is not current: run `execdb db upgrade` first"
            )
        # What start-up built (modules, the routes, SQLAlchemy's and pydantic's machinery)
        # stays while the app serves: out of the collector's full passes with it. They
        # otherwise walk its objects about once a second under load, stalling the event loop
        # each time: that was the p99 of bench/lifecycle.py (docs/benchmarks.md). Freezing is
        # for the whole process; where several apps run in one (the tests), the first to
        # stop thaws it for all, which costs only time.
        gc.collect()
        gc.freeze()
        try:
            async with AsyncExitStack() as stack:
                if settings.runs_worker_in_serve:
                    await stack.enter_async_context(background(services))
                yield
        finally:
            gc.unfreeze()
            services.db.close()

    app = FastAPIOffline(
        title="ExecDB",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # Swagger UI's files only: /docs is ExecDB's own page (web/apidocs.py), and ReDoc,
        # which styles itself with inline <style>, is left out.
        docs_url=None,
        redoc_url=None,
        static_url=apidocs.STATIC_URL,
        telemetry={
            "tracing": settings.telemetry,
            "metrics": settings.telemetry,
            "logs": settings.telemetry,
            "operation_spans": settings.telemetry,
        },
    )
    app.state.services = services
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    # Outside even Starlette's error middleware, so that a 500 carries the headers too.
    build_stack = app.build_middleware_stack
    app.build_middleware_stack = lambda: ResponseHeaders(build_stack())  # type: ignore[method-assign]
    register_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    # Outermost of the added middleware: it times what the body limit refuses too.
    app.add_middleware(RequestTimer, metrics=services.metrics)
    _add_routes(app)
    return app


def _add_routes(app: FastAPI) -> None:
    # The job routes first, since routes are matched in order and these take nearly all the
    # traffic.
    for own_body in (jobs_api, admin_api, classification_api, rules_api):
        own_body.own_body.add_to(app)
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static/web", web.static_files(), name="web-static")


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, saying what ExecDB really answers: invalid input is a 400 with
    `{"message": ...}`, not FastAPI's 422."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schema["components"]["schemas"]["Error"] = {
            "type": "object",
            "properties": {"message": {"type": "string"}},
            "required": ["message"],
        }
        error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        for operations in schema["paths"].values():
            for operation in operations.values():
                responses = operation["responses"]
                # FastAPI's own 422 (its validation errors) is ExecDB's 400; a route's own 422
                # (a rule that cannot be used) stays.
                if responses.get("422", {}).get("description") == "Validation Error":
                    responses.pop("422")
                    responses.setdefault("400", {"description": "Invalid input."})
                for code, response in responses.items():
                    if code[0] in "45":
                        response["content"] = error
        for name, body in own_body_components(app).items():
            schema["components"]["schemas"].setdefault(name, body)
        for name in ("HTTPValidationError", "ValidationError"):
            schema["components"]["schemas"].pop(name, None)
        app.openapi_schema = schema
    return app.openapi_schema


def app_from_environment() -> FastAPI:
    """Entry point for ASGI servers started by name (`execdb serve --workers N`)."""
    return create_app(load_settings())
