"""Executor and trigger commands: job create/start/finish/crash/cancel/show/events, jobs,
causes, spool flush/retry. They talk HTTP through execdb.client only, never to the database,
so they start fast and run on machines without the server's stack.

Exit codes: 0 done, 1 other error, 2 usage error, 3 refused by the server, 4 unreachable
(or answering 5xx). The README's executor section says what they mean for the spool.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from execdb.cli import run
from execdb.cli.errors import EXIT_UNREACHABLE, EXIT_USAGE, CommandError, refused
from execdb.cli.reports import connect, report, spool_flush, spool_retry

if TYPE_CHECKING:
    from execdb.client import Client

    Commands = argparse._SubParsersAction[argparse.ArgumentParser]


@contextmanager
def _remote(args: argparse.Namespace) -> Iterator[Client]:
    """A client whose refusals and failures end the command with their exit code."""
    from execdb.client import ApiError, Unreachable

    with connect(args) as client:
        try:
            yield client
        except ApiError as exc:
            raise refused(exc) from None
        except Unreachable as exc:
            raise CommandError(str(exc), EXIT_UNREACHABLE) from None


def _given(**values: Any) -> dict[str, Any]:
    """The options that were given (not None)."""
    return {k: v for k, v in values.items() if v is not None}


def _print(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def job_create(args: argparse.Namespace) -> int:
    data: dict[str, Any] | None = None
    if args.data:
        text = sys.stdin.read() if args.data == "-" else Path(args.data).read_text()
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise CommandError(f"--data: not JSON: {exc}", EXIT_USAGE) from None
    with _remote(args) as client:
        job = client.create_job(
            task=args.task,
            item=args.item,
            item_type=args.item_type,
            arch=args.arch,
            msg_id=args.msg_id,
            trigger_data=data,
        )
    print(job["uuid"] if args.quiet else f"{job['uuid']} {job['state']} {job['page']}")
    return 0


def job_start(args: argparse.Namespace) -> int:
    executor = _given(
        url=args.executor_url, worker=args.worker, builder=args.builder, build=args.build
    )
    body: dict[str, Any] = {"state": "RUNNING"}
    if executor:
        body["executor"] = executor
    return report(args, args.uuid, body)


def job_finish(args: argparse.Namespace) -> int:
    from execdb.client.statusfile import outcome

    body = outcome(Path(args.status_file), args.exit_code).body()
    return report(args, args.uuid, _with_log(body, args.log))


def job_crash(args: argparse.Namespace) -> int:
    details = args.details
    if details and details.startswith("@"):
        details = _details_file(Path(details[1:]))
    body = _given(state="CRASHED", blame=args.blame, cause=args.cause, details=details)
    return report(args, args.uuid, _with_log(body, args.log))


def _with_log(body: dict[str, Any], path: Path | None) -> dict[str, Any]:
    """The report with the tail of the run's log; without it (and a warning) if the log
    cannot be read: the report must be sent either way."""
    from execdb.client.files import NotRegularFile, read_tail
    from execdb.client.text import LOG_MAX_BYTES

    if path is None:
        return body
    try:
        return body | {"log": read_tail(path, LOG_MAX_BYTES)}
    except NotRegularFile as exc:
        problem = f"the log {path} was not read: {exc}"
    except OSError as exc:
        problem = f"the log {path} could not be read: {exc.strerror or exc}"
    print(f"execdb: warning: {problem}; reported without it", file=sys.stderr)
    return body


def _details_file(path: Path) -> str:
    """The file's text, cut to what is sent; if it cannot be read, details that say why.

    The crash is reported either way: a bad --details must not leave the job RUNNING.
    """
    from execdb.client.files import NotRegularFile, read_text
    from execdb.client.text import DETAILS_MAX_BYTES

    try:
        return read_text(path, DETAILS_MAX_BYTES)
    except NotRegularFile as exc:
        problem = f"the details file {path} was not read: {exc}"
    except OSError as exc:
        problem = f"the details file {path} could not be read: {exc.strerror or exc}"
    print(f"execdb: warning: {problem}", file=sys.stderr)
    return problem


def job_cancel(args: argparse.Namespace) -> int:
    body = {"state": "CANCELLED", **({"details": args.details} if args.details else {})}
    return report(args, args.uuid, body)


def job_reschedule(args: argparse.Namespace) -> int:
    with _remote(args) as client:
        job = client.reschedule(args.uuid, force=args.force)
    print(f"{job['uuid']} {job['state']} attempt {job['attempt']} {job['page']}")
    return 0


def job_heartbeat(args: argparse.Namespace) -> int:
    with _remote(args) as client:
        job = client.heartbeat(args.uuid)
    print(f"{job['uuid']} {job['state']} {job['heartbeat_at']}")
    return 0


def job_show(args: argparse.Namespace) -> int:
    with _remote(args) as client:
        _print(client.get(args.uuid))
    return 0


def job_events(args: argparse.Namespace) -> int:
    with _remote(args) as client:
        events = list(client.events(args.uuid))
    if args.json:
        _print(events)
        return 0
    for e in events:
        change = f"{e['from_state'] or '-'} -> {e['to_state']}"
        print(f"{e['at']}  {e['actor']:<16} {change:<24} {e['outcome']}  {e['message'] or ''}")
    return 0


def jobs(args: argparse.Namespace) -> int:
    filters = _given(
        state=args.state,
        task=args.task,
        item=args.item,
        item_type=args.item_type,
        arch=args.arch,
        blame=args.blame,
        cause=args.cause,
        since=args.since,
    )
    found = []
    with _remote(args) as client:
        for job in client.search(**filters):
            found.append(job)
            if len(found) >= args.limit:
                break
    if args.json:
        _print(found)
        return 0
    for j in found:
        crash = f"{j['blame']}/{j['cause']}" if j["state"] == "CRASHED" else ""
        print(f"{j['uuid']}  {j['state']:<9} {j['task']:<20} {j['item']:<40} {crash}")
    return 0


def causes(args: argparse.Namespace) -> int:
    with _remote(args) as client:
        found = client.causes()
    if args.json:
        _print(found)
        return 0
    for c in found:
        print(
            f"{c['code']:<28} {c['blame']:<12} {'retry' if c['retryable'] else '':<6} "
            f"{c['description']}"
        )
    return 0


def register(commands: Commands) -> None:
    remote, spooling = _common_options()
    _register_job(commands, remote, spooling)
    _register_reads(commands, remote)
    _register_spool(commands, remote)


def _common_options() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The options every command that talks to ExecDB takes, and those of reports."""
    remote = argparse.ArgumentParser(add_help=False)
    remote.add_argument("--url", help="ExecDB's URL (default $EXECDB_URL)")
    remote.add_argument("--token", help="API token (default $EXECDB_TOKEN)")
    remote.add_argument(
        "--retry-for",
        type=float,
        default=float(os.environ.get("EXECDB_RETRY_FOR", "60")),
        metavar="SECONDS",
        help="how long to retry an unreachable server (default 60, or $EXECDB_RETRY_FOR)",
    )
    spooling = argparse.ArgumentParser(add_help=False)
    spooling.add_argument(
        "--spool",
        metavar="DIR",
        default=os.environ.get("EXECDB_SPOOL"),
        help="when ExecDB cannot be reached, save the report here (default $EXECDB_SPOOL)",
    )
    return remote, spooling


_LOG_HELP = "the run's output: its last 256 KiB are sent, and classify a crash"


def _register_job(
    commands: Commands, remote: argparse.ArgumentParser, spooling: argparse.ArgumentParser
) -> None:
    job = commands.add_parser("job", help="create one job or report on it").add_subparsers(
        metavar="COMMAND", required=True
    )
    p = job.add_parser("create", parents=[remote], help="create a job and print its UUID")
    p.add_argument("--task", required=True)
    p.add_argument("--item", required=True)
    p.add_argument("--item-type", required=True)
    p.add_argument("--arch")
    p.add_argument("--msg-id")
    p.add_argument("--data", metavar="FILE", help="trigger data: a JSON file, or - for stdin")
    p.add_argument("--quiet", "-q", action="store_true", help="print only the UUID")
    p.set_defaults(run=job_create)

    p = job.add_parser("start", parents=[remote, spooling], help="mark the job RUNNING")
    p.add_argument("uuid")
    p.add_argument("--executor-url", help="the build's URL (its log)")
    p.add_argument("--worker")
    p.add_argument("--builder")
    p.add_argument("--build", type=int)
    p.set_defaults(run=job_start)

    p = job.add_parser(
        "finish",
        parents=[remote, spooling],
        help="report FINISHED or CRASHED from the runner's status file (docs/status-file.md)",
    )
    p.add_argument("uuid")
    p.add_argument("--status-file", required=True, metavar="PATH")
    p.add_argument("--exit-code", type=int, help="the runner's exit code")
    p.add_argument("--log", type=Path, metavar="FILE", help=_LOG_HELP)
    p.set_defaults(run=job_finish)

    p = job.add_parser("crash", parents=[remote, spooling], help="report CRASHED")
    p.add_argument("uuid")
    p.add_argument("--blame", help="TASKOTRON, TASK, THIRD_PARTY or UNKNOWN")
    p.add_argument("--cause", help="a cause code, e.g. koji.timeout (see `execdb causes`)")
    p.add_argument("--details", help="text, or @FILE to read it from a file")
    p.add_argument("--log", type=Path, metavar="FILE", help=_LOG_HELP)
    p.set_defaults(run=job_crash)

    p = job.add_parser("cancel", parents=[remote, spooling], help="report CANCELLED")
    p.add_argument("uuid")
    p.add_argument("--details")
    p.set_defaults(run=job_cancel)
    run.register(job, remote, spooling)
    _register_job_admin(job, remote)


def _register_job_admin(job: Commands, remote: argparse.ArgumentParser) -> None:
    p = job.add_parser(
        "reschedule",
        parents=[remote],
        help="run a CRASHED or CANCELLED job again; print the new attempt",
    )
    p.add_argument("uuid")
    p.add_argument("--force", action="store_true", help="also run a FINISHED job again")
    p.set_defaults(run=job_reschedule)

    p = job.add_parser(
        "heartbeat", parents=[remote], help="say the job's executor is alive (RUNNING jobs)"
    )
    p.add_argument("uuid")
    p.set_defaults(run=job_heartbeat)

    p = job.add_parser("show", parents=[remote], help="print the job as JSON")
    p.add_argument("uuid")
    p.set_defaults(run=job_show)

    p = job.add_parser("events", parents=[remote], help="print the job's history")
    p.add_argument("uuid")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=job_events)


def _register_reads(commands: Commands, remote: argparse.ArgumentParser) -> None:
    p = commands.add_parser("jobs", parents=[remote], help="search jobs, newest first")
    for name in ("state", "task", "item", "item-type", "arch", "blame", "cause", "since"):
        p.add_argument(f"--{name}", help="comma list = OR" if name != "since" else "START[,END]")
    p.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=jobs)

    p = commands.add_parser("causes", parents=[remote], help="the crash-cause catalogue")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=causes)


def _register_spool(commands: Commands, remote: argparse.ArgumentParser) -> None:
    spool = commands.add_parser(
        "spool", help="reports saved while ExecDB could not take them"
    ).add_subparsers(metavar="COMMAND", required=True)
    p = spool.add_parser("flush", parents=[remote], help="deliver saved reports, oldest first")
    p.add_argument("dir", metavar="DIR")
    p.set_defaults(run=spool_flush)
    p = spool.add_parser(
        "retry",
        parents=[remote],
        help="send set-aside reports (DIR/failed) again, then deliver all saved reports",
    )
    p.add_argument("dir", metavar="DIR")
    p.add_argument("reports", nargs="*", metavar="NAME", help="only these (default: all)")
    p.set_defaults(run=spool_retry)
