"""What the API, the pages and the CLI ask of the rules, each one call: the list with hits
and staleness, one rule with its history, a draft's backtest, a saved rule applied."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from execdb.errors import NotFound
from execdb.jobs.reclassify import Reclassifier
from execdb.rules.apply import apply_rule
from execdb.rules.backtest import backtest
from execdb.rules.live import LiveRules
from execdb.rules.schemas import shown, version_shown
from execdb.rules.service import SavedRules
from execdb.rules.usage import usage
from execdb.vocabulary import Actor


@dataclass(frozen=True, slots=True)
class RulesDesk:
    saved: SavedRules
    live: LiveRules
    stale_days: int
    # Decides one stored crash again with the rules in use, as `execdb reclassify` does.
    reclassifier: Reclassifier

    def listing(self, now: datetime) -> dict[str, Any]:
        rules = self.live.refresh().rules
        saved = self.saved.current()
        hits = usage(self.saved.db, now)
        data = [
            shown(r, self.saved.rules_file, saved.get(r.id), hits.get(r.id), now, self.stale_days)
            for r in rules.rules
        ]
        return {
            "data": data,
            "rules_version": rules.version,
            "stale": [r["id"] for r in data if r["stale"]],
            "stale_days": self.stale_days,
            "skipped": list(rules.skipped),
        }

    def one(self, rule_id: str, now: datetime) -> dict[str, Any]:
        rules = self.live.refresh().rules
        versions = self.saved.versions(rule_id)
        rule = rules.get(rule_id)
        if rule is None and not versions:
            raise NotFound(f"no rule {rule_id!r}")
        shown_rule = None
        if rule is not None:
            current = versions[-1] if versions else None
            found = usage(self.saved.db, now).get(rule_id)
            shown_rule = shown(rule, self.saved.rules_file, current, found, now, self.stale_days)
        return {
            "id": rule_id,
            "in_use": shown_rule,
            "versions": [version_shown(v) for v in versions],
        }

    def try_draft(
        self, rule_id: str, table: Mapping[str, Any], now: datetime, *, days: int, max_logs: int
    ) -> dict[str, Any]:
        draft = self.saved.draft(rule_id, table)
        current = self.live.refresh().rules
        found = backtest(self.saved.db, draft, current, now, days=days, max_logs=max_logs)
        return {"id": rule_id, "rules_version": current.version, **found.as_dict()}

    def apply(
        self, rule_id: str, actor: Actor, now: datetime, *, days: int, max_logs: int
    ) -> dict[str, Any]:
        engine = self.live.refresh()
        rule = engine.rules.get(rule_id)
        if rule is None:
            raise NotFound(f"no rule {rule_id!r} is in use")
        since = now - timedelta(days=days)
        done = apply_rule(
            self.saved.db, rule, self.reclassifier, actor, now, since=since, max_logs=max_logs
        )
        return {"id": rule_id, "rules_version": engine.version, **done.as_dict()}
