"""The `execdb` command: run the server and administer the database and tokens.

Subcommands import what they need when they run, so `execdb --help` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from execdb import __version__
from execdb.cli import admin, classify, jobs
from execdb.cli.errors import EXIT_ERROR, CommandError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="execdb",
        description="ExecDB: the execution-state hub of test jobs.",
    )
    parser.add_argument("--version", action="version", version=f"execdb {__version__}")
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="settings file (TOML); default $EXECDB_CONFIG. EXECDB_* variables override it",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    admin.register(commands)
    jobs.register(commands)
    classify.register(commands)
    return parser


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """The arguments; what follows the first `--` is the command of those that run one
    (`job run`). argparse's own `--` does not reach a subcommand's positionals."""
    if "--" not in argv:
        return parser.parse_args(argv)
    at = argv.index("--")
    args = parser.parse_args(argv[:at])
    if not hasattr(args, "command"):
        parser.error("'--' is only for commands that run a command (execdb job run)")
    args.command = argv[at + 1 :]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = _parse(parser, list(sys.argv[1:] if argv is None else argv))
    try:
        code: int = args.run(args)
    except KeyboardInterrupt:
        return 130
    except CommandError as exc:
        print(f"execdb: {exc}", file=sys.stderr)
        return exc.code
    except ModuleNotFoundError as exc:
        # A light install (httpx only) runs the executor commands, not the server's.
        print(
            f"execdb: this command needs the full install ({exc.name} is missing): "
            "pip install execdb",
            file=sys.stderr,
        )
        return EXIT_ERROR
    except Exception as exc:
        from sqlalchemy.exc import SQLAlchemyError

        if not isinstance(exc, SQLAlchemyError):
            raise
        print(f"execdb: database error: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return code


if __name__ == "__main__":
    sys.exit(main())
