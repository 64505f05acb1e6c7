"""The saved rules from the command line, on the local database like the admin commands:
rules export, rules import, rules try (and `rules list` shows the saved ones with the rest).

Without a database configured and with no embedded one yet, `list` and `export` show the
shipped and the file's rules only; `import` and `try` need a database and make the embedded
one if need be.
"""

from __future__ import annotations

import argparse
import json
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from execdb.cli.admin import _ready_services, settings_of
from execdb.cli.errors import CommandError

if TYPE_CHECKING:
    from execdb.services import Services

AUTHOR = "execdb rules import"


def local_services(args: argparse.Namespace, *, create: bool) -> Services | None:
    overrides = {"rules_file": args.rules} if getattr(args, "rules", None) else {}
    settings = settings_of(args, **overrides)
    embedded = settings.data_dir / "execdb.sqlite"
    if settings.database_url is None and not embedded.exists() and not create:
        return None
    return _ready_services(settings)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise CommandError(f"{path}: cannot read: {exc.strerror}") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CommandError(f"{path}: not valid TOML: {exc}") from None


def export(args: argparse.Namespace) -> int:
    from execdb.classify.rules import rule_table
    from execdb.classify.toml import dump_rules
    from execdb.rules.schemas import origin_of

    services = local_services(args, create=False)
    if services is not None:
        rules = services.classifier.refresh().rules
        rules_file = services.settings.rules_file
    else:
        from execdb.cli.classify import _engine

        rules = _engine(args).rules
        rules_file = args.rules
    chosen = [r for r in rules.rules if args.all or origin_of(r, rules_file) == "saved"]
    header = (
        f"ExecDB classification rules, version {rules.version}"
        + ("" if args.all else " (the saved ones)")
        + ".\nThe format is that of rules.toml (docs/classification.md)."
    )
    print(dump_rules({r.id: rule_table(r) for r in chosen}, header), end="")
    return 0


def import_(args: argparse.Namespace) -> int:
    from execdb.db import utcnow
    from execdb.errors import ExecDBError
    from execdb.rules.service import Change

    tables = _read_toml(args.file)
    services = local_services(args, create=True)
    assert services is not None
    change = Change(args.author, args.note or f"imported from {args.file.name}", args.bug)
    try:
        done = services.rules.import_tables(tables, change, utcnow())
    except ExecDBError as exc:
        raise CommandError(f"{args.file}: {exc.message}") from None
    for rule_id, what in done:
        print(f"{what:<9} {rule_id}")
    return 0


def try_(args: argparse.Namespace) -> int:
    from execdb.db import utcnow
    from execdb.errors import ExecDBError

    tables = _read_toml(args.file)
    services = local_services(args, create=True)
    assert services is not None
    failed = False
    for rule_id, table in tables.items():
        try:
            found = services.desk.try_draft(
                rule_id, table, utcnow(), days=args.days, max_logs=args.max_logs
            )
        except ExecDBError as exc:
            raise CommandError(f"{args.file}: {exc.message}") from None
        if args.json:
            print(json.dumps(found, ensure_ascii=False))
        else:
            _show_try(found)
        failed = failed or found["finished"]["matched"] > 0
    return 1 if failed and args.strict else 0


def _show_try(found: dict[str, Any]) -> None:
    scanned, crashed, finished = found["scanned"], found["crashed"], found["finished"]
    more = " (stopped at the limit: there are more)" if scanned["truncated"] else ""
    print(
        f"rule {found['id']}: scanned {scanned['logs']} kept logs since {scanned['since']}"
        f"{more}: {scanned['crashed']} crashed, {scanned['finished']} finished"
    )
    print(
        f"  crashes matched {crashed['matched']}, decided by it {crashed['decides']}, "
        f"would change {crashed['would_change']}, unchanged {crashed['unchanged']}, "
        f"kept as a reporter or person classified them {crashed['protected']}"
    )
    for change in crashed["changes"]:
        old, new = change["from"], change["to"]
        print(
            f"    {change['uuid']}: {old['blame']} {old['cause'] or '-'} -> "
            f"{new['blame']} {new['cause']} (line {change['line']})"
        )
    print(f"  FINISHED runs matched {finished['matched']} (a rule should match none)")
    for job in finished["jobs"]:
        print(f"    {job['uuid']} line {job['line']}: {job['text'][:160]}")
    for overlap in found["overlaps"]:
        print(f"  overlaps rule {overlap['rule']} on {overlap['logs']} logs")


def register(rules: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from execdb.cli.classify import _rules_option

    p = rules.add_parser(
        "export",
        help="print the saved rules as TOML in the shipped format",
        description="Print the rules saved in the database (with --all, every rule in use) "
        "as TOML in the format of rules.toml, for review in git or `rules import`.",
    )
    p.add_argument("--all", action="store_true", help="every rule in use, not only saved ones")
    _rules_option(p)
    p.set_defaults(run=export)

    p = rules.add_parser(
        "import",
        help="save the rules of a TOML file (each one that differs, as a new version)",
    )
    p.add_argument("file", type=Path, metavar="FILE.toml", help="rules in the shipped format")
    p.add_argument("--author", default=AUTHOR, help=f"who the versions name (default {AUTHOR!r})")
    p.add_argument("--note", help="why (default: 'imported from FILE')")
    p.add_argument("--bug", help="a bug the change is about")
    _rules_option(p)
    p.set_defaults(run=import_)

    p = rules.add_parser(
        "try",
        help="backtest draft rules over the kept logs of the database",
        description="For each rule of the file: which stored crashes it would classify and "
        "change, which kept logs of FINISHED runs it matches, which rules it overlaps. "
        "Nothing is saved.",
    )
    p.add_argument("file", type=Path, metavar="FILE.toml", help="draft rules, shipped format")
    p.add_argument("--days", type=int, default=30, help="kept logs of this many days (30)")
    p.add_argument("--max-logs", type=int, default=5000, help="at most this many logs (5000)")
    p.add_argument("--json", action="store_true", help="one JSON object per rule")
    p.add_argument(
        "--strict", action="store_true", help="exit 1 when a rule matches a FINISHED run"
    )
    _rules_option(p)
    p.set_defaults(run=try_)
