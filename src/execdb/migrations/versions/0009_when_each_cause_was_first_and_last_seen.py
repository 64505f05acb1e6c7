"""an index of crashes by cause and time: when each cause was first and last seen

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

The dashboard shows, for each cause it lists, its first and last crash over every stored
job: a min() and a max() of created_at among one cause's crashes, each a seek of this index.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_jobs_crashes_cause_created_at",
            ["cause", "created_at"],
            unique=False,
            sqlite_where=sa.text("state = 'CRASHED'"),
            postgresql_where=sa.text("state = 'CRASHED'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_crashes_cause_created_at")
