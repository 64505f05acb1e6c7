"""What the job service needs from the domains above it, as small Protocols (the way
Warehouse's interfaces.py does it): jobs never imports them, the composition root passes them in.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.engine import Connection

from execdb.jobs.states import JobRow
from execdb.vocabulary import Actor, Blame, DispatchState


class Reactions(Protocol):
    """What a state change sets in motion, decided inside the transaction that makes it
    (implemented by execdb.automation.reactions)."""

    def ended(self, conn: Connection, job: JobRow, now: datetime) -> datetime | None:
        """A job (as it now is) has just ended: queue what that calls for, and say when the
        job is to be run again (None: not)."""
        ...

    def rescheduled(self, conn: Connection, job: JobRow, now: datetime) -> DispatchState | None:
        """A new attempt was made: queue its dispatch; its dispatch state (None: none)."""
        ...

    def created(self, conn: Connection, job: JobRow, actor: Actor, now: datetime) -> None:
        """A job was created (by a trigger, or as a new attempt): queue what tells of it."""
        ...

    def changed(
        self, conn: Connection, before: JobRow, after: JobRow, actor: Actor, now: datetime
    ) -> None:
        """A report was taken: the job was `before` and now is `after`."""
        ...

    def reclassified(
        self, conn: Connection, before: JobRow, after: JobRow, actor: Actor, now: datetime
    ) -> None:
        """An ended job got another blame or cause (`after`, as it now is), by a person or
        a new run of the rules, in the transaction that changes it."""
        ...

    def retry_withdrawn(self, job: JobRow, now: datetime) -> str | None:
        """A crashed job waiting for its retry was given a new blame or cause (the job as it
        now is): why the retry policy would no longer retry it (None: the retry stands)."""
        ...

    def retry_for(self, job: JobRow, now: datetime) -> datetime | None:
        """When the crash `job` (as a person would classify it) is to be run again by the
        retry policy, None if not; pure, so that a form can say it before it is sent."""
        ...


class Line(Protocol):
    """One line of a log that a verdict rests on; `line` counts from 1."""

    @property
    def line(self) -> int: ...
    @property
    def text(self) -> str: ...


class Verdict(Protocol):
    """What the rules make of a log: UNKNOWN with no cause and no rule when none fired."""

    @property
    def blame(self) -> Blame: ...
    @property
    def cause(self) -> str | None: ...
    @property
    def rule(self) -> str | None: ...
    @property
    def version(self) -> str: ...
    @property
    def evidence(self) -> Sequence[Line]: ...


class Signed(Protocol):
    """A crash's signature: what `as_columns` gives is stored with the crash."""

    def as_columns(self) -> dict[str, Any]: ...


class Classifier(Protocol):
    """Recognises known failures in a crashed run's log (implemented by
    execdb.classify.Engine, built once per process)."""

    @property
    def version(self) -> str:
        """The version of the rules: equal versions give equal verdicts."""
        ...

    def classify(self, log: str) -> Verdict: ...

    def signature(
        self, log: str | None, details: str | None, evidence: Sequence[Line]
    ) -> Signed | None:
        """The crash's signature: its key error line, masked (None: nothing to go by)."""
        ...
