"""sign-in sessions, crash signatures, and the 'classified' outcome of the history

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
OLD_OUTCOMES = ("accepted", "replaced", "repeated", "refused")
NEW_OUTCOMES = (*OLD_OUTCOMES, "classified")
CRASHES = ["created_at", "signature", "blame", "cause", "classified_by", "task", "arch"]


def _outcomes(values: tuple[str, ...]) -> str:
    return "outcome IN ({})".format(", ".join(f"'{v}'" for v in values))


def _set_outcomes(values: tuple[str, ...]) -> None:
    with op.batch_alter_table("job_events", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_job_events_event_outcome"), type_="check")
        batch_op.create_check_constraint("event_outcome", _outcomes(values))


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id", BigId, nullable=False),
        sa.Column("token_id", BigId, nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["token_id"],
            ["api_tokens.id"],
            name=op.f("fk_web_sessions_token_id_api_tokens"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sessions")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_web_sessions_secret_hash")),
    )
    op.create_index("ix_web_sessions_token_id", "web_sessions", ["token_id"], unique=False)
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("signature", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("signature_text", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("signature_line", sa.Integer(), nullable=True))
        batch_op.create_index(
            "ix_jobs_signature_created_at", ["signature", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_jobs_crashes",
            CRASHES,
            unique=False,
            sqlite_where=sa.text("state = 'CRASHED'"),
            postgresql_where=sa.text("state = 'CRASHED'"),
        )
    _set_outcomes(NEW_OUTCOMES)


def downgrade() -> None:
    op.execute("DELETE FROM job_events WHERE outcome = 'classified'")
    _set_outcomes(OLD_OUTCOMES)
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_crashes")
        batch_op.drop_index("ix_jobs_signature_created_at")
        for column in ("signature_line", "signature_text", "signature"):
            batch_op.drop_column(column)
    op.drop_index("ix_web_sessions_token_id", table_name="web_sessions")
    op.drop_table("web_sessions")
