"""Signatures for crashes stored without one: those reported before ExecDB computed them
(migration 0007 added the columns empty), found and signed by a reclassification run
(`execdb reclassify`, POST /api/v1/admin/reclassify; docs/classification.md, "Signatures").

A crash is signed as the report path signed it when it was reported: from the evidence
stored with it (the rule that recognised its log then), else its kept log, else its details,
so the signature does not depend on the rules in use now. It is derived data, like an index:
writing it records no history event and leaves `updated_at` alone. The write only fills an
empty signature of a row that has not changed since it was read (`updated_at` as read), so
that several runs at once, or a report meanwhile, never see their signature replaced.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, func, or_, update
from sqlalchemy.engine import Connection

from execdb.jobs.interfaces import Classifier
from execdb.jobs.models import Job, JobLog


@dataclass(frozen=True, slots=True)
class _Line:
    line: int
    text: str


@dataclass(frozen=True, slots=True)
class Unsigned:
    """A crash to sign: its id, the `updated_at` it was read with, its signature's columns."""

    job_id: int
    seen: datetime
    columns: Mapping[str, Any]


def unsigned() -> ColumnElement[bool]:
    """A crash without a signature that has something to sign it by (a kept log or details);
    the query must join its kept log as JobLog (an outer join)."""
    return and_(
        Job.signature.is_(None),
        or_(JobLog.job_id.is_not(None), func.coalesce(Job.details, "") != ""),
    )


def sign(classifier: Classifier, job: Mapping[Any, Any], log: str | None) -> Unsigned | None:
    """The signature the report path gave `job` (a row of jobs), None: nothing to go by."""
    evidence = [_Line(int(e["line"]), str(e["text"])) for e in job["evidence"] or ()]
    signed = classifier.signature(log, job["details"], evidence)
    if signed is None:
        return None
    return Unsigned(job["id"], job["updated_at"], signed.as_columns())


_FILL = (
    update(Job)
    .where(
        Job.id == bindparam("_id"),
        Job.signature.is_(None),
        Job.updated_at == bindparam("_seen"),
    )
    .values(
        signature=bindparam("signature"),
        signature_text=bindparam("signature_text"),
        signature_line=bindparam("signature_line"),
    )
)


def fill(conn: Connection, crashes: Iterable[Unsigned]) -> int:
    """Write the signatures of crashes still unsigned and unchanged; how many were written."""
    written = 0
    for crash in crashes:
        params = {"_id": crash.job_id, "_seen": crash.seen, **crash.columns}
        written += conn.execute(_FILL, params).rowcount
    return written
