"""crash classification columns and the job_logs table

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
BLAMES = ("TASKOTRON", "TASK", "THIRD_PARTY", "UNKNOWN")
STATES = ("SCHEDULED", "RUNNING", "FINISHED", "CRASHED", "CANCELLED")
OLD_STATS = [
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
# Statistics count crashes by who classified them and the rules' disagreements, from the index.
NEW_STATS = [*OLD_STATS, "classified_by", "rules_cause"]


def _enum(values: tuple[str, ...], name: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=16)


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("classified_by", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("reported_blame", _enum(BLAMES, "job_reported_blame"), nullable=True)
        )
        batch_op.add_column(sa.Column("reported_cause", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("rule_id", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("rules_version", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("evidence", JSON, nullable=True))
        batch_op.add_column(
            sa.Column("rules_blame", _enum(BLAMES, "job_rules_blame"), nullable=True)
        )
        batch_op.add_column(sa.Column("rules_cause", sa.String(length=100), nullable=True))
        batch_op.create_index("ix_jobs_rule_id_created_at", ["rule_id", "created_at"], unique=False)
        batch_op.drop_index("ix_jobs_stats")
        batch_op.create_index("ix_jobs_stats", NEW_STATS, unique=False)

    op.create_table(
        "job_logs",
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("original_bytes", sa.BigInteger(), nullable=False),
        sa.Column("state", _enum(STATES, "job_log_state"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_job_logs_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_job_logs")),
    )


def downgrade() -> None:
    op.drop_table("job_logs")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_stats")
        batch_op.create_index("ix_jobs_stats", OLD_STATS, unique=False)
        batch_op.drop_index("ix_jobs_rule_id_created_at")
        # SQLite's batch mode would copy these into the new table, naming dropped columns.
        batch_op.drop_constraint(op.f("ck_jobs_job_reported_blame"), type_="check")
        batch_op.drop_constraint(op.f("ck_jobs_job_rules_blame"), type_="check")
        for column in (
            "rules_cause",
            "rules_blame",
            "evidence",
            "rules_version",
            "rule_id",
            "reported_cause",
            "reported_blame",
            "classified_by",
        ):
            batch_op.drop_column(column)
