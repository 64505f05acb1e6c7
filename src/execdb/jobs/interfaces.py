"""What the job service needs from the domains above it, as small Protocols (the way
Warehouse's interfaces.py does it): jobs never imports them, the composition root passes them in.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy.engine import Connection

from execdb.jobs.states import JobRow
from execdb.vocabulary import DispatchState


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
