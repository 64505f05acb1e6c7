"""Admin commands: serve, db upgrade/current, token create/list/revoke, session revoke."""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from typing import TYPE_CHECKING, Any

from execdb.cli.errors import CommandError

if TYPE_CHECKING:
    from execdb.config import Settings
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
    from execdb.services import Services

    try:
        return Services.build(settings)
    except (CatalogueError, RulesError) as exc:
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

    services = _ready_services(settings_of(args))
    count = services.outbox.retry_failed(utcnow(), args.uuid)
    print(f"{count} failed deliveries will be tried again")
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

    services = _ready_services(settings_of(args))
    try:
        token, secret = services.tokens.create(args.name, args.scope, utcnow())
    except ExecDBError as exc:
        raise CommandError(exc.message) from None
    if args.quiet:
        print(secret)
    else:
        scopes = ", ".join(sorted(token.scopes))
        print(f"Created token {token.name!r} (scopes: {scopes}). Its secret, shown only now:")
        print(secret)
    return 0


def token_list(args: argparse.Namespace) -> int:
    services = _ready_services(settings_of(args))
    tokens = services.tokens.list(include_revoked=args.all)
    if not tokens:
        print("no tokens")
    for t in tokens:
        revoked = f"  revoked {t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else ""
        scopes = ",".join(sorted(t.scopes))
        print(f"{t.name:<30} {scopes:<20} created {t.created_at:%Y-%m-%d %H:%M}{revoked}")
    return 0


def token_revoke(args: argparse.Namespace) -> int:
    from execdb.db import utcnow
    from execdb.errors import ExecDBError

    services = _ready_services(settings_of(args))
    try:
        services.tokens.revoke(args.name, utcnow())
    except ExecDBError as exc:
        raise CommandError(exc.message) from None
    print(f"revoked token {args.name!r}")
    return 0


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
    p.add_argument("name")
    p.set_defaults(run=token_revoke)
    sessions = commands.add_parser("session", help="sign-in sessions of the pages")
    p = sessions.add_subparsers(metavar="COMMAND", required=True).add_parser(
        "revoke", help="sign out every browser signed in with a token, keeping the token"
    )
    p.add_argument("name", help="the token's name")
    p.set_defaults(run=session_revoke)
