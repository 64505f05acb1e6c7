"""saved rules (rule_versions) and full-text search over crash details and kept logs

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

The full-text index is kept by triggers, so that every way a crash or a log is stored keeps
it current: on SQLite an FTS5 table (`job_fts`, rowid = the job's id), on PostgreSQL a table
of tsvectors with a GIN index. Neither is in the models: they are each backend's own
(execdb.jobs.fulltext reads them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

SQLITE_UP = [
    "CREATE VIRTUAL TABLE job_fts USING fts5(details, log, tokenize = 'unicode61')",
    # A crash's details, with its log if there is one already (the report path writes the job
    # before its log) ...
    """CREATE TRIGGER job_fts_job AFTER UPDATE OF state, details ON jobs
       WHEN NEW.state = 'CRASHED'
       BEGIN
         INSERT OR REPLACE INTO job_fts (rowid, details, log)
         VALUES (NEW.id, NEW.details, (SELECT text FROM job_logs WHERE job_id = NEW.id));
       END""",
    # ... and any kept log (crashes and the sampled passing runs), with a crash's details.
    """CREATE TRIGGER job_fts_log AFTER INSERT ON job_logs
       BEGIN
         INSERT OR REPLACE INTO job_fts (rowid, details, log)
         VALUES (NEW.job_id,
                 (SELECT details FROM jobs WHERE id = NEW.job_id AND state = 'CRASHED'),
                 NEW.text);
       END""",
    # Row ids are reused on SQLite: a deleted job's text must not be found as a new job's.
    """CREATE TRIGGER job_fts_gone AFTER DELETE ON jobs
       BEGIN
         DELETE FROM job_fts WHERE rowid = OLD.id;
       END""",
    """INSERT INTO job_fts (rowid, details, log)
       SELECT jobs.id, CASE WHEN jobs.state = 'CRASHED' THEN jobs.details END, job_logs.text
       FROM jobs LEFT JOIN job_logs ON job_logs.job_id = jobs.id
       WHERE jobs.state = 'CRASHED' OR job_logs.job_id IS NOT NULL""",
]
SQLITE_DOWN = [
    "DROP TRIGGER job_fts_gone",
    "DROP TRIGGER job_fts_log",
    "DROP TRIGGER job_fts_job",
    "DROP TABLE job_fts",
]

# Words split as FTS5 splits them (PostgreSQL's parser alone keeps host names and paths
# whole, so 'fedoraproject' would not find koji.fedoraproject.org). A tsvector holds at most
# 1 MiB; the text indexed is bounded well below what would reach it.
POSTGRES_UP = [
    """CREATE TABLE job_fts (
         job_id BIGINT PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
         document TSVECTOR NOT NULL
       )""",
    "CREATE INDEX ix_job_fts_document ON job_fts USING gin (document)",
    """CREATE FUNCTION job_fts_refresh(job BIGINT) RETURNS void LANGUAGE sql AS $$
         INSERT INTO job_fts (job_id, document)
         SELECT jobs.id, to_tsvector('simple', regexp_replace(left(
                  coalesce(CASE WHEN jobs.state = 'CRASHED' THEN jobs.details END, '')
                  || ' ' || coalesce(job_logs.text, ''), 300000), '[^[:alnum:]]+', ' ', 'g'))
         FROM jobs LEFT JOIN job_logs ON job_logs.job_id = jobs.id
         WHERE jobs.id = job
         ON CONFLICT (job_id) DO UPDATE SET document = EXCLUDED.document
       $$""",
    """CREATE FUNCTION job_fts_job() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF NEW.state = 'CRASHED' THEN PERFORM job_fts_refresh(NEW.id); END IF;
         RETURN NULL;
       END $$""",
    """CREATE FUNCTION job_fts_log() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         PERFORM job_fts_refresh(NEW.job_id);
         RETURN NULL;
       END $$""",
    """CREATE TRIGGER job_fts_job AFTER UPDATE OF state, details ON jobs
       FOR EACH ROW EXECUTE FUNCTION job_fts_job()""",
    """CREATE TRIGGER job_fts_log AFTER INSERT ON job_logs
       FOR EACH ROW EXECUTE FUNCTION job_fts_log()""",
    """SELECT job_fts_refresh(jobs.id) FROM jobs
       LEFT JOIN job_logs ON job_logs.job_id = jobs.id
       WHERE jobs.state = 'CRASHED' OR job_logs.job_id IS NOT NULL""",
]
POSTGRES_DOWN = [
    "DROP TRIGGER job_fts_log ON job_logs",
    "DROP TRIGGER job_fts_job ON jobs",
    "DROP FUNCTION job_fts_log()",
    "DROP FUNCTION job_fts_job()",
    "DROP FUNCTION job_fts_refresh(BIGINT)",
    "DROP TABLE job_fts",
]


def upgrade() -> None:
    op.create_table(
        "rule_versions",
        sa.Column("id", BigId, nullable=False),
        sa.Column("rule_id", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", JSON, nullable=True),
        sa.Column("author", sa.String(length=100), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("bug", sa.String(length=1024), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rule_versions")),
        sa.UniqueConstraint("rule_id", "version", name=op.f("uq_rule_versions_rule_id_version")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_rule_versions_rule_id_id", "rule_versions", ["rule_id", "id"])
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in SQLITE_UP if sqlite else POSTGRES_UP:
        op.execute(statement)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in SQLITE_DOWN if sqlite else POSTGRES_DOWN:
        op.execute(statement)
    op.drop_index("ix_rule_versions_rule_id_id", table_name="rule_versions")
    op.drop_table("rule_versions")
