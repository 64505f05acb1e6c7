"""queue and run times, and the indexes statistics read

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

STATS_COLUMNS = [
    "state",
    "created_at",
    "blame",
    "cause",
    "task",
    "arch",
    "item_type",
    "queue_us",
    "run_us",
]
RETRIED = sa.text("rescheduled_as IS NOT NULL")


def _microseconds(begin: str, end: str) -> str:
    """SQL for the microseconds from column `begin` to column `end`."""
    if op.get_bind().dialect.name == "postgresql":
        return f"CAST(EXTRACT(EPOCH FROM {end} - {begin}) * 1000000 AS BIGINT)"
    # SQLite keeps datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff': whole seconds and microseconds
    # apart, since julianday() rounds to the millisecond.
    return (
        f"(CAST(strftime('%s', {end}) AS INTEGER) - CAST(strftime('%s', {begin}) AS INTEGER))"
        f" * 1000000 + (CAST(substr({end}, 21) AS INTEGER) - CAST(substr({begin}, 21) AS INTEGER))"
    )


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("queue_us", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("run_us", sa.BigInteger(), nullable=True))
    op.execute(
        f"UPDATE jobs SET queue_us = {_microseconds('created_at', 'started_at')}, "
        f"run_us = {_microseconds('started_at', 'finished_at')} WHERE started_at IS NOT NULL"
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index("ix_jobs_stats", STATS_COLUMNS, unique=False)
        batch_op.create_index(
            "ix_jobs_retried_created_at",
            ["created_at"],
            unique=False,
            sqlite_where=RETRIED,
            postgresql_where=RETRIED,
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_jobs_retried_created_at", sqlite_where=RETRIED, postgresql_where=RETRIED
        )
        batch_op.drop_index("ix_jobs_stats")
        batch_op.drop_column("run_us")
        batch_op.drop_column("queue_us")
