"""`execdb rules export`, `import` and `try` on a real database (SQLite and PostgreSQL), and
`rules list` with saved rules: saved rules round-trip through TOML unchanged."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

# The fixtures of the CLI tests: `execdb` on a fresh database of each backend.
from tests.functional.test_cli import Execdb, execdb, failed_cleanly, home, on_backend  # noqa: F401

SITE = """
["site.widget"]
cause = "task.exception"
blame = "TASK"
precedence = 50
description = "The widget daemon could not frobnicate."
match = ['widgetd: frobnication failed with code \\d+']
examples = ["widgetd: frobnication failed with code 7"]

["site.koji_quoted"]
cause = "koji.error"
precedence = 60
description = "A line with 'quotes' and a \\"double\\" one."
match = ["koji said: \\"no\\" at 'x'"]
then = ['giving up']
within = 3
examples = ["koji said: \\"no\\" at 'x'\\ngiving up"]
"""
IDS = {"site.widget", "site.koji_quoted"}


def test_import_export_round_trip_and_list(
    on_backend: Execdb,  # noqa: F811
    tmp_path: Path,
) -> None:
    source = tmp_path / "site.toml"
    source.write_text(SITE)
    assert on_backend("db", "upgrade").returncode == 0
    imported = on_backend("rules", "import", str(source), "--note", "first")
    again = on_backend("rules", "import", str(source))
    exported = on_backend("rules", "export")
    listed = on_backend("rules", "list", "--json")
    assert imported.returncode == 0, imported.stderr
    assert sorted(imported.stdout.splitlines()) == [
        "added     site.koji_quoted",
        "added     site.widget",
    ]
    assert again.returncode == 0, again.stderr
    assert set(again.stdout.split()) == {"unchanged", *IDS}
    assert exported.returncode == 0, exported.stderr
    assert tomllib.loads(exported.stdout) == tomllib.loads(SITE)
    rules = {r["id"]: r for r in map(json.loads, listed.stdout.splitlines())}
    assert rules["site.widget"]["origin"] == "saved"
    assert rules["site.widget"]["author"] == "execdb rules import"
    assert rules["site.widget"]["note"] == "first"
    assert {r["origin"] for r in rules.values()} == {"shipped", "saved"}
    # The export, imported again, is the same rules: nothing changes.
    back = tmp_path / "back.toml"
    back.write_text(exported.stdout)
    third = on_backend("rules", "import", str(back))
    assert set(third.stdout.split()) == {"unchanged", *IDS}
    changed = tmp_path / "changed.toml"
    changed.write_text(exported.stdout.replace("precedence = 50", "precedence = 55"))
    fourth = on_backend("rules", "import", str(changed))
    assert sorted(fourth.stdout.splitlines()) == [
        "changed   site.widget",
        "unchanged site.koji_quoted",
    ]


def test_import_refuses_a_bad_pattern_and_saves_nothing(
    on_backend: Execdb,  # noqa: F811
    tmp_path: Path,
) -> None:
    assert on_backend("db", "upgrade").returncode == 0
    bad = tmp_path / "bad.toml"
    bad.write_text(
        SITE + '\n["site.bad"]\ncause = "koji.error"\nprecedence = 1\n'
        "description = \"x\"\nmatch = ['(?<=a)b']\nexamples = ['ab']\n"
    )
    message = failed_cleanly(on_backend("rules", "import", str(bad)))
    assert "RE2 cannot compile it" in message
    assert "(?<=a)b" in message
    exported = on_backend("rules", "export")
    assert exported.returncode == 0, exported.stderr
    assert tomllib.loads(exported.stdout) == {}


def test_try_reports_the_backtest(
    on_backend: Execdb,  # noqa: F811
    tmp_path: Path,
) -> None:
    source = tmp_path / "site.toml"
    source.write_text(SITE)
    assert on_backend("db", "upgrade").returncode == 0
    tried = on_backend("rules", "try", str(source), "--json")
    assert tried.returncode == 0, tried.stderr
    results = [json.loads(line) for line in tried.stdout.splitlines()]
    assert [r["id"] for r in results] == ["site.widget", "site.koji_quoted"]
    assert all(r["scanned"]["logs"] == 0 for r in results)
    text = on_backend("rules", "try", str(source))
    assert "rule site.widget: scanned 0 kept logs" in text.stdout
