"""What the server's log shows of a request's URL: never the value of a secret parameter.

ExecDB reads tokens only from the Authorization header, but people paste them into URLs
(`?token=...`), and uvicorn writes every request's path and query to its access log (and, at
log level trace, each request's ASGI scope). A filter on those loggers writes the values of
query parameters with secret-sounding names as REDACTED before any handler sees the record.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote_plus

SECRET_PARAMETERS = frozenset(
    {"token", "access_token", "api_key", "apikey", "key", "secret", "password", "passwd"}
)
REDACTED = "REDACTED"
LOGGERS = ("uvicorn.access", "uvicorn.asgi")


def redact_query(query: str) -> str:
    """`query` (the part after '?') with the values of secret parameters replaced."""
    parts = query.split("&")
    for i, part in enumerate(parts):
        name, equals, _ = part.partition("=")
        if equals and unquote_plus(name).strip().lower() in SECRET_PARAMETERS:
            parts[i] = f"{name}={REDACTED}"
    return "&".join(parts)


def _redact(arg: Any) -> Any:
    if isinstance(arg, str) and "?" in arg:  # the access log's "path?query"
        path, _, query = arg.partition("?")
        return f"{path}?{redact_query(query)}"
    if isinstance(arg, dict) and isinstance(arg.get("query_string"), bytes):  # a traced scope
        query = arg["query_string"].decode("latin-1")
        return {**arg, "query_string": redact_query(query).encode("latin-1")}
    return arg


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_redact(arg) for arg in record.args)
        return True


_FILTER = RedactSecrets()


def install() -> None:
    """Put the filter on uvicorn's request loggers (once, however many apps are made)."""
    for name in LOGGERS:
        logging.getLogger(name).addFilter(_FILTER)
