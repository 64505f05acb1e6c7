"""The command line's one kind of error, and its exit codes (README: "Exit codes").

0 done, 1 other error, 2 usage error, 3 refused by the server, 4 unreachable (or 5xx).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from execdb.client import ApiError

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_REFUSED, EXIT_UNREACHABLE = 0, 1, 2, 3, 4


class CommandError(Exception):
    """A failure to report in one line, without a traceback, ending the command with `code`."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


def refused(exc: ApiError) -> CommandError:
    """The server's refusal as the command's error: a 5xx means "try again later"."""
    code = EXIT_UNREACHABLE if exc.status >= 500 else EXIT_REFUSED
    return CommandError(f"refused ({exc.status}): {exc.message}", code)
