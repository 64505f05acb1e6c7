"""Offline log classification: classify, rules list, rules check. No server, no database.

The rules are the shipped ones with the deployment's merged over them: `--rules FILE`, or
else the settings' `rules_file`; causes come from the settings' `causes_file` as everywhere.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from execdb.cli.admin import settings_of
from execdb.cli.errors import CommandError

if TYPE_CHECKING:
    from execdb.classify import Engine, Verdict
    from execdb.classify.corpus import Report


def _engine(args: argparse.Namespace) -> Engine:
    from execdb.causes.catalogue import CatalogueError, load_catalogue
    from execdb.classify import Engine, RulesError, load_rules

    settings = settings_of(args)
    try:
        catalogue = load_catalogue(settings.causes_file)
        return Engine(load_rules(catalogue, args.rules or settings.rules_file))
    except (CatalogueError, RulesError) as exc:
        raise CommandError(str(exc)) from None


def _printable(text: str) -> str:
    """Evidence comes from the log: its control characters must not drive the terminal."""
    return "".join(
        c if c == "\t" or not (c < " " or "\x7f" <= c <= "\x9f") else f"\\x{ord(c):02x}"
        for c in text
    )


def _show(name: str, verdict: Verdict, skipped: int) -> None:
    if verdict.cause is None:
        print(f"{name}: UNKNOWN, no rule matched  [rules {verdict.version}]")
    else:
        decided = f"rule {verdict.rule}, rules {verdict.version}"
        print(f"{name}: {verdict.blame} {verdict.cause}  [{decided}]")
    for evidence in verdict.evidence:
        print(f"  line {evidence.line}: {_printable(evidence.text)}")
    if len(verdict.findings) > 1:
        print(f"  {verdict.explanation}")
    if skipped:
        print(f"  (only the tail was read: lines are counted from byte {skipped})")


def _read(name: str, stdin: BinaryIO) -> tuple[bytes, int]:
    from execdb.classify.logs import read_tail

    if name == "-":
        tail = read_tail(stdin)
    else:
        try:
            with Path(name).open("rb") as stream:
                tail = read_tail(stream)
        except OSError as exc:
            raise CommandError(f"{name}: cannot read: {exc.strerror}") from None
    return tail.text, tail.skipped


def classify(args: argparse.Namespace) -> int:
    engine = _engine(args)
    failed = False
    for name in args.files:
        try:
            text, skipped = _read(name, sys.stdin.buffer)
        except CommandError as exc:
            print(f"execdb: {exc}", file=sys.stderr)
            failed = True
            continue
        verdict = engine.classify(text)
        if args.json:
            line: dict[str, Any] = {"file": name} | verdict.as_dict() | {"skipped_bytes": skipped}
            print(json.dumps(line, ensure_ascii=False))
        else:
            _show(name, verdict, skipped)
        sys.stdout.flush()
    return 1 if failed else 0


def rules_list(args: argparse.Namespace) -> int:
    from execdb.cli.rules import local_services

    services = local_services(args, create=False)
    if services is None:
        return _list_offline(args)
    from execdb.db import utcnow

    listing = services.desk.listing(utcnow())
    if args.json:
        for item in listing["data"]:
            print(json.dumps(item, ensure_ascii=False))
        return 0
    print(
        f"{len(listing['data'])} rules, version {listing['rules_version']}; "
        f"hits in 7 and 30 days; stale: no hit in {listing['stale_days']} days"
    )
    for r in listing["data"]:
        what = f"{r['id']:<28} {r['cause']:<24} {r['blame']:<12} {r['origin']:<10}"
        hits = f"{r['hits_7d']:>5} {r['hits_30d']:>5}" + (" stale" if r["stale"] else "")
        print(f"{r['precedence']:>3}  {what} {hits}  {r['description']}")
    for reason in listing["skipped"]:
        print(f"left out: {reason}")
    return 0


def _list_offline(args: argparse.Namespace) -> int:
    from execdb.rules.schemas import origin_of

    engine = _engine(args)
    rules = engine.rules
    if args.json:
        for rule in rules.rules:
            item = {
                "id": rule.id,
                "cause": rule.cause,
                "blame": str(rule.blame),
                "precedence": rule.precedence,
                "description": rule.description,
                "origin": origin_of(rule, args.rules or settings_of(args).rules_file),
            }
            print(json.dumps(item, ensure_ascii=False))
        return 0
    print(f"{len(rules)} rules, version {rules.version}")
    for rule in rules.rules:
        what = f"{rule.id:<28} {rule.cause:<24} {rule.blame:<12}"
        print(f"{rule.precedence:>3}  {what} {rule.description}")
    return 0


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _print_report(report: Report, title: str) -> None:
    from execdb.classify.corpus import NO_CAUSE

    n = len(report.outcomes)
    print(f"{title}: {n} entries, rules {report.version}")
    print(
        f"blame accuracy {report.blame_accuracy:.3f}   cause accuracy {report.cause_accuracy:.3f}"
    )
    print(
        f"answered {report.answered} of {n}; {report.wrong_answers} wrong "
        f"(precision of the answers {report.precision:.3f})"
    )
    print(f"\n{'cause':<28} {'precision':>9} {'recall':>7} {'answered':>9} {'labelled':>9}")
    for cause, s in report.scores.items():
        print(
            f"{cause:<28} {_score(s.precision):>9} {_score(s.recall):>7} "
            f"{s.answered:>9} {s.labelled:>9}"
        )
    if report.confusions:
        print("\nconfusions (labelled -> answered):")
        for (labelled, answered), count in report.confusions.most_common():
            print(f"  {count:>4}  {labelled} -> {answered}")
    if report.misses:
        print("\nmisses:")
    for o in report.misses:
        v = o.verdict
        answer = f"{v.blame} {v.cause}" if v.cause else f"{v.blame} {NO_CAUSE}"
        fired = f" by {v.rule}" if v.rule else ""
        print(
            f"  {o.entry.id}: labelled {o.entry.blame} {o.entry.cause or NO_CAUSE}, "
            f"answered {answer}{fired}"
        )
        for evidence in v.evidence:
            print(f"      line {evidence.line}: {_printable(evidence.text)[:160]}")


def rules_check(args: argparse.Namespace) -> int:
    from execdb.classify.corpus import CorpusError, evaluate, read_corpus, select

    engine = _engine(args)
    entries = []
    try:
        for path in args.corpus:
            entries += select(read_corpus(path), args.split)
    except CorpusError as exc:
        raise CommandError(str(exc)) from None
    if not entries:
        raise CommandError(
            "no corpus entries" + (f" in split {args.split!r}" if args.split else "")
        )
    report = evaluate(engine, entries)
    checks = [
        ("blame accuracy", report.blame_accuracy, args.min_blame_accuracy),
        ("cause accuracy", report.cause_accuracy, args.min_cause_accuracy),
        ("precision", report.precision, args.min_precision),
    ]
    failures = [
        f"{name} {value:.3f} is below {minimum}"
        for name, value, minimum in checks
        if minimum is not None and value < minimum
    ]
    if args.json:
        print(json.dumps(report.as_dict() | {"failures": failures}, ensure_ascii=False))
    else:
        title = ", ".join(str(p) for p in args.corpus) + (
            f" (split {args.split})" if args.split else ""
        )
        _print_report(report, title)
        for failure in failures:
            print(f"\nFAILED: {failure}")
    return 1 if failures else 0


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}")
    return value


def _rules_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rules",
        type=Path,
        metavar="FILE",
        help="rules merged over the shipped ones (default: the rules_file setting)",
    )


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "classify",
        help="say which known failure a log shows (offline)",
        description="Classify crashed runs' logs with the rules: blame, cause, the rule that "
        "decided and its evidence. Only the last 256 KiB of each log is read.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="a log file, or - for stdin")
    p.add_argument("--json", action="store_true", help="one JSON object per file and line")
    _rules_option(p)
    p.set_defaults(run=classify)

    rules = commands.add_parser("rules", help="the classification rules").add_subparsers(
        metavar="COMMAND", required=True
    )
    p = rules.add_parser(
        "list",
        help="list the rules: precedence, id, cause, blame, origin, hits",
        description="Every rule in use: the shipped ones, the rules_file's and those saved in "
        "the database (when there is one), with their hits in 7 and 30 days.",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per rule and line")
    _rules_option(p)
    p.set_defaults(run=rules_list)

    p = rules.add_parser(
        "check",
        help="measure the rules on a labelled corpus",
        description="Run the rules over labelled logs (JSON lines with log, blame, cause) "
        "and print accuracy, per-cause precision and recall, confusions and every miss. "
        "Exits 1 when a given minimum is not met.",
    )
    p.add_argument(
        "corpus", nargs="+", type=Path, metavar="CORPUS.jsonl", help="labelled logs, one a line"
    )
    p.add_argument("--split", help="only the entries of this split (dev, heldout ...)")
    p.add_argument(
        "--min-blame-accuracy", type=_fraction, metavar="X", help="exit 1 below this (0 to 1)"
    )
    p.add_argument(
        "--min-cause-accuracy", type=_fraction, metavar="X", help="exit 1 below this (0 to 1)"
    )
    p.add_argument(
        "--min-precision", type=_fraction, metavar="X", help="of the entries given a cause"
    )
    p.add_argument("--json", action="store_true", help="the whole report as one JSON object")
    _rules_option(p)
    p.set_defaults(run=rules_check)

    from execdb.cli import rules as saved_rules

    saved_rules.register(rules)
