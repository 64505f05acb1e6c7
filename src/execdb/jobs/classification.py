"""Which answer a crash gets, the reporter's or the rules': one function, used by the report
path and by reclassification alike, so that both decide the same way (docs/classification.md).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from execdb.causes.catalogue import Catalogue
from execdb.jobs.interfaces import Classifier
from execdb.jobs.states import Claim
from execdb.vocabulary import ClassifiedBy


def classified(claim: Claim, catalogue: Catalogue, classifier: Classifier | None) -> Claim:
    """A crash's claim with its classification. A cause the reporter names stays (the runner
    knows best), unless it is a symptom (it says how the run ended, not why) or there is
    none: then the rules' answer, if they have one, gives blame and cause. When they disagree
    with a reported cause, their answer is kept beside it."""
    cause = claim.cause
    specific = cause is not None and not (cause in catalogue and catalogue[cause].symptom)
    found: dict[str, object] = {
        "reported_blame": claim.blame,
        "reported_cause": cause,
        "classified_by": ClassifiedBy.REPORTER if specific else None,
    }
    if classifier is None:
        return replace(claim, classification=found)
    evidence: tuple[Any, ...] = ()
    verdict = classifier.classify(claim.log) if claim.log is not None else None
    if verdict is not None:
        found["rules_version"] = verdict.version
        if verdict.cause is not None:
            evidence = tuple(verdict.evidence)
            found["rule_id"] = verdict.rule
            found["evidence"] = [{"line": e.line, "text": e.text} for e in evidence]
    # The crash's signature (its key error line, masked) groups it with its kind on /triage.
    signed = classifier.signature(claim.log, claim.details, evidence)
    if signed is not None:
        found.update(signed.as_columns())
    if verdict is None or verdict.cause is None:
        return replace(claim, classification=found)
    if not specific:
        found["classified_by"] = ClassifiedBy.RULES
        return replace(claim, blame=verdict.blame, cause=verdict.cause, classification=found)
    reported = (cause, claim.blame or catalogue.default_blame(cause))
    if (verdict.cause, verdict.blame) != reported:
        found.update(rules_blame=verdict.blame, rules_cause=verdict.cause)
    return replace(claim, classification=found)
