"""Sending the executor's reports: straight to ExecDB, or through the spool when it cannot
take them now (execdb.client.spool), and the spool's own commands, flush and retry.

Exit codes: 0 done, 1 other error, 2 usage error, 3 refused by the server, 4 unreachable
(or answering 5xx). For a report kept in the spool: 0, or 3 when the token was refused (the
report waits, but someone must fix the token). For a flush: 0 when every report was
delivered; 3 when a report was set aside as refused, or the token was refused (all kept);
4 when the server could not be reached (the rest kept); 1 when only files that are no
reports were set aside.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from execdb.client import Client
    from execdb.client.spool import Delivery, Spool, Stop

from execdb.cli.errors import (
    EXIT_ERROR,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    CommandError,
    refused,
)
from execdb.cli.remote import connect


def report(
    args: argparse.Namespace, uuid: str, body: dict[str, Any], *, out: TextIO = sys.stdout
) -> int:
    """Send one report; with --spool, keep it there when it cannot be delivered now. The job
    as it then is goes to `out` ("UUID STATE").

    A report goes behind its job's reports still waiting in the spool: those are delivered
    first, or it is kept behind them. So the job ends in the executor's last word, not in a
    report from the past delivered later.
    """
    from execdb.client.spool import Spool, SpoolBusy, Stop
    from execdb.client.text import DETAILS_MAX_BYTES, fit

    body, omitted = fit(body)
    if omitted:
        print(
            f"execdb: warning: details: {omitted} bytes in the middle were left out to fit "
            f"{DETAILS_MAX_BYTES} bytes",
            file=sys.stderr,
        )
    spool = Spool(Path(args.spool)) if args.spool else None
    began = time.monotonic()
    with connect(args) as client:
        if spool is None or not spool.pending(uuid):
            return _send(client, spool, uuid, body, out)
        with _spool_errors(spool):
            try:
                with spool.locked(wait=args.retry_for):
                    done = spool.deliver(client, uuid)
                    _tell(spool, done, sys.stderr)
                    if done.stopped is not None:
                        return _keep(spool, uuid, body, *done.stopped)
                    return _send(client, spool, uuid, body, out)
            except SpoolBusy as exc:
                waited = round(time.monotonic() - began, 1)
                return _keep(spool, uuid, body, Stop.LATER, f"{exc} (waited {waited:g} s)")


def _send(client: Client, spool: Spool | None, uuid: str, body: dict[str, Any], out: TextIO) -> int:
    from execdb.client import ApiError, Unreachable
    from execdb.client.spool import Stop, disposition

    try:
        job = client.send_report(uuid, body)
    except Unreachable as exc:
        if spool is None:
            raise CommandError(str(exc), EXIT_UNREACHABLE) from None
        return _keep(spool, uuid, body, Stop.LATER, str(exc))
    except ApiError as exc:
        kept = disposition(exc.status)
        error = refused(exc)
        if spool is None or kept is None:
            raise error from None
        return _keep(spool, uuid, body, kept, str(error))
    for warning in job.get("warnings", []):
        print(f"execdb: warning: {warning}", file=sys.stderr)
    print(f"{job['uuid']} {job['state']}", file=out)
    return 0


def _keep(spool: Spool, uuid: str, body: dict[str, Any], stop: Stop, message: str) -> int:
    """Save a report that may go through later; a bad token still fails the command."""
    from execdb.client.spool import Stop

    code = EXIT_REFUSED if stop is Stop.AUTH else EXIT_UNREACHABLE
    try:
        saved = spool.save(uuid, body)
    except OSError as exc:
        raise CommandError(
            f"{message}; the report could not be saved in {spool.path}: {exc}", code
        ) from None
    print(f"execdb: {message}; report saved to {saved}", file=sys.stderr)
    return code if stop is Stop.AUTH else 0


@contextmanager
def _spool_errors(spool: Spool) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise CommandError(f"spool {spool.path}: {exc}", EXIT_ERROR) from None


def _tell(spool: Spool, done: Delivery, out: TextIO) -> int:
    """Say what a delivery did; the exit code it stands for."""
    from execdb.client.spool import Stop

    for name in done.delivered:
        print(f"delivered {name}", file=out)
    for name, why in done.refused:
        print(f"execdb: {name} {why}; set aside in {spool.failed}", file=sys.stderr)
    for name, why in done.broken:
        print(
            f"execdb: {name}: not a spooled report ({why}); set aside in {spool.failed}",
            file=sys.stderr,
        )
    if done.stopped is not None:
        stop, message = done.stopped
        left = len(spool.pending())
        print(f"execdb: {message}; {left} report(s) kept in {spool.path}", file=sys.stderr)
        return EXIT_REFUSED if stop is Stop.AUTH else EXIT_UNREACHABLE
    return EXIT_REFUSED if done.refused else EXIT_ERROR if done.broken else 0


def spool_flush(args: argparse.Namespace) -> int:
    from execdb.client.spool import Spool

    spool = Spool(Path(args.dir))
    if not spool.path.is_dir():
        return 0
    with connect(args) as client, _spool_errors(spool), spool.locked():
        done = spool.deliver(client)
    return _flushed(spool, done)


def spool_retry(args: argparse.Namespace) -> int:
    from execdb.client.spool import Spool

    spool = Spool(Path(args.dir))
    with connect(args) as client, _spool_errors(spool):
        if not spool.set_aside():
            print(f"execdb: no report is set aside in {spool.failed}", file=sys.stderr)
            return 0
        with spool.locked():
            try:
                spool.restore(args.reports)
            except FileNotFoundError as exc:
                raise CommandError(f"{exc.filename}: {exc.strerror}", EXIT_USAGE) from None
            done = spool.deliver(client)
    return _flushed(spool, done)


def _flushed(spool: Spool, done: Delivery) -> int:
    code = _tell(spool, done, sys.stdout)
    aside = len(spool.set_aside())
    if aside:
        print(
            f"execdb: {aside} report(s) set aside in {spool.failed} (why: the .error files); "
            f"`execdb spool retry {spool.path}` sends them again",
            file=sys.stderr,
        )
    return code
