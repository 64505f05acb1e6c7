"""Domain errors. Each one knows the HTTP status it is answered with.

ExecDBError
├── InvalidInput          400  a request that cannot be acted on, naming what was wrong
├── Unauthenticated       401  no token, or a bad or revoked one
├── Forbidden             403  a valid token without the scope
├── NotFound              404
│   └── JobNotFound
├── TransitionRefused     409  an illegal state switch (already recorded in the history)
├── Conflict              409  a thing that exists already, or changed meanwhile
├── PayloadTooLarge       413
├── Unprocessable         422  well-formed input that cannot be used (a rule RE2 refuses)
└── DatabaseNotReady      503  unreachable, or its schema is not the one this code expects
"""

from __future__ import annotations

from typing import Any


class ExecDBError(Exception):
    status_code = 500

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class InvalidInput(ExecDBError):
    status_code = 400


class Unauthenticated(ExecDBError):
    status_code = 401


class Forbidden(ExecDBError):
    status_code = 403


class NotFound(ExecDBError):
    status_code = 404


class JobNotFound(NotFound):
    def __init__(self, uuid: object) -> None:
        super().__init__(f"no job with uuid {uuid}")


class TransitionRefused(ExecDBError):
    status_code = 409


class Conflict(ExecDBError):
    status_code = 409


class PayloadTooLarge(ExecDBError):
    status_code = 413


class Unprocessable(ExecDBError):
    status_code = 422


class DatabaseNotReady(ExecDBError):
    status_code = 503
