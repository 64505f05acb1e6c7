"""The rules in use in this process, kept current without a restart.

Every server process and worker compiles the merged rules once and keeps them. Each use
(a crash being classified, a page) may first look at the rules' generation, the largest id of
the saved versions (one indexed read), at most once every `refresh_seconds`; when it moved,
the rules are loaded and compiled again. So a rule saved through one process is in use in
every other within that time, and the rules version stamped on each classification (a hash
of every rule that decides) changes with it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from execdb.classify import Engine, RuleSet, Verdict, load_rules
from execdb.classify.signature import Signature, signature
from execdb.rules.service import SavedRules

log = logging.getLogger("execdb.rules")


class LiveRules:
    """An Engine that follows the saved rules (implements jobs.interfaces.Classifier)."""

    def __init__(
        self,
        saved: SavedRules,
        refresh_seconds: float = 2.0,
        *,
        initial: RuleSet | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.saved = saved
        self.refresh_seconds = refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._generation = -1
        self._checked = float("-inf")
        # Before any database is reachable (start-up, the offline commands): the file's rules.
        self._engine = Engine(initial or load_rules(saved.catalogue, saved.rules_file))

    @property
    def engine(self) -> Engine:
        """The current rules, compiled; looks at the generation when it is time to."""
        now = self._clock()
        if now - self._checked < self.refresh_seconds:
            return self._engine
        with self._lock:
            if now - self._checked >= self.refresh_seconds:
                self._refresh()
                self._checked = self._clock()
        return self._engine

    def refresh(self) -> Engine:
        """Look at the generation now (after this process saved a rule)."""
        with self._lock:
            self._refresh()
            self._checked = self._clock()
        return self._engine

    def _refresh(self) -> None:
        try:
            generation = self.saved.generation()
            if generation == self._generation:
                return
            generation, rules = self.saved.load()
        except Exception:
            # A database that cannot answer now must not stop classification: the rules
            # last loaded stay in use, and the next look tries again.
            log.exception("could not read the saved rules; the rules last loaded stay in use")
            return
        for reason in rules.skipped:
            log.error("a saved rule is left out: %s", reason)
        self._engine = Engine(rules)
        self._generation = generation

    @property
    def rules(self) -> RuleSet:
        return self.engine.rules

    @property
    def version(self) -> str:
        return self.engine.version

    def classify(self, log: str) -> Verdict:
        return self.engine.classify(log)

    def signature(
        self, log: str | None, details: str | None, evidence: Sequence[Any]
    ) -> Signature | None:
        """The crash's signature; it does not depend on the rules in use."""
        return signature(log, details, evidence)
