"""Full-text search over crash details and kept logs (`q=`), and the line that matched.

The index is each backend's own, kept by triggers (migration 0008): SQLite's FTS5 table
`job_fts` (rowid = job id), PostgreSQL's `job_fts` of tsvectors ('simple' configuration:
lower-cased words, no stemming) with a GIN index. Both split text into words at anything
that is not a letter or a digit.

The query is never passed on as query syntax: its words are taken out of it (letters and
digits, as the index splits them) and every one must appear; quotes, operators (AND, OR,
NEAR, `*`, `:`, `&`, `!`) and brackets are only separators. So no query can be an error of
the search engine, nor make it do more than look up a few words.

On PostgreSQL a page of a search is read in two parts (`postgres_page`), because the planner
cannot tell what a match costs: it counts `document @@ query` as one cheap operator, but each
document is a TOASTed tsvector that has to be read (about four pages) and decompressed, some
10 µs. Left to choose, it walked job_fts newest first and tested every document for a word
it expected in a hundred of them and that 4 held: 21,823 documents, 240 ms at 200,000 jobs.
Asking the GIN index instead costs in proportion to the matches, which is cheap for a rare
word and not for a word of every log (110,000 at a million jobs). So the search first tests
the newest documents only (a bounded walk: `walk_rows` of them), which fills the page when
the word is common; and only when it has not, asks the index for the matches beyond them,
which are then few unless the word has become rare lately.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import ColumnElement, bindparam, column, func, literal_column, select, table
from sqlalchemy.engine import Connection

from execdb.jobs.bounded import BoundedSelect, Row
from execdb.jobs.models import Job, JobLog
from execdb.paging import Cursor, Page

Q_MAX_CHARS = 200
TERMS_MAX = 8
# The line shown for a match is cut to this many characters around the word.
LINE_MAX_CHARS = 240
# How many of the newest documents PostgreSQL tests before it asks the index (`walk_rows`).
WALK_MIN = 500
WALK_MAX = 5000
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


def walk_rows(limit: int) -> int:
    """How many of the newest documents a PostgreSQL search tests one by one before it asks
    the index: enough to fill a page of `limit` with a word in one document of ten, and
    bounded (testing one costs about 10 µs)."""
    return min(WALK_MAX, max(WALK_MIN, 10 * (limit + 1)))


def postgres_page(
    conn: Connection,
    jobs: BoundedSelect,
    where: Sequence[ColumnElement[bool]],
    words: Sequence[str],
    cursor: Cursor | None,
    limit: int,
    *,
    max_bytes: int,
) -> Page[Row]:
    """A page of the jobs by `where` whose crash details or kept log hold every word, newest
    first, on PostgreSQL: from the newest documents tested one by one, then, if the page is
    not full, from the index's matches beyond them (see the module docstring)."""
    query = func.plainto_tsquery(
        literal_column("'simple'::regconfig"), bindparam("fts_q", " ".join(words), unique=True)
    )
    # Both parts go the cursor's way: newest first, or up from a `prev` link's cursor.
    upward = cursor is not None and cursor.direction == "before"
    key = _FTS.c.job_id
    bound = [] if cursor is None else [key > cursor.key if upward else key < cursor.key]
    walk = walk_rows(limit)
    # The newest documents of the jobs that the other filters keep. The LIMIT is a fence: no
    # plan tests more documents than these, and the page is read in their order, so that a
    # common word stops the walk after a page's worth.
    newest = select(key).join(Job, Job.id == key).where(*where, *bound)
    newest = newest.order_by(key.asc() if upward else key.desc()).limit(walk)
    walked = newest.add_columns(_FTS.c.document).subquery("walked")
    tested = [Job.id == walked.c.job_id, walked.c.document.op("@@")(query)]
    rows = jobs.rows(conn, [*where, *tested], cursor, limit, descending=True, key=walked.c.job_id)
    if len(rows) > limit:
        return jobs.finish(conn, rows, cursor, limit, max_bytes=max_bytes)
    ids = newest.subquery()
    counted, edge = conn.execute(
        select(func.count(), func.max(ids.c.job_id) if upward else func.min(ids.c.job_id))
    ).one()
    if counted == walk:  # the walk stopped short of the last document
        beyond = key > edge if upward else key < edge
        # Sorted by a copy of the id, which no index holds: the index of the words gives the
        # matches (it or a scan that tests every document, which the setting rules out; it
        # ends with the statement), and the page is read in their order.
        rank = (key + 0).label("rank")
        found = select(key, rank).where(_FTS.c.document.op("@@")(query), beyond)
        matches = found.order_by(rank.asc() if upward else rank.desc()).subquery("matches")
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        rows += jobs.rows(
            conn,
            [*where, Job.id == matches.c.job_id],
            cursor,
            limit - len(rows),
            descending=True,
            key=matches.c.rank,
        )
        conn.exec_driver_sql("SET LOCAL enable_seqscan TO DEFAULT")
    return jobs.finish(conn, rows, cursor, limit, max_bytes=max_bytes)


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
