"""Alembic environment: always given a connection by execdb.migrations, never a URL."""

from __future__ import annotations

from alembic import context

import execdb.auth.models
import execdb.automation.models
import execdb.jobs.models
import execdb.metrics.models
import execdb.rules.models  # noqa: F401  (registers the tables on the metadata)
from execdb.db import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
