"""The rules pages: /rules (every rule, its hits, the stale ones) and /rules/new, where a rule
is made from a crash (patterns proposed from its evidence or its key error line) or from a
group of crashes of one signature (/triage's groups: the pattern of the signature), edited,
tried over the stored data (the backtest), saved, then applied to the stored crashes it fires on.

The forms are sent by a person signed in to the pages with a token of the scope triage (or
admin), each with the session's CSRF token (execdb.web.forms); nothing is changed without.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response

from execdb.api.auth import RULES_SCOPES, ReadAccess
from execdb.api.deps import ServicesDep
from execdb.db import utcnow
from execdb.errors import ExecDBError, InvalidInput, JobNotFound, NotFound
from execdb.jobs.search import SIGNATURE
from execdb.jobs.triage import Kind
from execdb.rules.propose import key_line, propose, propose_for_group
from execdb.rules.service import Change
from execdb.vocabulary import Actor
from execdb.web.forms import signed_in
from execdb.web.pages import PageRoute, render

router = APIRouter(include_in_schema=False, dependencies=[ReadAccess], route_class=PageRoute)

FORM_MAX_BYTES = 256 * 1024
LIST_FIELDS = ("match", "then", "unless", "examples", "counter_examples")
# A group's draft: its newest crashes read for their lines, and as long a line as is shown.
GROUP_EXAMPLES = 3
EXAMPLE_MAX_CHARS = 1000


@router.get("/rules")
async def rules_page(request: Request, services: ServicesDep) -> Response:
    """Every rule in use, with its hits in 7 and 30 days and the stale ones."""
    listing = await services.db.run_read(services.desk.listing, utcnow())
    return render(request, "rules.html", {"listing": listing})


def _draft_from_job(job: Any, log: Any) -> dict[str, Any]:
    evidence = [e["text"] for e in job["evidence"] or ()]
    patterns = propose(evidence, log["text"] if log else None)
    if not evidence and log is not None and (line := key_line(log["text"])) is not None:
        evidence = [line.strip()]
    return {
        "id": f"site.{_slug(job['task'])}_{str(job['uuid'])[:8]}",
        "cause": "",
        "blame": "",
        "precedence": "50",
        "description": f"Seen on {job['task']} ({job['uuid']}).",
        "match": "\n".join(patterns),
        "examples": "\n".join(evidence),
        "job": str(job["uuid"]),
    }


def _slug(task: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in task.lower()).strip("_") or "rule"


def _line_of(job: Any, log: str | None) -> str | None:
    """The crash's key line, the one its signature was made from."""
    number = job["signature_line"]
    if log is not None and number:
        lines = log.split("\n")
        if number <= len(lines) and lines[number - 1].strip():
            return str(lines[number - 1]).strip()[:EXAMPLE_MAX_CHARS]
    if job["evidence"]:
        return str(job["evidence"][0]["text"]).strip()[:EXAMPLE_MAX_CHARS]
    if log is None and job["details"] and job["details"].strip():
        return str(job["details"]).strip().splitlines()[0][:EXAMPLE_MAX_CHARS]
    return None


def _draft_from_kind(kind: Kind) -> dict[str, Any]:
    lines = list(dict.fromkeys(line for j, log in kind.examples if (line := _line_of(j, log))))
    tasks = ", ".join(f"{task} ({n})" for task, n in kind.tasks)
    plural = "es" if kind.count != 1 else ""
    return {
        "id": f"site.{_slug(kind.tasks[0][0])}_{kind.signature[:8]}",
        "cause": "",
        "blame": "",
        "precedence": "50",
        "description": f'{kind.count} crash{plural} of the signature "{kind.text}" from '
        f"{kind.first:%Y-%m-%d} to {kind.last:%Y-%m-%d}, in {tasks}.",
        "match": "\n".join(propose_for_group(kind.text or "", lines)),
        "examples": "\n".join(lines),
        "signature": kind.signature,
    }


@router.get("/rules/new")
async def new_rule_page(
    request: Request, services: ServicesDep, job: str = "", signature: str = ""
) -> Response:
    """A rule made from a crash or a group of one signature: proposed patterns, to edit,
    try and save."""
    form: dict[str, Any] = {"precedence": "50"}
    more: dict[str, Any] = {}
    if signature:
        found = None
        if SIGNATURE.fullmatch(signature):
            found = await services.db.run_read(services.triage.kind, signature, GROUP_EXAMPLES)
        if found is None:
            raise NotFound(f"no crash has the signature {signature!r}")
        form = _draft_from_kind(found)
        more["kind"] = found
        more["without_logs"] = all(log is None for _, log in found.examples)
    elif job:
        try:
            parsed = uuid.UUID(job)
        except ValueError:
            raise JobNotFound(job) from None
        row = await services.db.run(services.jobs.get, parsed)
        log = await services.db.run(services.jobs.kept_log, parsed)
        form = _draft_from_job(row, log)
    return render(request, "rule_new.html", _context(services, form, **more))


def _context(services: Any, form: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"form": form, "causes": services.catalogue, **more}


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > FORM_MAX_BYTES:
        raise InvalidInput(f"the form is over {FORM_MAX_BYTES} bytes")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=100)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput(f"the form cannot be read: {exc}") from None
    return {name: values[-1] for name, values in fields.items()}


def _table(form: dict[str, str]) -> dict[str, Any]:
    """The rule's table from the form's fields (one pattern or example a line)."""
    table: dict[str, Any] = {}
    for name in ("cause", "blame", "description"):
        if form.get(name, "").strip():
            table[name] = form[name].strip()
    for name in ("precedence", "within"):
        value = form.get(name, "").strip()
        if value:
            if not value.isdigit():
                raise InvalidInput(f"{name}: a whole number, got {value!r}")
            table[name] = int(value)
    for name in LIST_FIELDS:
        lines = [line.strip() for line in form.get(name, "").splitlines() if line.strip()]
        if lines:
            table[name] = lines
    return table


async def _person(request: Request, form: dict[str, str]) -> Actor:
    """Who sends the form: a signed-in person who may change rules (RULES_SCOPES)."""
    session = await signed_in(request, form, RULES_SCOPES[0])
    return Actor(session.token.name)


@router.post("/rules/new")
async def new_rule_post(request: Request, services: ServicesDep) -> Response:
    """Try the rule of the form over the stored data, or save it."""
    form = await _form(request)
    rule_id = form.get("id", "").strip()
    context = _context(services, form)
    try:
        actor = await _person(request, form)
        table = _table(form)
        if form.get("action") == "save":
            change = Change(actor.name, form.get("note", ""), form.get("bug") or None)
            await services.db.run_write(
                services.rules.save, rule_id, table, change, utcnow(), new=True
            )
            await services.db.run(services.classifier.refresh)
            context["saved"] = rule_id
        context["backtest"] = await services.db.run_read(
            services.desk.try_draft, rule_id, table, utcnow(), days=30, max_logs=5000
        )
    except ExecDBError as exc:
        if exc.status_code >= 500:
            raise
        context["message"] = exc.message
        return render(request, "rule_new.html", context, status_code=exc.status_code)
    return render(request, "rule_new.html", context)


@router.post("/rules/{rule_id}/apply")
async def apply_page(rule_id: str, request: Request, services: ServicesDep) -> Response:
    """Apply a saved rule to the stored crashes it fires on."""
    form = await _form(request)
    actor = await _person(request, form)
    done = await services.db.run_write(
        services.desk.apply, rule_id, actor, utcnow(), days=30, max_logs=5000
    )
    return render(request, "rule_applied.html", {"done": done})
