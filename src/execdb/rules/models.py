"""The table of saved rules: every version of every rule saved through the API or the CLI.

A rule's current form is its newest version; nothing is ever updated or deleted, so the
history of a rule (who changed what, when and why) is the table itself, and the largest id is
the rules' generation: a process that has seen it has seen every change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from execdb.db import Base, JSONType
from execdb.jobs.models import BigId


class RuleVersion(Base):
    __tablename__ = "rule_versions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rule_id: Mapped[str] = mapped_column(String(100))
    version: Mapped[int]
    # The rule's table in the format of rules.toml; null for a version that disables the rule.
    definition: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    author: Mapped[str] = mapped_column(String(100))
    note: Mapped[str] = mapped_column(Text, default="")
    bug: Mapped[str | None] = mapped_column(String(1024))
    created_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("rule_id", "version"),
        Index("ix_rule_versions_rule_id_id", "rule_id", "id"),
        # Ids never reused (SQLite would reuse a deleted one): the largest is the generation.
        {"sqlite_autoincrement": True},
    )
