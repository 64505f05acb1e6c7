"""Executor and trigger commands: job create/start/finish/crash/cancel/reschedule/heartbeat,
spool flush/retry, and the registration of the reading ones (execdb.cli.reads). They talk
HTTP through execdb.client only, never to the database, so they start fast and run on
machines without the server's stack.

Exit codes: 0 done, 1 other error, 2 usage error, 3 refused by the server, 4 unreachable
(or answering 5xx). The README's executor section says what they mean for the spool.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from execdb.cli import reads, run
from execdb.cli.errors import EXIT_REFUSED, EXIT_USAGE, CommandError
from execdb.cli.remote import given, remote, server_options
from execdb.cli.reports import report, spool_flush, spool_retry

if TYPE_CHECKING:
    Commands = argparse._SubParsersAction[argparse.ArgumentParser]


def job_create(args: argparse.Namespace) -> int:
    data: dict[str, Any] | None = None
    if args.data:
        text = sys.stdin.read() if args.data == "-" else Path(args.data).read_text()
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise CommandError(f"--data: not JSON: {exc}", EXIT_USAGE) from None
    with remote(args) as client:
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
    return report(args, args.uuid, {"state": "RUNNING", "executor": run.executor_details(args)})


def job_finish(args: argparse.Namespace) -> int:
    from execdb.client.statusfile import outcome

    body = outcome(Path(args.status_file), args.exit_code).body()
    return report(args, args.uuid, _with_log(body, args.log))


def job_crash(args: argparse.Namespace) -> int:
    details = args.details
    if details and details.startswith("@"):
        details = _details_file(Path(details[1:]))
    body = given(state="CRASHED", blame=args.blame, cause=args.cause, details=details)
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
    from execdb.client import ApiError

    with remote(args) as client:
        try:
            job = client.reschedule(args.uuid, force=args.force)
        except ApiError as exc:
            if exc.status == 409 and not args.force and exc.body.get("state") == "FINISHED":
                raise CommandError(
                    f"refused (409): job {args.uuid} is FINISHED; "
                    f"`execdb job reschedule {args.uuid} --force` runs it again",
                    EXIT_REFUSED,
                ) from None
            raise
    print(f"{job['uuid']} {job['state']} attempt {job['attempt']} {job['page']}")
    return 0


def job_heartbeat(args: argparse.Namespace) -> int:
    with remote(args) as client:
        job = client.heartbeat(args.uuid)
    print(f"{job['uuid']} {job['state']} {job['heartbeat_at']}")
    return 0


def register(commands: Commands) -> None:
    server, spooling = server_options(), _spool_options()
    job = commands.add_parser("job", help="create one job, report on it, read it")
    job_commands = job.add_subparsers(metavar="COMMAND", required=True)
    _register_job(job_commands, server, spooling)
    _register_job_admin(job_commands, server)
    _register_reads(commands, server)
    _register_spool(commands, server)


def _spool_options() -> argparse.ArgumentParser:
    spooling = argparse.ArgumentParser(add_help=False)
    spooling.add_argument(
        "--spool",
        metavar="DIR",
        default=os.environ.get("EXECDB_SPOOL"),
        help="when ExecDB cannot be reached, save the report here (default $EXECDB_SPOOL)",
    )
    return spooling


_LOG_HELP = "the run's output: its last 256 KiB are sent, and classify a crash"
_UUID_HELP = "the job's UUID"


def _register_job(
    job: Commands, server: argparse.ArgumentParser, spooling: argparse.ArgumentParser
) -> None:
    p = job.add_parser("create", parents=[server], help="create a job and print its UUID")
    p.add_argument("--task", required=True, help="the task's name, e.g. rpmlint")
    p.add_argument("--item", required=True, help="what it tests, e.g. xchat-2.8.8-21.fc40")
    p.add_argument("--item-type", required=True, help="the item's kind, e.g. koji_build")
    p.add_argument("--arch", help="the architecture, e.g. x86_64")
    p.add_argument(
        "--msg-id", help="the bus message's id: the same message and target give the same job"
    )
    p.add_argument("--data", metavar="FILE", help="trigger data: a JSON file, or - for stdin")
    p.add_argument("--quiet", "-q", action="store_true", help="print only the UUID")
    p.set_defaults(run=job_create)

    p = job.add_parser("start", parents=[server, spooling], help="mark the job RUNNING")
    p.add_argument("uuid", help=_UUID_HELP)
    p.add_argument(
        "--executor-name",
        metavar="NAME",
        help="who runs it (default: buildbot in a Buildbot step, else this host's name)",
    )
    p.add_argument("--executor-url", metavar="URL", help="the build's URL (its log)")
    p.add_argument("--worker", help="the machine or Buildbot worker that runs it")
    p.add_argument("--builder", help="the Buildbot builder (or the executor's queue)")
    p.add_argument("--build", type=int, help="the build's number")
    p.set_defaults(run=job_start)

    p = job.add_parser(
        "finish",
        parents=[server, spooling],
        help="report FINISHED or CRASHED from the runner's status file (docs/status-file.md)",
    )
    p.add_argument("uuid", help=_UUID_HELP)
    p.add_argument(
        "--status-file", required=True, metavar="PATH", help="the status file runtask wrote"
    )
    p.add_argument("--exit-code", type=int, help="the runner's exit code")
    p.add_argument("--log", type=Path, metavar="FILE", help=_LOG_HELP)
    p.set_defaults(run=job_finish)

    p = job.add_parser("crash", parents=[server, spooling], help="report CRASHED")
    p.add_argument("uuid", help=_UUID_HELP)
    p.add_argument("--blame", help="TASKOTRON, TASK, THIRD_PARTY or UNKNOWN")
    p.add_argument("--cause", help="a cause code, e.g. koji.timeout (see `execdb causes`)")
    p.add_argument("--details", help="text, or @FILE to read it from a file")
    p.add_argument("--log", type=Path, metavar="FILE", help=_LOG_HELP)
    p.set_defaults(run=job_crash)

    p = job.add_parser("cancel", parents=[server, spooling], help="report CANCELLED")
    p.add_argument("uuid", help=_UUID_HELP)
    p.add_argument("--details", help="why it was cancelled")
    p.set_defaults(run=job_cancel)
    run.register(job, server, spooling)


def _register_job_admin(job: Commands, server: argparse.ArgumentParser) -> None:
    p = job.add_parser(
        "reschedule",
        parents=[server],
        help="run a CRASHED or CANCELLED job again; print the new attempt",
    )
    p.add_argument("uuid", help=_UUID_HELP)
    p.add_argument("--force", action="store_true", help="also run a FINISHED job again")
    p.set_defaults(run=job_reschedule)

    p = job.add_parser(
        "heartbeat", parents=[server], help="say the job's executor is alive (RUNNING jobs)"
    )
    p.add_argument("uuid", help=_UUID_HELP)
    p.set_defaults(run=job_heartbeat)

    p = job.add_parser("show", parents=[server], help="print the job as JSON")
    p.add_argument("uuid", help=_UUID_HELP)
    p.set_defaults(run=reads.job_show)

    p = job.add_parser("events", parents=[server], help="print the job's history")
    p.add_argument("uuid", help=_UUID_HELP)
    p.add_argument("--json", action="store_true", help="print the events as JSON")
    p.set_defaults(run=reads.job_events)

    p = job.add_parser(
        "deliveries", parents=[server], help="print what ExecDB sent or must send about the job"
    )
    p.add_argument("uuid", help=_UUID_HELP)
    p.add_argument("--json", action="store_true", help="print the deliveries as JSON")
    p.set_defaults(run=reads.job_deliveries)


_FILTERS = {
    "state": "states, e.g. CRASHED,RUNNING",
    "task": "task names, exactly",
    "task-like": "task name patterns, * a wildcard: 'rpm*'",
    "item": "items, exactly",
    "item-like": "item patterns, * a wildcard: 'xchat-*.fc40'",
    "item-type": "item types, e.g. koji_build",
    "arch": "architectures",
    "blame": "blames: TASKOTRON, TASK, THIRD_PARTY, UNKNOWN",
    "cause": "cause codes or families: koji matches koji.timeout",
}


def _register_reads(commands: Commands, server: argparse.ArgumentParser) -> None:
    p = commands.add_parser("jobs", parents=[server], help="search jobs, newest first")
    for name, what in _FILTERS.items():
        p.add_argument(f"--{name}", metavar="A[,B...]", help=f"{what} (a comma list means OR)")
    p.add_argument("--since", metavar="START[,END]", help="created in this window, ISO 8601 (UTC)")
    p.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    p.add_argument("--json", action="store_true", help="print the jobs as JSON")
    p.set_defaults(run=reads.jobs)

    p = commands.add_parser(
        "causes",
        parents=[server],
        help="the crash-cause catalogue",
        description="The crash-cause catalogue: the shipped one with the settings' "
        "causes_file merged over it, as the server reads it; with --server, that server's.",
    )
    p.add_argument("--json", action="store_true", help="print the causes as JSON")
    p.set_defaults(run=reads.causes)


def _register_spool(commands: Commands, server: argparse.ArgumentParser) -> None:
    spool = commands.add_parser(
        "spool", help="reports saved while ExecDB could not take them"
    ).add_subparsers(metavar="COMMAND", required=True)
    p = spool.add_parser("flush", parents=[server], help="deliver saved reports, oldest first")
    p.add_argument("dir", metavar="DIR", help="the spool directory")
    p.set_defaults(run=spool_flush)
    p = spool.add_parser(
        "retry",
        parents=[server],
        help="send set-aside reports (DIR/failed) again, then deliver all saved reports",
    )
    p.add_argument("dir", metavar="DIR", help="the spool directory")
    p.add_argument("reports", nargs="*", metavar="NAME", help="only these (default: all)")
    p.set_defaults(run=spool_retry)
