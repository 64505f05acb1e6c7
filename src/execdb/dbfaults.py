"""What a database error says about the request that met it: retry it, change it, or neither.

A 503 tells a client that the database is out of reach and that retrying is safe: the client
library retries it for a minute and the log records an outage. So only failures to reach the
database, or of its resources, are `UNAVAILABLE`. What the request itself made the database
refuse (an expression too deep, a pattern too complex, a value out of range) is `INVALID`, a
400 that names the problem: retrying it would fail the same way. Anything else is a fault of
ExecDB or of its deployment (a missing table, a constraint), `UNEXPECTED`: a 500, logged.

SQLAlchemy wraps the driver's exception (`.orig`); both drivers raise OperationalError for
some of each kind, so the class alone does not tell them apart. SQLite's error codes and
PostgreSQL's SQLSTATE do.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from enum import Enum

import psycopg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout


class Fault(Enum):
    UNAVAILABLE = 503
    INVALID = 400
    UNEXPECTED = 500


@dataclass(frozen=True, slots=True)
class Classified:
    fault: Fault
    reason: str  # the driver's own words, without the SQL statement


# Primary result codes (the low byte of an extended code): the file cannot be opened, read,
# written or locked, or memory ran out. Nothing about the request; it may work in a moment.
_SQLITE_UNAVAILABLE = {
    5,  # SQLITE_BUSY: database is locked
    6,  # SQLITE_LOCKED
    7,  # SQLITE_NOMEM
    8,  # SQLITE_READONLY: the file or its directory cannot be written
    10,  # SQLITE_IOERR: disk I/O error
    13,  # SQLITE_FULL: database or disk is full
    14,  # SQLITE_CANTOPEN: unable to open database file
    15,  # SQLITE_PROTOCOL
}
_SQLITE_TOOBIG = 18
_SQLITE_ERROR = 1
# SQLITE_ERROR is also what a missing table or a syntax error gives (ExecDB's faults), so the
# limits a request can run into are told by their messages.
_SQLITE_LIMITS = (
    "Expression tree is too large",
    "LIKE or GLOB pattern too complex",
    "too many SQL variables",
    "parser stack overflow",
    "too many terms in compound SELECT",
)

# SQLSTATE classes and codes (PostgreSQL, appendix A).
_PG_UNAVAILABLE_CLASSES = {"08", "53"}  # connection exception, insufficient resources
_PG_UNAVAILABLE = {"57P01", "57P02", "57P03"}  # admin/crash shutdown, cannot connect now
_PG_INVALID_CLASSES = {"22", "42", "54"}  # data exception, syntax or access rule, limits
# Class 42 also holds what a request cannot cause: a schema that is not the code's, or a
# role that lacks a privilege. Those are for an operator to see.
_PG_NOT_THE_REQUEST = {"42P01", "42703", "42501"}


def classify(exc: BaseException) -> Classified:
    if isinstance(exc, PoolTimeout):
        return Classified(Fault.UNAVAILABLE, "no database connection became free in time")
    orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    reason = _reason(orig)
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return Classified(Fault.UNAVAILABLE, reason)
    if isinstance(orig, sqlite3.Error):
        return Classified(_sqlite(orig), reason)
    if isinstance(orig, psycopg.Error):
        return Classified(_postgres(orig), reason)
    return Classified(Fault.UNEXPECTED, reason)


def _sqlite(error: sqlite3.Error) -> Fault:
    code: int | None = getattr(error, "sqlite_errorcode", None)
    if code is None:
        # Raised by ExecDB itself (execdb.db), for a call of a group commit whose transaction
        # SQLite had rolled back, which only a failure of the disk or the memory makes it do.
        lost = isinstance(error, sqlite3.OperationalError)
        return Fault.UNAVAILABLE if lost else Fault.UNEXPECTED
    primary = code & 0xFF
    if primary in _SQLITE_UNAVAILABLE:
        return Fault.UNAVAILABLE
    if primary == _SQLITE_TOOBIG:
        return Fault.INVALID
    if primary == _SQLITE_ERROR and str(error).startswith(_SQLITE_LIMITS):
        return Fault.INVALID
    return Fault.UNEXPECTED


def _postgres(error: psycopg.Error) -> Fault:
    state = error.sqlstate
    if state is None:
        # Failures before the server said anything: refused, reset or closed connections,
        # and every refusal to connect (psycopg gives no SQLSTATE while connecting).
        unreached = isinstance(error, psycopg.OperationalError)
        return Fault.UNAVAILABLE if unreached else Fault.UNEXPECTED
    if state[:2] in _PG_UNAVAILABLE_CLASSES or state in _PG_UNAVAILABLE:
        return Fault.UNAVAILABLE
    if state[:2] in _PG_INVALID_CLASSES and state not in _PG_NOT_THE_REQUEST:
        return Fault.INVALID
    return Fault.UNEXPECTED


def _reason(error: BaseException) -> str:
    if isinstance(error, psycopg.Error) and error.diag.message_primary:
        return error.diag.message_primary
    return str(error).split("\n", 1)[0] or error.__class__.__name__
