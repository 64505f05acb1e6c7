"""A new job's row is built from the table itself, so a new column cannot be forgotten."""

from __future__ import annotations

import pytest

from execdb.db import utcnow
from execdb.jobs.models import Job
from execdb.jobs.store import new_job
from execdb.vocabulary import State


def test_a_new_job_sets_every_column_but_its_id() -> None:
    row = new_job(utcnow(), task="t", item="i", item_type="koji_build")
    assert set(row) == {c.key for c in Job.__table__.c} - {"id"}
    assert row["state"] == State.SCHEDULED
    assert (row["attempt"], row["state_by_system"], row["retry_at"]) == (1, False, None)


def test_a_new_job_takes_only_columns_of_the_table() -> None:
    with pytest.raises(ValueError, match="not columns of jobs: colour"):
        new_job(utcnow(), task="t", colour="blue")
