"""The web pages: dashboard, job search, one job, statistics, the cause catalogue.

Routes stay thin: they parse the query the way the API does (the same `JobSearch`, so a page's
URL and an API call take the same parameters), ask the services, and hand rows to a template.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from datetime import timedelta
from importlib import resources
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError

from execdb.api.auth import ReadAccess
from execdb.api.deps import ServicesDep, base_url
from execdb.automation.schemas import DeliveryPublic
from execdb.db import utcnow
from execdb.errors import InvalidInput, JobNotFound
from execdb.jobs.schemas import EventPublic, JobFound, JobPublic
from execdb.jobs.search import JobSearch, with_period
from execdb.paging import NEWEST, Cursor
from execdb.stats.schemas import Stats, StatsQuery
from execdb.web import dashboard as board
from execdb.web import format, plots
from execdb.web.pages import PageRoute, invalid_message, render, root_path

router = APIRouter(include_in_schema=False, dependencies=[ReadAccess], route_class=PageRoute)

# The newest reports only, and not more than this of their payloads: a job that got
# thousands of reports must not make a page of megabytes (the API pages through them all).
EVENTS_SHOWN = 50
EVENTS_SHOWN_BYTES = 256 * 1024
UNCATEGORIZED_SHOWN = 10
EPOCH = "1970-01-01"


def static_files() -> StaticFiles:
    """The pages' stylesheet and scripts, shipped in the package (nothing to build)."""
    return StaticFiles(directory=str(resources.files("execdb.web") / "static"))


def query_params(request: Request) -> dict[str, str | list[str]]:
    """The query as JobSearch takes it: blank fields dropped (an empty form field means 'any'),
    repeated ones (checkboxes) kept as lists."""
    params: dict[str, str | list[str]] = {}
    for name, value in request.query_params.multi_items():
        if not value.strip():
            continue
        if name in params:
            held = params[name]
            params[name] = [*held, value] if isinstance(held, list) else [held, value]
        else:
            params[name] = value
    return params


def lit(row: Any) -> list[Any] | None:
    """The log lines to highlight: the rule's evidence, else the signature's line."""
    if row["evidence"]:
        evidence: list[Any] = row["evidence"]
        return evidence
    if row["signature_line"] is not None:
        return [{"line": row["signature_line"], "text": row["signature_text"]}]
    return None


def _page_link(request: Request, params: dict[str, Any], cursor: Cursor | None) -> str | None:
    if cursor is None:
        return None
    query = {k: v for k, v in params.items() if k != "cursor"} | {"cursor": cursor.encode()}
    return f"{root_path(request)}/jobs?{urlencode(query, doseq=True)}"


@router.get("/")
async def dashboard(request: Request, services: ServicesDep) -> Response:
    """What runs now, what crashed lately and why, and what nobody has classified yet."""
    now = utcnow()
    root = base_url(request)

    def stats(**query: Any) -> Awaitable[Stats]:
        parsed = StatsQuery.model_validate(query)
        return services.db.run_read(services.stats.summary, parsed, now=now, base_url=root)

    day_ago, week_ago = now - timedelta(days=1), now - timedelta(days=7)
    # Every job still waiting or running, however old: a job stuck for weeks must show.
    live = await stats(state="SCHEDULED,RUNNING", since=EPOCH, uncategorized_limit=0)
    day = await stats(since=format.iso(day_ago), uncategorized_limit=0)
    week = await stats(since=format.iso(week_ago), uncategorized_limit=UNCATEGORIZED_SHOWN)
    # From the same second as `week`'s window (`since` is written to the second).
    week_start = week_ago.replace(microsecond=0)
    recent = await services.db.run_read(
        services.stats.recent, week_start, causes_max=board.SEEN_MAX
    )
    listed = [j.uuid for j in week.uncategorized.jobs]
    fixed = await services.db.run(services.triage.fixed_by_retry, listed)
    return render(
        request,
        "dashboard.html",
        {
            "now": now,
            "live": live,
            "day": day,
            "week": week,
            "day_since": format.iso(day_ago),
            "week_since": format.iso(week_ago),
            "catalogue": services.catalogue,
            "day_by_cause": {c.cause: c.count for c in day.by_cause},
            "fixed": {str(u) for u in fixed},
            **board.figures(week, recent, now=now, root=root_path(request)),
        },
    )


@router.get("/jobs")
async def jobs_page(request: Request, services: ServicesDep) -> Response:
    """Job search, newest first, with the API's filters."""
    params = query_params(request)
    root = base_url(request)
    try:
        search = JobSearch.model_validate(params)
        found = await services.db.run(services.jobs.search, with_period(search, utcnow()))
    except (ValidationError, InvalidInput) as exc:
        # The form stays, filled in as sent, so that the mistake can be put right there.
        context = {
            "params": params,
            "search": None,
            "message": invalid_message(exc),
            "causes": services.catalogue,
        }
        return render(request, "jobs.html", context, status_code=400)
    crashes = [row["uuid"] for row in found.rows if row["state"] == "CRASHED"]
    fixed = await services.db.run(services.triage.fixed_by_retry, crashes)
    return render(
        request,
        "jobs.html",
        {
            "fixed": fixed,
            "params": params,
            "search": search,
            "jobs": [JobFound.from_row(row, root, match=row.get("match")) for row in found.rows],
            "prev": _page_link(request, params, found.prev),
            "next": _page_link(request, params, found.next),
            "causes": services.catalogue,
            "api_link": f"{root}/api/v1/jobs?{urlencode(params, doseq=True)}",
        },
    )


@router.get("/jobs/{job_uuid}")
async def job_page(job_uuid: str, request: Request, services: ServicesDep) -> Response:
    """One job: its state, crash, history and attempts."""
    try:
        parsed = uuid.UUID(job_uuid)
    except ValueError:
        raise JobNotFound(job_uuid) from None
    row = await services.db.run(services.jobs.get, parsed)
    events = await services.db.run(
        services.jobs.events, parsed, NEWEST, EVENTS_SHOWN, max_bytes=EVENTS_SHOWN_BYTES
    )
    attempts = await services.db.run(services.jobs.attempts, row)
    deliveries = await services.db.run(services.outbox.for_job, parsed)
    log = await services.db.run(services.jobs.kept_log, parsed)
    fixed = await services.db.run(services.triage.fixed_by_retry, [parsed])
    root = base_url(request)
    resultsdb = services.settings.resultsdb_url
    return render(
        request,
        "job.html",
        {
            "job": JobPublic.from_row(row, root),
            "events": [EventPublic.model_validate(dict(e)) for e in events.rows],
            "earlier_events": events.prev is not None,
            "attempts": [JobPublic.from_row(a, root) for a in attempts],
            "deliveries": [DeliveryPublic.model_validate(d) for d in deliveries],
            "cause": services.catalogue.get(row["cause"]) if row["cause"] else None,
            "results": f"{resultsdb.rstrip('/')}/api/v2.0/groups/{parsed}" if resultsdb else None,
            "log": log,
            "log_cut": log is not None and log["original_bytes"] > len(log["text"].encode()),
            "log_lines": format.log_lines(log["text"], lit(row)) if log else [],
            "fixed": parsed in fixed,
            "catalogue": services.catalogue,
        },
    )


@router.get("/stats")
async def stats_page(request: Request, services: ServicesDep) -> Response:
    """Plots of a window of jobs: crashes by blame and cause over time, durations, tasks."""
    now = utcnow()
    params = query_params(request)
    try:
        query, period = plots.parse(params, now)
        by_kind, by_task, durations = await services.db.run_read(plots.gather, services, query, now)
    except (ValidationError, InvalidInput) as exc:
        context = {
            "params": params,
            "period": params.get("period"),
            "message": invalid_message(exc),
        }
        return render(request, "stats.html", {**context, **plots.FORM}, status_code=400)
    context = plots.figures(
        by_kind, by_task, durations, params, services.catalogue, root_path(request)
    )
    return render(
        request, "stats.html", {"params": params, "period": period, **plots.FORM, **context}
    )


@router.get("/causes")
async def causes_page(request: Request, services: ServicesDep) -> Response:
    """The crash-cause catalogue, each cause linking to its crashes."""
    families: dict[str, list[Any]] = {}
    for cause in services.catalogue.values():
        families.setdefault(cause.family, []).append(cause)
    hits = await services.db.run(services.stats.rule_hits)
    rules = services.classifier.rules.rules
    # Rules of an earlier version that fired on stored crashes are listed too.
    gone = sorted(set(hits) - {r.id for r in rules})
    context = {"families": families, "rules": rules, "hits": hits, "gone": gone}
    return render(request, "causes.html", context)
