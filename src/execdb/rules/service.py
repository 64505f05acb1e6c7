"""Saved rules: create, change and disable them as new versions, and read what is current.

Rules saved here are merged over the shipped rules and the deployment's file the way that
file is merged over the shipped ones (execdb.classify.rules.load_rules): a saved rule with a
shipped id replaces it, a new id adds a rule, a disabled version removes the rule. A draft is
checked by building the whole merged rule set with it, so what is saved always loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection

from execdb.causes.catalogue import Catalogue
from execdb.classify import RulesError, RuleSet, load_rules
from execdb.classify.rules import Rule, Saved, build_rule
from execdb.db import Database
from execdb.errors import Conflict, NotFound, Unprocessable
from execdb.rules.models import RuleVersion

_T = RuleVersion.__table__
_NEWEST = select(func.max(_T.c.id)).group_by(_T.c.rule_id)
CURRENT = select(_T).where(_T.c.id.in_(_NEWEST.scalar_subquery())).order_by(_T.c.rule_id)
GENERATION = select(func.coalesce(func.max(_T.c.id), 0))


@dataclass(frozen=True, slots=True)
class Change:
    """Who changes a rule, and why."""

    author: str
    note: str = ""
    bug: str | None = None


def saved_entries(conn: Connection) -> list[Saved]:
    return [
        Saved(row.rule_id, f"saved rule {row.rule_id!r} version {row.version}", row.definition)
        for row in conn.execute(CURRENT)
    ]


class SavedRules:
    def __init__(self, db: Database, catalogue: Catalogue, rules_file: Path | None) -> None:
        self.db = db
        self.catalogue = catalogue
        self.rules_file = rules_file

    def generation(self) -> int:
        with self.db.read() as conn:
            return int(conn.execute(GENERATION).scalar_one())

    def load(self) -> tuple[int, RuleSet]:
        """The generation and the rule set it gives (shipped, the file's, then saved)."""
        with self.db.read() as conn:
            generation = int(conn.execute(GENERATION).scalar_one())
            saved = saved_entries(conn)
        return generation, load_rules(self.catalogue, self.rules_file, saved)

    def draft(self, rule_id: str, table: Mapping[str, Any]) -> Rule:
        """The rule a table makes, checked as a rule file's are; Unprocessable naming the
        field or the pattern that is wrong."""
        try:
            return build_rule(rule_id, table, "draft", self.catalogue)
        except RulesError as exc:
            raise Unprocessable(str(exc)) from None

    def current(self) -> dict[str, Mapping[str, Any]]:
        """Every saved rule that is not disabled: id to its current version's row."""
        with self.db.read() as conn:
            return {
                row["rule_id"]: dict(row)
                for row in conn.execute(CURRENT).mappings()
                if row["definition"] is not None
            }

    def versions(self, rule_id: str) -> list[Mapping[str, Any]]:
        stmt = select(_T).where(_T.c.rule_id == rule_id).order_by(_T.c.id)
        with self.db.read() as conn:
            return [dict(row) for row in conn.execute(stmt).mappings()]

    def save(
        self,
        rule_id: str,
        table: Mapping[str, Any],
        change: Change,
        now: datetime,
        *,
        new: bool,
    ) -> Mapping[str, Any]:
        """Save a rule as its next version. `new`: it must not be a rule already (Conflict);
        else it must be one (NotFound), shipped, the file's or saved."""
        self.draft(rule_id, table)
        with self.db.write() as conn:
            _, rules = self._merged(conn)
            exists = rules.get(rule_id) is not None
            if new and exists:
                raise Conflict(f"rule {rule_id!r} exists already: change it with PUT")
            if not new and not exists:
                raise NotFound(f"no rule {rule_id!r} (create it with POST)")
            return self._add(conn, rule_id, dict(table), change, now)

    def disable(self, rule_id: str, change: Change, now: datetime) -> Mapping[str, Any]:
        """Disable a rule (of any origin) with a version of its own."""
        with self.db.write() as conn:
            _, rules = self._merged(conn)
            if rules.get(rule_id) is None:
                raise NotFound(f"no rule {rule_id!r} is in use (it may be disabled already)")
            return self._add(conn, rule_id, None, change, now)

    def _merged(self, conn: Connection) -> tuple[list[Saved], RuleSet]:
        saved = saved_entries(conn)
        return saved, load_rules(self.catalogue, self.rules_file, saved)

    def _add(
        self,
        conn: Connection,
        rule_id: str,
        table: dict[str, Any] | None,
        change: Change,
        now: datetime,
    ) -> Mapping[str, Any]:
        last = conn.execute(
            select(func.coalesce(func.max(_T.c.version), 0)).where(_T.c.rule_id == rule_id)
        ).scalar_one()
        row = {
            "rule_id": rule_id,
            "version": int(last) + 1,
            "definition": table,
            "author": change.author,
            "note": change.note,
            "bug": change.bug,
            "created_at": now,
        }
        inserted = conn.execute(insert(RuleVersion).returning(_T.c.id), row).scalar_one()
        return {**row, "id": inserted}

    def import_tables(
        self, tables: Mapping[str, Mapping[str, Any]], change: Change, now: datetime
    ) -> list[tuple[str, str]]:
        """Save every table that differs from the rule in use, as a new version (an upsert);
        each id with what became of it: added, changed or unchanged. All or nothing: one bad
        table and nothing is saved."""
        for rule_id, table in tables.items():
            if not isinstance(table, Mapping):
                raise Unprocessable(f"rule {rule_id!r}: expected a table")
            self.draft(rule_id, table)
        done: list[tuple[str, str]] = []
        with self.db.write() as conn:
            _, rules = self._merged(conn)
            for rule_id, table in tables.items():
                before = rules.get(rule_id)
                if before is not None and _same(before, self.draft(rule_id, table)):
                    done.append((rule_id, "unchanged"))
                    continue
                self._add(conn, rule_id, dict(table), change, now)
                done.append((rule_id, "changed" if before is not None else "added"))
        return done


def _same(a: Rule, b: Rule) -> bool:
    fields = ("cause", "blame", "precedence", "description", "match", "then", "within")
    more = ("unless", "examples", "counter_examples")
    return all(getattr(a, f) == getattr(b, f) for f in (*fields, *more))
