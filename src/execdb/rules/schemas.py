"""Request bodies of the rules API, and a rule as it is shown (shipped, the file's or saved)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from execdb.classify.rules import SHIPPED, Rule, rule_table
from execdb.rules.usage import Usage, is_stale

DAYS_MAX = 366
LOGS_MAX = 100_000


class RuleFields(BaseModel):
    """A rule's table, as in rules.toml (docs/classification.md)."""

    model_config = ConfigDict(extra="forbid")

    cause: str = Field(max_length=100)
    blame: str | None = Field(default=None, max_length=16)
    precedence: int
    description: str = Field(max_length=2000)
    match: list[str] = Field(max_length=50)
    then: list[str] | None = Field(default=None, max_length=50)
    within: int | None = None
    unless: list[str] | None = Field(default=None, max_length=50)
    examples: list[str] = Field(max_length=50)
    counter_examples: list[str] | None = Field(default=None, max_length=50)

    def table(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class RuleChange(RuleFields):
    """A rule saved as a new version, with why."""

    note: str = Field(default="", max_length=2000, description="Why it changed.")
    bug: str | None = Field(default=None, max_length=1024, description="A bug it is about.")

    def table(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True, exclude={"note", "bug"})


class RuleCreate(RuleChange):
    id: str = Field(max_length=100, description="Lower case, digits and '_', parts joined by '.'")

    def table(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True, exclude={"note", "bug", "id"})


class RuleDisable(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=2000)
    bug: str | None = Field(default=None, max_length=1024)


class Window(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: int = Field(default=30, ge=1, le=DAYS_MAX, description="Kept logs of this many days.")
    max_logs: int = Field(default=5000, ge=1, le=LOGS_MAX, description="At most this many.")


class RuleTry(Window):
    id: str = Field(default="draft", max_length=100)
    rule: RuleFields


def origin_of(rule: Rule, rules_file: Path | None) -> str:
    if rule.origin == SHIPPED:
        return "shipped"
    if rules_file is not None and rule.origin == str(rules_file):
        return "deployment"
    return "saved"


def shown(
    rule: Rule,
    rules_file: Path | None,
    saved: Mapping[str, Any] | None,
    found: Usage | None,
    now: datetime,
    stale_days: int,
) -> dict[str, Any]:
    """A rule in use as the API and the pages show it."""
    origin = origin_of(rule, rules_file)
    since = saved["created_at"] if saved is not None and origin == "saved" else None
    return {
        "id": rule.id,
        "origin": origin,
        **rule_table(rule),
        "blame": str(rule.blame),
        "version": saved["version"] if since is not None and saved is not None else None,
        "author": saved["author"] if since is not None and saved is not None else None,
        "note": saved["note"] if since is not None and saved is not None else None,
        "bug": saved["bug"] if since is not None and saved is not None else None,
        "saved_at": since.isoformat() if since is not None else None,
        "hits_7d": found.hits_7d if found else 0,
        "hits_30d": found.hits_30d if found else 0,
        "last_hit": found.last_hit.isoformat() if found and found.last_hit else None,
        "stale": is_stale(found, now, stale_days, since),
    }


def version_shown(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "version": row["version"],
        "disabled": row["definition"] is None,
        "rule": row["definition"],
        "author": row["author"],
        "note": row["note"],
        "bug": row["bug"],
        "saved_at": row["created_at"].isoformat(),
    }
