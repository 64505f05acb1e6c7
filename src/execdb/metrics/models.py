"""The one table of the metrics domain: when each worker last finished a round.

Figures about the whole service are read from the database at scrape time, so that every
server process answers the same; the worker's sign of life is one of them. A worker writes
its row at the end of every round that did not fail; rows of workers gone for a day are
dropped by the others.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from execdb.db import Base


class WorkerRound(Base):
    __tablename__ = "worker_rounds"

    worker: Mapped[str] = mapped_column(String(100), primary_key=True)
    finished_at: Mapped[datetime]
