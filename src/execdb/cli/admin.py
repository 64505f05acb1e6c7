"""Admin commands: serve, worker, deliveries, db upgrade/current, token create/list/revoke,
session revoke, reclassify."""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from execdb.cli.errors import EXIT_USAGE, CommandError

if TYPE_CHECKING:
    from execdb.config import Settings
    from execdb.jobs.reclassify import Change, Summary
    from execdb.services import Services

    Commands = argparse._SubParsersAction[argparse.ArgumentParser]


def settings_of(args: argparse.Namespace, **overrides: Any) -> Settings:
    from pydantic import ValidationError

    from execdb.config import Settings, SettingsError, describe, load_settings

    try:
        settings = load_settings(args.config)
        if overrides:
            settings = Settings.model_validate(settings.model_dump() | overrides)
    except SettingsError as exc:
        raise CommandError(f"bad settings: {exc}") from None
    except ValidationError as exc:
        raise CommandError(f"bad option: {describe(exc)}") from None
    return settings


def _services(settings: Settings) -> Services:
    from execdb.causes.catalogue import CatalogueError
    from execdb.classify import RulesError
    from execdb.metrics import MetricsError
    from execdb.services import Services

    try:
        return Services.build(settings)
    except (CatalogueError, RulesError, MetricsError) as exc:
        raise CommandError(str(exc)) from None


def _ready_services(settings: Settings) -> Services:
    """Services on a database whose schema is current.

    The embedded SQLite database is created and migrated on first use, so that one command
    starts a working service; a shared PostgreSQL database is only migrated on request.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from execdb import migrations

    services = _services(settings)
    engine = services.db.engine
    try:
        if services.db.is_sqlite:
            migrations.upgrade(engine)
        elif not migrations.is_current(engine):
            raise CommandError(
                f"the schema of {_describe(settings)} is not current; run `execdb db upgrade` first"
            )
    except SQLAlchemyError as exc:
        raise CommandError(f"cannot use the database {_describe(settings)}: {exc}") from None
    return services


def _describe(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.effective_database_url).render_as_string(hide_password=True)


def _used(settings: Settings) -> None:
    """Say on stderr which database a command used: one made by mistake elsewhere (another
    EXECDB_DATA_DIR, no --config) is the usual reason a new token is then refused."""
    print(f"execdb: database: {_describe(settings)}", file=sys.stderr)


def _in(settings: Settings, message: str) -> CommandError:
    return CommandError(f"{message} (database: {_describe(settings)})")


def _log_to_stderr(level: str) -> None:
    """Show ExecDB's own log (the background work's, mostly) on stderr, at `level`."""
    import logging

    from uvicorn.config import LOG_LEVELS  # uvicorn's names, "trace" included

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("execdb")
    logger.addHandler(handler)
    logger.setLevel(LOG_LEVELS.get(level.lower(), logging.INFO))


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from execdb.app import create_app
    from execdb.metrics import single_process_warning

    overrides = {k: v for k in ("host", "port", "workers") if (v := getattr(args, k)) is not None}
    if args.no_worker:
        overrides["worker_in_serve"] = False
    settings = settings_of(args, **overrides)
    services = _ready_services(settings)
    _log_to_stderr(settings.log_level)
    print(
        f"ExecDB on http://{settings.host}:{settings.port}  database: {_describe(settings)}",
        file=sys.stderr,
    )
    if (warning := single_process_warning(settings.workers)) is not None:
        print(f"execdb: warning: {warning}", file=sys.stderr)
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "access_log": settings.access_log,
        "proxy_headers": True,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
        "server_header": False,
    }
    if settings.workers == 1:
        uvicorn.run(create_app(settings, services), **options)
        return 0
    # Worker processes build their own app from the environment: hand the overrides on.
    services.db.close()
    for key, value in overrides.items():
        os.environ[f"EXECDB_{key.upper()}"] = str(value)
    if args.config:
        os.environ["EXECDB_CONFIG"] = str(args.config)
    uvicorn.run(
        "execdb.app:app_from_environment", factory=True, workers=settings.workers, **options
    )
    return 0


def worker(args: argparse.Namespace) -> int:
    import asyncio
    import signal

    from execdb.worker import Worker

    settings = settings_of(args)
    services = _ready_services(settings)
    _log_to_stderr(settings.log_level)

    async def work() -> None:
        async with Worker(services) as w:
            if args.once:
                print(await w.tick())
                return
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await w.run(stop)

    print(f"ExecDB worker  database: {_describe(settings)}", file=sys.stderr)
    try:
        asyncio.run(work())
    finally:
        services.db.close()
    return 0


def deliveries_retry(args: argparse.Namespace) -> int:
    from execdb.db import utcnow

    settings = settings_of(args)
    services = _ready_services(settings)
    count = services.outbox.retry_failed(utcnow(), args.uuid)
    print(f"{count} failed deliveries will be tried again")
    _used(settings)
    return 0


def db_upgrade(args: argparse.Namespace) -> int:
    from execdb import migrations

    settings = settings_of(args)
    services = _services(settings)
    migrations.upgrade(services.db.engine, args.revision)
    with services.db.engine.connect() as conn:
        print(f"{_describe(settings)} is at revision {migrations.current(conn)}")
    return 0


def db_current(args: argparse.Namespace) -> int:
    from execdb import migrations

    settings = settings_of(args)
    services = _services(settings)
    with services.db.engine.connect() as conn:
        revision = migrations.current(conn)
    head = migrations.head()
    state = "current" if revision == head else f"not current (code expects {head})"
    print(f"{_describe(settings)}: revision {revision or 'none'}, {state}")
    return 0 if revision == head else 1


def token_create(args: argparse.Namespace) -> int:
    from execdb.db import utcnow
    from execdb.errors import ExecDBError

    settings = settings_of(args)
    services = _ready_services(settings)
    try:
        token, secret = services.tokens.create(args.name, args.scope, utcnow())
    except ExecDBError as exc:
        raise _in(settings, exc.message) from None
    if args.quiet:
        print(secret)
    else:
        scopes = ", ".join(sorted(token.scopes))
        print(f"Created token {token.name!r} (scopes: {scopes}). Its secret, shown only now:")
        print(secret)
    _used(settings)
    return 0


def token_list(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    services = _ready_services(settings)
    tokens = services.tokens.list(include_revoked=args.all)
    if not tokens:
        print("no tokens")
    for t in tokens:
        revoked = f"  revoked {t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else ""
        scopes = ",".join(sorted(t.scopes))
        print(f"{t.name:<30} {scopes:<20} created {t.created_at:%Y-%m-%d %H:%M}{revoked}")
    _used(settings)
    return 0


def token_revoke(args: argparse.Namespace) -> int:
    from execdb.db import utcnow
    from execdb.errors import ExecDBError

    settings = settings_of(args)
    services = _ready_services(settings)
    try:
        services.tokens.revoke(args.name, utcnow())
    except ExecDBError as exc:
        raise _in(settings, exc.message) from None
    print(f"revoked token {args.name!r}")
    _used(settings)
    return 0


def _show_change(change: Change, *, as_json: bool) -> None:
    if as_json:
        line = {
            "uuid": str(change.uuid),
            "old": change.old.as_dict(),
            "new": change.new.as_dict(),
            "rules_version": change.rules_version,
            "retry_withdrawn": change.retry_withdrawn,
        }
        print(json.dumps(line, ensure_ascii=False))
    else:
        print(change.describe())
    sys.stdout.flush()


def _show_summary(summary: Summary, *, as_json: bool) -> None:
    if as_json:
        counts = ("examined", "changed", "unchanged", "skipped", "signed")
        line: dict[str, Any] = {"dry_run": summary.dry_run, "rules_version": summary.rules_version}
        line |= {name: getattr(summary, name) for name in counts}
        print(json.dumps(line | {"next": str(summary.next) if summary.next else None}))
        return
    changed = "would change" if summary.dry_run else "changed"
    signed = "would get" if summary.dry_run else "got"
    print(
        f"rules {summary.rules_version}: {summary.examined} crashes examined, "
        f"{summary.changed} {changed}, {summary.unchanged} unchanged, "
        f"{summary.skipped} skipped (changed meanwhile)"
        + (f", {summary.signed} {signed} a signature" if summary.signed else "")
        + ("; dry run, nothing written" if summary.dry_run else "")
    )
    if summary.next is not None:
        print(f"stopped at the limit; go on with --after {summary.next}")


def reclassify(args: argparse.Namespace) -> int:
    import asyncio

    from execdb.db import utcnow
    from execdb.errors import ExecDBError
    from execdb.jobs.reclassify import Scope
    from execdb.vocabulary import Actor

    if args.since is not None and args.until is not None and args.until < args.since:
        raise CommandError("--until is before --since", EXIT_USAGE)
    services = _ready_services(settings_of(args))
    scope = Scope(args.since, args.until, args.limit, args.after)
    run = services.reclassifier.run(
        scope,
        Actor("reclassify"),
        dry_run=args.dry_run,
        clock=utcnow,
        each=lambda change: _show_change(change, as_json=args.json),
    )
    try:
        summary = asyncio.run(run)
    except ExecDBError as exc:
        raise CommandError(exc.message) from None
    finally:
        services.db.close()
    _show_summary(summary, as_json=args.json)
    return 0


def _when(end: bool) -> Callable[[str], datetime]:
    def parse(text: str) -> datetime:
        from execdb.jobs.search import parse_time

        try:
            return parse_time(text, end=end)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, got {text!r}")
    return int(text)


def _register_reclassify(commands: Commands) -> None:
    p = commands.add_parser(
        "reclassify",
        help="run the current rules again over stored crashes",
        description="Run the current classification rules (the shipped ones and the "
        "rules_file setting's) again over stored crashes with a kept log whose blame and "
        "cause came from the rules or from nobody; a reporter's cause is never changed. "
        "Crashes stored without a signature (before ExecDB computed them) get one. "
        "Prints each change (crashes the rules answer the same are only counted), then a "
        "summary. Each change is written with an event in the job's history; no "
        "notification is sent again, and a pending retry the retry policy would no longer "
        "make is withdrawn.",
    )
    p.add_argument(
        "--since",
        type=_when(end=False),
        metavar="WHEN",
        help="only crashes created at or after WHEN (ISO 8601; UTC unless a zone is given)",
    )
    p.add_argument(
        "--until",
        type=_when(end=True),
        metavar="WHEN",
        help="only crashes created at or before WHEN (a bare date: that whole day)",
    )
    p.add_argument("--dry-run", action="store_true", help="list the changes, write nothing")
    p.add_argument("--json", action="store_true", help="one JSON object per change and line")
    p.add_argument(
        "--limit", type=_positive, metavar="N", help="examine at most N crashes, oldest first"
    )
    p.add_argument(
        "--after",
        type=uuid.UUID,
        metavar="UUID",
        help="go on after this job (what a run stopped by --limit says)",
    )
    p.set_defaults(run=reclassify)


def session_revoke(args: argparse.Namespace) -> int:
    from execdb.db import utcnow
    from execdb.errors import ExecDBError

    services = _ready_services(settings_of(args))
    try:
        ended = services.sessions.revoke(args.name, utcnow())
    except ExecDBError as exc:
        raise CommandError(exc.message) from None
    print(f"ended {ended} session(s) of token {args.name!r}")
    return 0


def register(commands: Commands) -> None:
    _register_processes(commands)
    _register_database(commands)
    _register_tokens(commands)
    _register_reclassify(commands)


def _register_processes(commands: Commands) -> None:
    p = commands.add_parser(
        "serve",
        help="run the HTTP server",
        description="Run the HTTP server. On the embedded SQLite database it creates and "
        "migrates the database itself; on PostgreSQL it refuses an old schema.",
    )
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default 5003)")
    p.add_argument("--workers", type=int, help="worker processes (default 1)")
    p.add_argument(
        "--no-worker",
        action="store_true",
        help="do not run the background work in the server (run `execdb worker` instead)",
    )
    p.set_defaults(run=serve)

    p = commands.add_parser(
        "worker",
        help="run the background work: retries, watchdog, dispatch, notifications",
        description="Run the retry scheduler, the watchdog, dispatches and notifications "
        "until stopped (SIGTERM or Ctrl-C). Any number of workers may share one database.",
    )
    p.add_argument("--once", action="store_true", help="do one round, print what it did, exit")
    p.set_defaults(run=worker)

    deliveries = commands.add_parser(
        "deliveries", help="dispatches and notifications"
    ).add_subparsers(metavar="COMMAND", required=True)
    p = deliveries.add_parser("retry", help="try again the deliveries that were given up on")
    p.add_argument("uuid", nargs="?", type=uuid.UUID, metavar="UUID", help="only this job's")
    p.set_defaults(run=deliveries_retry)


def _register_database(commands: Commands) -> None:
    db = commands.add_parser("db", help="database schema").add_subparsers(
        metavar="COMMAND", required=True
    )
    p = db.add_parser("upgrade", help="migrate the database schema to this version's")
    p.add_argument("revision", nargs="?", default="head", help="target revision (default head)")
    p.set_defaults(run=db_upgrade)
    p = db.add_parser("current", help="show the schema revision; exit 1 when it is not current")
    p.set_defaults(run=db_current)


def _register_tokens(commands: Commands) -> None:
    tokens = commands.add_parser("token", help="API tokens").add_subparsers(
        metavar="COMMAND", required=True
    )
    p = tokens.add_parser(
        "create",
        help="create a token and print its secret (once)",
        description="Create a token. Scopes: create (triggers), report (executors), "
        "triage (people who classify crashes), admin (everything).",
    )
    p.add_argument("name", help="who uses it, e.g. trigger or buildbot-prod")
    p.add_argument(
        "--scope",
        action="append",
        required=True,
        choices=("create", "report", "triage", "admin"),
        help="repeat for several scopes",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="print only the secret")
    p.set_defaults(run=token_create)
    p = tokens.add_parser("list", help="list tokens (never their secrets)")
    p.add_argument("--all", action="store_true", help="include revoked tokens")
    p.set_defaults(run=token_list)
    p = tokens.add_parser(
        "revoke", help="revoke a token by name (its sign-in sessions end with it)"
    )
    p.add_argument("name", help="the token's name, as `token list` shows it")
    p.set_defaults(run=token_revoke)
    sessions = commands.add_parser("session", help="sign-in sessions of the pages")
    p = sessions.add_subparsers(metavar="COMMAND", required=True).add_parser(
        "revoke", help="sign out every browser signed in with a token, keeping the token"
    )
    p.add_argument("name", help="the token's name")
    p.set_defaults(run=session_revoke)
