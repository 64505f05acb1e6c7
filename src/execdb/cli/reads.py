"""Reading commands: job show, job events, job deliveries, jobs (the search), causes.

`causes` reads the catalogue the way the server does (the shipped one, the settings'
`causes_file` merged over it), so it needs no server; `--server URL` asks a server instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from execdb.cli.errors import EXIT_USAGE, CommandError
from execdb.cli.remote import given, remote

if TYPE_CHECKING:
    Commands = argparse._SubParsersAction[argparse.ArgumentParser]

GLOB = frozenset("*?[")
JOB_COLUMNS = ("UUID", "STATE", "ATTEMPT", "CREATED (UTC)", "TASK", "ITEM", "BLAME/CAUSE")
EVENT_COLUMNS = ("AT (UTC)", "ACTOR", "CHANGE", "OUTCOME", "CAUSE", "MESSAGE")


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def _minute(moment: str) -> str:
    """'2026-12-03T08:48:10.123Z' -> '2026-12-03 08:48' (the API answers in UTC)."""
    try:
        return datetime.fromisoformat(moment).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return moment


def _second(moment: str) -> str:
    try:
        return datetime.fromisoformat(moment).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return moment


def _table(header: tuple[str, ...], rows: Iterable[tuple[str, ...]]) -> None:
    """Columns as wide as their widest cell; the last one as long as it is."""
    rows = [header, *rows]
    widths = [max(len(row[n]) for row in rows) for n in range(len(header) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]).rstrip())


def job_show(args: argparse.Namespace) -> int:
    with remote(args) as client:
        print_json(client.get(args.uuid))
    return 0


def _event_cause(event: dict[str, Any]) -> str:
    """The cause a crash's event ended with: ExecDB's conclusion where it drew one."""
    payload = event.get("payload") or {}
    concluded = payload.get("classification") or {}
    cause = concluded.get("cause") or payload.get("cause")
    return str(cause) if cause else ""


def _change(event: dict[str, Any]) -> str:
    again = (event.get("payload") or {}).get("rescheduled_as")
    if again:
        made = "retry scheduled" if event.get("by_system") else "rescheduled"
        return f"{event['from_state']} -> {made} as {again}"
    return f"{event['from_state'] or '-'} -> {event['to_state']}"


def job_events(args: argparse.Namespace) -> int:
    with remote(args) as client:
        events = list(client.events(args.uuid))
    if args.json:
        print_json(events)
        return 0
    _table(
        EVENT_COLUMNS,
        (
            (
                _second(e["at"]),
                e["actor"],
                _change(e),
                e["outcome"],
                _event_cause(e) or "-",
                e["message"] or "",
            )
            for e in events
        ),
    )
    return 0


def job_deliveries(args: argparse.Namespace) -> int:
    with remote(args) as client:
        found = client.deliveries(args.uuid)
    if args.json:
        print_json(found)
        return 0
    _table(
        ("KIND", "SINK", "STATUS", "ATTEMPTS", "LAST ERROR"),
        (
            (d["kind"], d["sink"], d["status"], str(d["attempts"]), d["last_error"] or "")
            for d in found
        ),
    )
    return 0


def _exact(name: str, values: str | None) -> str | None:
    """An exact filter; a glob in it finds nothing, so it is a usage error naming --NAME-like."""
    if values is not None and GLOB & set(values):
        raise CommandError(
            f"--{name} {values!r} matches names exactly; for a pattern use --{name}-like",
            EXIT_USAGE,
        )
    return values


def jobs(args: argparse.Namespace) -> int:
    filters = given(
        state=args.state,
        task=_exact("task", args.task),
        item=_exact("item", args.item),
        task__like=args.task_like,
        item__like=args.item_like,
        item_type=args.item_type,
        arch=args.arch,
        blame=args.blame,
        cause=args.cause,
        since=args.since,
    )
    found = []
    with remote(args) as client:
        for job in client.search(**filters):
            found.append(job)
            if len(found) >= args.limit:
                break
    if args.json:
        print_json(found)
        return 0
    _table(
        JOB_COLUMNS,
        (
            (
                j["uuid"],
                j["state"],
                str(j["attempt"]),
                _minute(j["created_at"]),
                j["task"],
                j["item"],
                f"{j['blame']}/{j['cause'] or '-'}" if j["state"] == "CRASHED" else "",
            )
            for j in found
        ),
    )
    if not found:
        print("no jobs found", file=sys.stderr)
    return 0


def _causes_file(args: argparse.Namespace) -> Path | None:
    """The settings' causes_file; on an executor's light install (httpx alone), which cannot
    read settings, none, with a warning."""
    try:
        from execdb.cli.admin import settings_of

        return settings_of(args).causes_file
    except ModuleNotFoundError as exc:
        print(
            f"execdb: warning: the settings cannot be read without {exc.name}: the shipped "
            "catalogue only (--server URL asks a server for its own)",
            file=sys.stderr,
        )
        return None


def _local_causes(args: argparse.Namespace) -> list[dict[str, Any]]:
    from execdb.causes.catalogue import CatalogueError, load_catalogue

    try:
        catalogue = load_catalogue(_causes_file(args))
    except CatalogueError as exc:
        raise CommandError(str(exc)) from None
    return [
        {
            "code": c.code,
            "family": c.family,
            "blame": str(c.blame),
            "retryable": c.retryable,
            "description": c.description,
        }
        for c in catalogue.values()
    ]


def causes(args: argparse.Namespace) -> int:
    if args.server:
        with remote(args) as client:
            found = client.causes()
    else:
        found = _local_causes(args)
    if args.json:
        print_json(found)
        return 0
    for c in found:
        print(
            f"{c['code']:<28} {c['blame']:<12} {'retry' if c['retryable'] else '':<6} "
            f"{c['description']}"
        )
    return 0
