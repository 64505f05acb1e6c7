"""Full-text search over crash details and kept logs (`q=`), and the line that matched.

The index is each backend's own, kept by triggers (migration 0008): SQLite's FTS5 table
`job_fts` (rowid = job id), PostgreSQL's `job_fts` of tsvectors ('simple' configuration:
lower-cased words, no stemming) with a GIN index. Both split text into words at anything
that is not a letter or a digit.

The query is never passed on as query syntax: its words are taken out of it (letters and
digits, as the index splits them) and every one must appear; quotes, operators (AND, OR,
NEAR, `*`, `:`, `&`, `!`) and brackets are only separators. So no query can be an error of
the search engine, nor make it do more than look up a few words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import ColumnElement, bindparam, column, func, literal_column, select, table
from sqlalchemy.engine import Connection

from execdb.jobs.models import Job, JobLog

Q_MAX_CHARS = 200
TERMS_MAX = 8
# The line shown for a match is cut to this many characters around the word.
LINE_MAX_CHARS = 240
# A word is what both indexes keep as one: letters and digits (Unicode), and '_' is not one.
_WORD = re.compile(r"[^\W_]+")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")

_FTS = table("job_fts", column("rowid"), column("job_id"), column("document"))


def terms(q: str) -> list[str]:
    """The words of a query, lower-cased, duplicates dropped; ValueError when there is none
    or the query is not text a person types."""
    if len(q) > Q_MAX_CHARS:
        raise ValueError(f"at most {Q_MAX_CHARS} characters (got {len(q)})")
    if _CONTROL.search(q):
        raise ValueError("holds control characters")
    found = list(dict.fromkeys(w.lower() for w in _WORD.findall(q)))
    if not found:
        raise ValueError(f"{q!r} holds no word to search for (letters or digits)")
    if len(found) > TERMS_MAX:
        raise ValueError(f"at most {TERMS_MAX} words (got {len(found)})")
    return found


def sqlite_join(words: Sequence[str]) -> tuple[list[ColumnElement[bool]], ColumnElement[int]]:
    """On SQLite, the search walks the FTS5 index newest first (by rowid, which FTS5 gives in
    order and can start from a cursor) and looks each job up by its id: the conditions that
    join it to the jobs, and the key to page by. The caller keeps SQLite from seeking the
    jobs' own indexes (`unseekable`), so that the index of the words leads."""
    matching = literal_column("job_fts").op("MATCH")(bindparam("fts_q", _fts5(words), unique=True))
    return [Job.id == _FTS.c.rowid, matching], _FTS.c.rowid


def _fts5(words: Sequence[str]) -> str:
    # Each word a quoted string: FTS5 reads it as that word and nothing else.
    return " ".join('"' + w.replace('"', '""') + '"' for w in words)


def condition(words: Sequence[str], *, sqlite: bool) -> ColumnElement[bool]:
    """Jobs whose crash details or kept log hold every word."""
    if sqlite:
        matching = select(_FTS.c.rowid).where(
            literal_column("job_fts").op("MATCH")(bindparam("fts_q", _fts5(words), unique=True))
        )
    else:
        tsquery = func.plainto_tsquery(
            literal_column("'simple'::regconfig"), bindparam("fts_q", " ".join(words), unique=True)
        )
        matching = select(_FTS.c.job_id).where(_FTS.c.document.op("@@")(tsquery))
    return Job.id.in_(matching.scalar_subquery())


def _line(text: str, words: Sequence[str]) -> str | None:
    """The first line of `text` holding one of the words as a word, cut around it."""
    pattern = re.compile(
        r"(?<![^\W_])(?:" + "|".join(re.escape(w) for w in words) + r")(?![^\W_])", re.I
    )
    found = pattern.search(text)
    if found is None:
        return None
    start = text.rfind("\n", 0, found.start()) + 1
    end = text.find("\n", found.end())
    end = len(text) if end < 0 else end
    if end - start > LINE_MAX_CHARS:
        start = max(start, found.start() - LINE_MAX_CHARS // 3)
        end = min(end, start + LINE_MAX_CHARS)
    return text[start:end].strip()


def matching_lines(
    conn: Connection, rows: Iterable[Mapping[str, object]], words: Sequence[str]
) -> dict[int, str]:
    """For each job of a page, the line that matched: in its details, else its kept log."""
    found: dict[int, str] = {}
    ids = []
    for row in rows:
        details = row.get("details")
        line = _line(details, words) if isinstance(details, str) else None
        if line is not None:
            found[int(str(row["id"]))] = line
        else:
            ids.append(row["id"])
    if ids:
        logs = select(JobLog.job_id, JobLog.text).where(JobLog.job_id.in_(ids))
        for job_id, text in conn.execute(logs):
            line = _line(text, words)
            if line is not None:
                found[job_id] = line
    return found
