"""The hot statements' SQL for PostgreSQL's own protocol (execdb.pipelined sends it)."""

from __future__ import annotations

from sqlalchemy import bindparam, literal_column, select, update
from sqlalchemy.dialects import postgresql

from execdb.jobs.models import Job
from execdb.prepared import Prepared, _numbered


def test_named_placeholders_become_numbered_ones_and_a_repeated_name_keeps_its_number() -> None:
    sql = "SELECT %(a)s, %(b)s WHERE x = %(a)s AND y LIKE 'z%%'"
    assert _numbered(sql, ["a", "b"]) == "SELECT $1, $2 WHERE x = $1 AND y LIKE 'z%'"


def test_a_compiled_statement_numbers_its_binds_in_the_order_its_values_are_given() -> None:
    statement = Prepared(
        update(Job)
        .where(Job.id == bindparam("job_id"))
        .where(literal_column("'100%'") != Job.task),
        ["state", "updated_at"],
    )
    compiled = statement._for(postgresql.psycopg.dialect())
    names = [name for name, _ in compiled.binds]
    for number, name in enumerate(names, 1):
        assert compiled.sql.count(f"%({name})s") == compiled.numbered.count(f"${number}") >= 1
    assert "%(" not in compiled.numbered
    assert "'100%'" in compiled.numbered


def test_a_select_keeps_its_columns_in_order() -> None:
    compiled = Prepared(select(Job.id, Job.uuid).where(Job.uuid == bindparam("uuid")))._for(
        postgresql.psycopg.dialect()
    )
    assert [key for key, _ in compiled.columns] == ["id", "uuid"]
    assert compiled.numbered.endswith("= $1::UUID")
