"""The status file: the test runner's last word on a run, turned into ExecDB's report.

The runner writes a small JSON document at the end of a run (docs/status-file.md):

    {"version": 1, "status": "OK"}
    {"version": 1, "status": "FAULT", "blame": "THIRD_PARTY", "cause": "koji.timeout",
     "details": "koji did not answer in 300 s"}

`outcome(path, exit_code)` never fails: whatever is (or is not) at `path`, it gives the report
to send, so that no run's outcome is lost between the runner and ExecDB. A missing file is
CRASHED with cause status_file.missing; an unreadable or invalid one is CRASHED with cause
status_file.invalid, its details holding the error and what the file said (its fields as
written, or the start of a file that is not a JSON object). Keys the format does not know are
kept, in the details. A status OK with a non-zero exit code is FINISHED (the runner's own
verdict wins: it wrote OK after the task ran) with the exit code in the details.

Only a regular file is read (a FIFO or a device never is, so nothing hangs), and the report
is one the server takes: a cause must be a well-formed code (the server's rule, copied in
execdb.client.text), and details are cut to the server's 64 KiB, head and tail kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from execdb.client.files import read_head
from execdb.client.text import CODE_MAX_LENGTH, fit, is_valid_code

VERSION = 1
MAX_BYTES = 1024 * 1024
BLAMES = ("TASKOTRON", "TASK", "THIRD_PARTY", "UNKNOWN")
KNOWN = frozenset({"version", "status", "blame", "cause", "details"})
SHOWN = 2048  # bytes of a bad file quoted in the details


class StatusFileError(ValueError):
    """The file is not a status file; the message says why.

    `doc` is the file's JSON object when it was one, so its fields can be passed on as written.
    """

    def __init__(self, message: str, doc: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.doc = doc


@dataclass(frozen=True, slots=True)
class Report:
    """The report to send to ExecDB: the body of PATCH /api/v1/jobs/<uuid>."""

    state: str
    blame: str | None = None
    cause: str | None = None
    details: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        """The body to send: what the server takes, within its limits (see the module doc)."""
        fields = {"state": self.state, "blame": self.blame, "cause": self.cause}
        details = self.details
        if self.extra:
            kept = _json(self.extra)
            details = f"{details}\n\nmore from the status file: {kept}" if details else kept
        fields["details"] = details
        return fit({k: v for k, v in fields.items() if v is not None})[0]


def parse(data: bytes) -> Report:
    """The report a status file's bytes ask for. Raises StatusFileError naming the problem."""
    if len(data) > MAX_BYTES:
        raise StatusFileError(f"larger than {MAX_BYTES} bytes ({len(data)})")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StatusFileError(f"not UTF-8 text: {exc}") from None
    try:
        doc = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise StatusFileError("JSON nested too deeply") from None
    except ValueError as exc:
        raise StatusFileError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise StatusFileError(f"expected a JSON object, got {type(doc).__name__}")
    try:
        return _report(doc)
    except StatusFileError as exc:
        raise StatusFileError(str(exc), doc) from None


def _report(doc: dict[str, Any]) -> Report:
    version = doc.get("version")
    if version != VERSION or isinstance(version, bool):
        raise StatusFileError(f"'version' must be {VERSION}, got {version!r}")
    extra = {k: v for k, v in doc.items() if k not in KNOWN}
    status = doc.get("status")
    if status == "OK":
        for key in ("blame", "cause"):
            if doc.get(key) is not None:
                raise StatusFileError(f"'{key}' is only for status FAULT")
        return Report("FINISHED", details=_text(doc, "details"), extra=extra)
    if status != "FAULT":
        raise StatusFileError(f'\'status\' must be "OK" or "FAULT", got {status!r}')
    blame = doc.get("blame")
    if blame is not None and (not isinstance(blame, str) or blame.upper() not in BLAMES):
        raise StatusFileError(f"'blame' must be one of {', '.join(BLAMES)}, got {blame!r}")
    cause = _text(doc, "cause")
    if cause is not None and not is_valid_code(cause):
        raise StatusFileError(
            "'cause' must be a lower-case code 'family.name' of letters, digits and '_' "
            f"(at most {CODE_MAX_LENGTH} characters) such as 'koji.timeout', got {cause!r}"
        )
    return Report(
        "CRASHED",
        blame=blame.upper() if blame else None,
        cause=cause,
        details=_text(doc, "details"),
        extra=extra,
    )


def outcome(path: Path, exit_code: int | None = None) -> Report:
    """The report for the status file at `path`; never raises (see the module docstring)."""
    code = f"exit code {exit_code}" if exit_code is not None else "exit code unknown"
    try:
        data = read_head(path, MAX_BYTES + 1)
    except FileNotFoundError:
        return Report(
            "CRASHED",
            cause="status_file.missing",
            details=f"the runner wrote no status file at {path} ({code})",
        )
    except OSError as exc:
        return Report(
            "CRASHED",
            cause="status_file.invalid",
            details=f"cannot read the status file {path} ({code}): {exc.strerror or exc}",
        )
    try:
        report = parse(data)
    except StatusFileError as exc:
        return Report(
            "CRASHED",
            cause="status_file.invalid",
            details=f"the status file {path} is invalid ({code}): {exc}\n\n{_quoted(exc, data)}",
        )
    if report.state == "FINISHED" and exit_code:
        note = f"the runner exited with code {exit_code} after writing status OK"
        details = f"{report.details}\n\n{note}" if report.details else note
        return Report("FINISHED", details=details, extra=report.extra)
    return report


def _quoted(error: StatusFileError, data: bytes) -> str:
    """What the bad file said: its fields as written (details as text), or its first bytes."""
    if error.doc is None:
        return f"it starts with:\n{data[:SHOWN].decode('utf-8', 'replace')}"
    doc = error.doc
    shown = ("version", "status", "blame", "cause")
    lines = [f"{key}: {_json(doc[key])}" for key in shown if key in doc]
    details = doc.get("details")
    if details is not None:
        lines.append(f"details:\n{details if isinstance(details, str) else _json(details)}")
    extra = {k: v for k, v in doc.items() if k not in KNOWN}
    if extra:
        lines.append(f"more from the status file: {_json(extra)}")
    return "the runner wrote:\n" + "\n".join(lines)


def _text(doc: dict[str, Any], key: str) -> str | None:
    value = doc.get(key)
    if value is not None and not isinstance(value, str):
        raise StatusFileError(f"'{key}' must be a string, got {type(value).__name__}")
    return value


def _json(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    except (RecursionError, ValueError):
        return "(not shown: nested too deeply)"


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")
