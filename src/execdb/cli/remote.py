"""What every command that talks to ExecDB over HTTP shares: its options and its client.

ExecDB's address is `--server` (or $EXECDB_URL), so that it cannot be taken for the build's
own URL, `--executor-url`; `--url` is still accepted, unlisted, for scripts written before.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from execdb.cli.errors import EXIT_UNREACHABLE, EXIT_USAGE, CommandError, refused

if TYPE_CHECKING:
    from execdb.client import Client


def connect(args: argparse.Namespace) -> Client:
    from execdb.client import Client

    try:
        return Client(args.server, args.token, retry_for=args.retry_for)
    except ValueError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None


@contextmanager
def remote(args: argparse.Namespace) -> Iterator[Client]:
    """A client whose refusals and failures end the command with their exit code."""
    from execdb.client import ApiError, Unreachable

    with connect(args) as client:
        try:
            yield client
        except ApiError as exc:
            raise refused(exc) from None
        except Unreachable as exc:
            raise CommandError(str(exc), EXIT_UNREACHABLE) from None


def given(**values: Any) -> dict[str, Any]:
    """The options that were given (not None)."""
    return {k: v for k, v in values.items() if v is not None}


def server_options() -> argparse.ArgumentParser:
    """The options of every command that talks to ExecDB."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--server", metavar="URL", help="ExecDB's URL (default $EXECDB_URL)")
    options.add_argument("--url", dest="server", help=argparse.SUPPRESS)
    options.add_argument("--token", help="API token (default $EXECDB_TOKEN)")
    options.add_argument(
        "--retry-for",
        type=float,
        default=float(os.environ.get("EXECDB_RETRY_FOR", "60")),
        metavar="SECONDS",
        help="how long to retry an unreachable server (default 60, or $EXECDB_RETRY_FOR)",
    )
    return options
