"""`execdb job run UUID -- COMMAND...`: a job's whole life from one build step, for any
executor. The job is marked RUNNING, the command runs with its output passed through and its
tail kept, heartbeats go out while it runs, and its outcome is reported at the end (from the
status file when there is one, with the exit code and the log), also when the run is stopped
by a signal. It exits with the command's own exit code (docs/executors.md).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from execdb.cli.errors import EXIT_USAGE, CommandError
from execdb.cli.remote import connect
from execdb.cli.reports import report

if TYPE_CHECKING:
    from execdb.client.run import Ended
    from execdb.client.statusfile import Report

    Commands = argparse._SubParsersAction[argparse.ArgumentParser]

# What a CI system says about the build it runs, by the variables it sets (Buildbot sets
# none of its own: its steps pass the build's properties as options).
_DETECTED: tuple[tuple[str, str, dict[str, str]], ...] = (
    (
        "JENKINS_URL",
        "jenkins",
        {"url": "BUILD_URL", "worker": "NODE_NAME", "builder": "JOB_NAME", "build": "BUILD_NUMBER"},
    ),
    (
        "GITLAB_CI",
        "gitlab-ci",
        {
            "url": "CI_JOB_URL",
            "worker": "CI_RUNNER_DESCRIPTION",
            "builder": "CI_JOB_NAME",
            "build": "CI_JOB_ID",
        },
    ),
)


def executor_from(environ: Mapping[str, str]) -> dict[str, Any]:
    """The executor details a CI system's variables give: Jenkins' and GitLab CI's; for a
    Buildbot step (any BUILDBOT_* variable) only the name; else the host's name."""
    for marker, name, variables in _DETECTED:
        if environ.get(marker):
            found: dict[str, Any] = {"name": name}
            for key, variable in variables.items():
                if value := environ.get(variable):
                    found[key] = int(value) if key == "build" and value.isdigit() else value
            return found
    if any(variable.startswith("BUILDBOT_") for variable in environ):
        return {"name": "buildbot"}
    return {"name": socket.gethostname() or "unknown"}


def executor_details(args: argparse.Namespace) -> dict[str, Any]:
    """What `job start` and `job run` say runs the job: the options given, over what the
    environment says."""
    given = {
        "name": args.executor_name,
        "url": args.executor_url,
        "worker": args.worker,
        "builder": args.builder,
        "build": args.build,
    }
    return executor_from(os.environ) | {k: v for k, v in given.items() if v is not None}


def job_run(args: argparse.Namespace) -> int:
    from execdb.client.run import Tail, run
    from execdb.client.text import LOG_MAX_BYTES

    command = args.command
    if not command:
        raise CommandError("job run: no command given (put it after --)", EXIT_USAGE)
    start = {"state": "RUNNING", "executor": executor_details(args)}
    started = report(args, args.uuid, start, out=sys.stderr)
    if started:
        return started  # the token was refused: the end could not be reported either
    if args.status_file:
        # A status file left by an earlier run in the same directory is not this run's word.
        Path(args.status_file).unlink(missing_ok=True)
    tail = Tail(LOG_MAX_BYTES)
    with connect(args) as beats:
        beats.retry_for = min(args.retry_for, args.heartbeat)
        ended = run(command, tail, beat=lambda: _beat(beats, args.uuid), every=args.heartbeat)
    body = _outcome(args, ended).body() | {"log": tail.text()}
    try:
        reported = report(args, args.uuid, body, out=sys.stderr)
    except CommandError as exc:
        print(f"execdb: {exc}", file=sys.stderr)
        reported = exc.code
    # The command's failure is the build's; when the command succeeded but its end could
    # not be reported (nor saved in the spool), the build fails so that someone looks.
    return ended.exit_code or reported


def _outcome(args: argparse.Namespace, ended: Ended) -> Report:
    """The report for how the command ended: its status file's when it wrote one."""
    from execdb.client.statusfile import Report, outcome

    said = ended.describe()
    path = Path(args.status_file) if args.status_file else None
    if path is not None and (path.exists() or ended.stopped_by is None):
        found = outcome(path, ended.exit_code)
        if ended.killed_by is None and ended.stopped_by is None:
            return found
        return replace(found, details=f"{found.details}\n\n{said}" if found.details else said)
    if ended.stopped_by is not None:
        return Report("CRASHED", cause=args.stopped_cause, details=said)
    if ended.exit_code == 0:
        return Report("FINISHED")
    return Report("CRASHED", details=said)


def _beat(client: Any, uuid: str) -> None:
    """One heartbeat; a failed one is a warning, never the run's end."""
    from execdb.client import ApiError, Unreachable

    try:
        client.heartbeat(uuid)
    except (ApiError, Unreachable) as exc:
        print(f"execdb: warning: heartbeat: {exc}", file=sys.stderr)


def register(
    job: Commands, remote: argparse.ArgumentParser, spooling: argparse.ArgumentParser
) -> None:
    p = job.add_parser(
        "run",
        parents=[remote, spooling],
        help="run a job's command from start to end: RUNNING, heartbeats, then its outcome",
        description="Mark the job RUNNING, run COMMAND (its output passed through, its tail "
        "kept), send heartbeats while it runs, and report its outcome with the log: from the "
        "status file when given, else from the exit code. Exits with the command's exit code.",
    )
    p.add_argument("uuid", help="the job's UUID")
    p.add_argument(
        "--status-file",
        metavar="PATH",
        help="the runner's status file (docs/status-file.md), removed before the command "
        "starts; without it, exit code 0 is FINISHED and any other CRASHED",
    )
    p.add_argument(
        "--heartbeat",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="send a heartbeat this often while the command runs (default 60; 0: none)",
    )
    p.add_argument(
        "--stopped-cause",
        default="executor.timeout",
        metavar="CAUSE",
        help="the cause reported when a signal stopped the run before the command wrote its "
        "status file (default executor.timeout; the log's classification refines it)",
    )
    p.add_argument(
        "--executor-name",
        metavar="NAME",
        help="who runs it (default: detected for Jenkins, GitLab CI and Buildbot steps with "
        "BUILDBOT_* variables, else this host's name)",
    )
    p.add_argument("--executor-url", help="the build's URL (its log)")
    p.add_argument("--worker", help="the machine the build runs on")
    p.add_argument("--builder", help="the builder or CI job name")
    p.add_argument("--build", type=int, help="the build number")
    p.add_argument(
        "command", nargs="*", metavar="-- COMMAND", help="the command and its arguments, after --"
    )
    p.set_defaults(run=job_run)
