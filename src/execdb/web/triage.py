"""The pages that act: classifying a crash from its page, and /triage, the crashes nobody has
classified, grouped by signature, each group classified at once.

Each form is sent twice: the first time ExecDB answers with what it would do (the retry it
would schedule or cancel, how many crashes a group holds) and a button to confirm; only the
confirmed form acts, then goes back where it came from.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from execdb.api.auth import ReadAccess
from execdb.api.deps import ServicesDep
from execdb.db import utcnow
from execdb.errors import InvalidInput, JobNotFound
from execdb.jobs.schemas import ClassificationIn
from execdb.jobs.triage import GROUP_MAX
from execdb.services import Services
from execdb.vocabulary import Actor, ClassifiedBy
from execdb.web.forms import form_of, signed_in
from execdb.web.pages import PageRoute, render, root_path

router = APIRouter(include_in_schema=False, route_class=PageRoute)

PERIODS = {"24h": 1, "7d": 7, "30d": 30}
PERIOD_LABELS = {"24h": "24 hours", "7d": "7 days", "30d": "30 days"}
DEFAULT_PERIOD = "7d"
# The rules editor (execdb.web.rulepages) makes a rule from a group's signature.
RULE_FROM_GROUP = "/rules/new"


def _period(value: str | None) -> str:
    period = value or DEFAULT_PERIOD
    if period not in PERIODS:
        raise InvalidInput(f"period: one of {', '.join(PERIODS)}")
    return period


def _since(period: str, now: datetime) -> datetime:
    return now - timedelta(days=PERIODS[period])


def _change(form: dict[str, str]) -> ClassificationIn:
    return ClassificationIn.model_validate(
        {
            "blame": form.get("blame") or None,
            "cause": form.get("cause", "").strip(),
            "note": form.get("note", "").strip() or None,
        }
    )


def _job_uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise JobNotFound(text) from None


@router.post("/jobs/{job_uuid}/classification")
async def classify_job(job_uuid: str, request: Request, services: ServicesDep) -> Response:
    """Classify one crash from its page: first what it would do, then, confirmed, do it."""
    form = await form_of(request)
    session = await signed_in(request, form, "triage")
    parsed = _job_uuid(job_uuid)
    change = _change(form)
    now = utcnow()
    back = f"{root_path(request)}/jobs/{parsed}"
    if form.get("confirm") != "yes":
        effect = await services.db.run(services.triage.preview, parsed, change, now)
        context = _confirm(form, change, effect.describe(), back, services)
        return render(request, "confirm.html", {**context, "what": "this crash"})
    actor = Actor(session.token.name)
    await services.db.run_write(services.triage.classify, parsed, change, actor, now)
    services.metrics.classified(ClassifiedBy.PERSON)
    return RedirectResponse(f"{back}#crash-title", status_code=303)


@router.post("/triage/classify")
async def classify_group(request: Request, services: ServicesDep) -> Response:
    """Classify every crash of a group on /triage, as the job page's form classifies one."""
    form = await form_of(request)
    session = await signed_in(request, form, "triage")
    period = _period(form.get("period"))
    signature = form.get("signature") or None
    change = _change(form)
    now = utcnow()
    since = _since(period, now)
    back = f"{root_path(request)}/triage?{urlencode({'period': period})}"
    if form.get("confirm") != "yes":
        effect = await services.db.run(services.triage.preview_group, signature, since, change, now)
        context = _confirm(form, change, effect.describe(), back, services)
        what = f"the group {form.get('text') or signature or 'without a signature'}"
        return render(request, "confirm.html", {**context, "what": what})
    done = await services.db.run_write(
        services.triage.classify_group, signature, since, change, Actor(session.token.name), now
    )
    for _ in done:
        services.metrics.classified(ClassifiedBy.PERSON)
    query = urlencode({"period": period, "classified": len(done), "as": change.cause})
    return RedirectResponse(f"{root_path(request)}/triage?{query}", status_code=303)


def _confirm(
    form: dict[str, str], change: ClassificationIn, effect: str, back: str, services: Services
) -> dict[str, Any]:
    known = change.cause in services.catalogue
    return {
        "fields": {k: v for k, v in form.items() if k not in ("confirm", "csrf")},
        "change": change,
        "blame": change.blame or services.catalogue.default_blame(change.cause),
        "effect": effect,
        "back": back,
        "unknown_cause": not known,
    }


@router.get("/triage", dependencies=[ReadAccess])
async def triage_page(request: Request, services: ServicesDep) -> Response:
    """The crashes nobody has classified, grouped by signature, biggest and newest first."""
    period = _period(request.query_params.get("period"))
    now = utcnow()
    found = await services.db.run_read(services.triage.groups, _since(period, now))
    examples = [g.example["uuid"] for g in found.groups if g.example is not None]
    fixed = await services.db.run(services.triage.fixed_by_retry, examples)
    classified = request.query_params.get("classified")
    return render(
        request,
        "triage.html",
        {
            "now": now,
            "triage": found,
            "period": period,
            "PERIODS": PERIOD_LABELS,
            "GROUP_MAX": GROUP_MAX,
            "fixed": fixed,
            "catalogue": services.catalogue,
            "classified": int(classified) if classified and classified.isdigit() else None,
            "classified_as": request.query_params.get("as"),
            "make_rule": RULE_FROM_GROUP,
        },
    )
