"""The rules API under /api/v1/rules: list, create, change, disable, try (backtest), apply.

Writes need a token that may manage rules (`api.auth.authorize_rules`), checked before the
body is read, as every write here does.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from execdb.api.auth import NEEDS_TOKEN, ReadAccess, authorize_rules
from execdb.api.deps import ServicesDep, get_services
from execdb.db import utcnow
from execdb.http import OwnBodyRoutes, json_body, optional_json_body
from execdb.rules.schemas import RuleChange, RuleCreate, RuleDisable, RuleTry, Window
from execdb.rules.service import Change
from execdb.services import Services

router = APIRouter(prefix="/api/v1", tags=["rules"])
own_body = OwnBodyRoutes(router)

# No length check here: FastAPI would make it before the token's, and an id too long for a
# rule simply names none (404).
RuleId = Annotated[str, Path()]
_WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid body; the message names the field."},
    401: {"description": "No token, or an unknown or revoked one."},
    403: {"description": "The token may not change rules (scope triage or admin)."},
    422: {
        "description": "A rule that cannot be used: RE2 refuses a pattern, an unknown "
        "cause, an example it does not match; the message names it."
    },
    503: {"description": "Database unavailable; retry."},
}


async def _in_use(services: Services, rule_id: str, status_code: int = 200) -> JSONResponse:
    """The rule as this process now uses it, after a change saved through it."""
    await services.db.run(services.classifier.refresh)
    return JSONResponse(await services.db.run(services.desk.one, rule_id, utcnow()), status_code)


@router.get("/rules", dependencies=[ReadAccess])
async def list_rules(services: ServicesDep) -> JSONResponse:
    """Every rule in use (shipped, the deployment's, saved), hits and stale ones."""
    return JSONResponse(await services.db.run_read(services.desk.listing, utcnow()))


@router.get("/rules/{rule_id}", dependencies=[ReadAccess], responses={404: {}})
async def get_rule(rule_id: RuleId, services: ServicesDep) -> JSONResponse:
    """One rule: the form in use and every saved version."""
    return JSONResponse(await services.db.run(services.desk.one, rule_id, utcnow()))


@router.post(
    "/rules",
    status_code=201,
    responses={409: {"description": "A rule with this id exists."}, **_WRITE_ERRORS},
    openapi_extra=NEEDS_TOKEN | own_body.body(RuleCreate),
)
async def create_rule(request: Request) -> JSONResponse:
    """Save a new rule (version 1); in use in every process within rules_refresh_seconds."""
    actor = await authorize_rules(request)
    body = await json_body(request, RuleCreate)
    services = get_services(request)
    change = Change(actor.name, body.note, body.bug)
    await services.db.run_write(
        services.rules.save, body.id, body.table(), change, utcnow(), new=True
    )
    return await _in_use(services, body.id, 201)


@router.put(
    "/rules/{rule_id}",
    responses={404: {"description": "No such rule."}, **_WRITE_ERRORS},
    openapi_extra=NEEDS_TOKEN | own_body.body(RuleChange),
)
async def change_rule(rule_id: RuleId, request: Request) -> JSONResponse:
    """Change a rule (of any origin) as a new saved version."""
    actor = await authorize_rules(request)
    body = await json_body(request, RuleChange)
    services = get_services(request)
    change = Change(actor.name, body.note, body.bug)
    await services.db.run_write(
        services.rules.save, rule_id, body.table(), change, utcnow(), new=False
    )
    return await _in_use(services, rule_id)


@router.post(
    "/rules/{rule_id}/disable",
    responses={404: {"description": "No such rule in use."}, **_WRITE_ERRORS},
    openapi_extra=NEEDS_TOKEN | own_body.body(RuleDisable, required=False),
)
async def disable_rule(rule_id: RuleId, request: Request) -> JSONResponse:
    """Disable a rule (of any origin); kept in its history as a version."""
    actor = await authorize_rules(request)
    body = await optional_json_body(request, RuleDisable)
    services = get_services(request)
    await services.db.run_write(
        services.rules.disable, rule_id, Change(actor.name, body.note, body.bug), utcnow()
    )
    return await _in_use(services, rule_id)


@router.post(
    "/rules/try",
    responses=_WRITE_ERRORS,
    openapi_extra=NEEDS_TOKEN | own_body.body(RuleTry),
)
async def try_rule(request: Request) -> JSONResponse:
    """Backtest a draft rule over the kept logs; changes nothing."""
    await authorize_rules(request)
    body = await json_body(request, RuleTry)
    services = get_services(request)
    found = await services.db.run_read(
        services.desk.try_draft,
        body.id,
        body.rule.table(),
        utcnow(),
        days=body.days,
        max_logs=body.max_logs,
    )
    return JSONResponse(found)


@router.post(
    "/rules/{rule_id}/apply",
    responses={404: {"description": "No such rule in use."}, **_WRITE_ERRORS},
    openapi_extra=NEEDS_TOKEN | own_body.body(Window, required=False),
)
async def apply_rule(rule_id: RuleId, request: Request) -> JSONResponse:
    """Reclassify the stored crashes a rule fires on (not a reporter's nor a person's)."""
    actor = await authorize_rules(request)
    window = await optional_json_body(request, Window)
    services = get_services(request)
    done = await services.db.run_write(
        services.desk.apply, rule_id, actor, utcnow(), days=window.days, max_logs=window.max_logs
    )
    return JSONResponse(done)
