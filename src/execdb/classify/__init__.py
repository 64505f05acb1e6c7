"""Recognise known failures in the tail of a crashed run's log, with rules that are data.

    rules.toml   the shipped rules (a deployment merges its own file over them)
    rules.py     the rule model, the loader and the merge
    regex.py     RE2 over bytes: line patterns and the one-pass pattern set
    engine.py    matching, "root cause wins", the verdict and its evidence
    signature.py a crash's key error line, masked, for grouping
    logs.py      bounded reads of a log's tail
    corpus.py    precision and recall over a labelled corpus

The package imports nothing of ExecDB but the blame vocabulary and the cause catalogue, so
that the server, the worker and the offline tools can all use it.
"""

from execdb.classify.engine import Engine, Evidence, Finding, Verdict
from execdb.classify.rules import Rule, RulesError, RuleSet, load_rules

__all__ = [
    "Engine",
    "Evidence",
    "Finding",
    "Rule",
    "RuleSet",
    "RulesError",
    "Verdict",
    "load_rules",
]
