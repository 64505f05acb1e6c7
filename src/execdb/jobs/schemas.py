"""What the API takes and gives for jobs; separate from the tables on purpose."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any, Self, cast
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    model_validator,
)
from typing_extensions import TypedDict

from execdb.causes.catalogue import CODE_MAX_LENGTH, is_valid_code
from execdb.jobs.search import parse_time
from execdb.jobs.states import misplaced_fields
from execdb.jobs.text import is_unicode, storable_json, storable_text
from execdb.vocabulary import Blame, Outcome, State

# One line of text that shows as it is, no surrounding blanks: names that people type and
# search for. Refused: control characters (Unicode category Cc, U+0085 included), line and
# paragraph separators (U+2028, U+2029), and the bidirectional controls that reorder what
# follows them on screen (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069). Written
# with escapes that Python, Rust (pydantic) and ECMAScript (the OpenAPI document) all read.
_UNSHOWABLE = r"\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_NAME_PATTERN = rf"^[^\s{_UNSHOWABLE}](?:[^{_UNSHOWABLE}]*[^\s{_UNSHOWABLE}])?$"


def _unicode(value: str) -> str:
    if not is_unicode(value):
        raise ValueError("not valid Unicode text (it holds a lone surrogate)")
    return value


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


def _cause_code(value: object) -> object:
    if isinstance(value, str) and not is_valid_code(value):
        raise ValueError(
            "a cause is a lower-case code 'family.name' of letters, digits and '_' "
            f"(at most {CODE_MAX_LENGTH} characters), such as 'koji.timeout'"
        )
    return value


TaskName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=255, pattern=_NAME_PATTERN),
    AfterValidator(_unicode),
]
ItemName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=1024, pattern=_NAME_PATTERN),
    AfterValidator(_unicode),
]
ItemType = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=_NAME_PATTERN),
    AfterValidator(_unicode),
]
Arch = Annotated[
    str,
    StringConstraints(min_length=1, max_length=32, pattern=_NAME_PATTERN),
    AfterValidator(_unicode),
]
MsgId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=255, pattern=_NAME_PATTERN),
    AfterValidator(_unicode),
]
StateIn = Annotated[State, BeforeValidator(_upper)]
BlameIn = Annotated[Blame, BeforeValidator(_upper)]
CauseCode = Annotated[str, BeforeValidator(_cause_code)]
JSONObject = Annotated[dict[str, Any], AfterValidator(storable_json)]
Text = Annotated[str, AfterValidator(storable_text)]


class JobCreate(BaseModel):
    """A new job, as the trigger knows it."""

    model_config = ConfigDict(extra="forbid")

    task: TaskName
    item: ItemName
    item_type: ItemType
    arch: Arch | None = None
    msg_id: MsgId | None = Field(
        default=None,
        description="The bus message that caused the job. With it, posting the same "
        "(msg_id, task, item, item_type, arch) again returns the existing job.",
    )
    trigger_data: JSONObject = Field(
        default_factory=dict,
        description="Anything the trigger needs to schedule the job again; at most 64 KiB as "
        "compact JSON (the trigger_data_max_bytes setting), else 413.",
    )


class JobReport(BaseModel):
    """A state switch sent by an executor (or an admin)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"state": "RUNNING", "executor": {"name": "buildbot", "build": 42}},
                {"state": "FINISHED"},
                {
                    "state": "CRASHED",
                    "blame": "THIRD_PARTY",
                    "cause": "koji.timeout",
                    "details": "koji did not answer in 300 s",
                },
                {"state": "CANCELLED", "details": "superseded by a newer build"},
            ]
        },
    )

    state: StateIn
    executor: JSONObject | None = Field(
        default=None,
        description="Only with RUNNING: who runs the job (name, builder, build, worker, log "
        "URL); at most 16 KiB as compact JSON (the executor_max_bytes setting), else 413.",
    )
    blame: BlameIn | None = Field(
        default=None,
        description="Only with CRASHED. Missing or null: the cause's default blame, else UNKNOWN.",
    )
    cause: CauseCode | None = Field(default=None, description="Only with CRASHED.")
    details: Text | None = Field(
        default=None,
        description="Only with FINISHED, CRASHED, CANCELLED. Free text; long text is shortened.",
    )
    log: Text | None = Field(
        default=None,
        description="Only with FINISHED or CRASHED: the tail of the run's output. ExecDB keeps "
        "its last log_max_bytes (256 KiB), cut on a line boundary, and classifies a crash "
        "from it; of FINISHED reports, it keeps 1 in finished_log_sample (10).",
    )

    @model_validator(mode="after")
    def _fields_fit_state(self) -> Self:
        misplaced = misplaced_fields(self)
        if misplaced:
            raise ValueError(misplaced[0])
        return self


def links(base_url: str, job_uuid: object) -> tuple[str, str]:
    """A job's `href` in the API and its web `page`."""
    return f"{base_url}/api/v1/jobs/{job_uuid}", f"{base_url}/jobs/{job_uuid}"


class Evidence(TypedDict):
    line: int
    text: str


class JobPublic(BaseModel):
    uuid: UUID
    href: str = Field(description="This job in the API.")
    page: str = Field(description="This job's web page.")
    state: State
    task: str
    item: str
    item_type: str
    arch: str | None
    msg_id: str | None
    trigger_data: dict[str, Any]
    executor: dict[str, Any] | None
    blame: Blame | None
    cause: str | None
    details: str | None
    attempt: int
    rescheduled_from: UUID | None
    rescheduled_as: UUID | None
    retry_at: datetime | None = Field(
        description="When ExecDB will run this crashed job again (its retry policy); null if not."
    )
    dispatch_state: str | None = Field(
        description="For a rescheduled job: pending, sent or failed (see dispatch_error); null "
        "when ExecDB does not start jobs itself."
    )
    dispatch_error: str | None
    heartbeat_at: datetime | None = Field(description="The executor's last heartbeat.")
    classified_by: str | None = Field(
        description="Who gave the crash its blame and cause: reporter (the report named a "
        "cause), rules (ExecDB's log classification), person (classified by hand, never "
        "overwritten by the rules), or null (nobody: no cause, or a symptom "
        "such as status_file.missing that the rules could not refine)."
    )
    reported_blame: Blame | None = Field(description="The blame the CRASHED report sent.")
    reported_cause: str | None = Field(description="The cause the CRASHED report sent.")
    rule_id: str | None = Field(description="The classification rule that fired on the log.")
    rules_version: str | None = Field(
        description="The version of the rules that read the log (null: no log classified)."
    )
    evidence: list[Evidence] | None = Field(
        description="The log lines the rule fired on; `line` counts from 1 in the kept log."
    )
    rules_blame: Blame | None = Field(
        description="The rules' blame, where it disagrees with the reported cause (which wins)."
    )
    rules_cause: str | None = Field(
        description="The rules' cause, where it disagrees with the reported cause (which wins)."
    )
    signature: str | None = Field(
        description="What went wrong, for grouping: a hash of signature_text (search with "
        "`signature=`)."
    )
    signature_text: str | None = Field(
        description="The crash's key error line with its variable parts masked."
    )
    signature_line: int | None = Field(
        description="Where that line is in the kept log (null: from the details)."
    )
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[str, Any], base_url: str, **extra: Any) -> Self:
        # Rows come from our own tables, already typed: validating them again would be the
        # most expensive step of a read.
        href, page = links(base_url, row["uuid"])
        job = cls.model_construct(
            href=href,
            page=page,
            **{name: row[name] for name in _JOB_COLUMNS},
            **extra,
        )
        return cast(Self, job)


_JOB_COLUMNS = tuple(name for name in JobPublic.model_fields if name not in {"href", "page"})


class JobReported(JobPublic):
    warnings: list[str] = Field(
        default_factory=list,
        description="What ExecDB changed or could not check in the report (unknown cause, "
        "shortened details); the report was accepted all the same.",
    )


class JobFound(JobPublic):
    match: str | None = Field(
        default=None,
        description="With q=: the line of the crash's details or kept log that holds a word "
        "of the query (cut to 240 characters around it).",
    )


class JobList(BaseModel):
    data: list[JobFound]
    prev: str | None = Field(description="The newer page, or null on the first one.")
    next: str | None = Field(description="The older page, or null on the last one.")


class EventPublic(BaseModel):
    id: int
    at: datetime
    actor: str = Field(description="The name of the token that sent the report, or 'execdb'.")
    by_system: bool = Field(description="Whether ExecDB itself made this report (watchdog ...).")
    from_state: State | None
    to_state: State
    outcome: Outcome
    payload: dict[str, Any]
    message: str | None


class EventList(BaseModel):
    data: list[EventPublic]
    prev: str | None
    next: str | None


def _moment(end: bool) -> Callable[[object], object]:
    def parse(value: object) -> object:
        if value is None or isinstance(value, datetime):
            return value
        if not isinstance(value, str):
            raise ValueError("an ISO 8601 date or time, as a string")
        return parse_time(value, end=end)

    return parse


class ReclassifyOptions(BaseModel):
    """The body of POST /api/v1/admin/reclassify."""

    model_config = ConfigDict(extra="forbid")

    since: Annotated[datetime | None, BeforeValidator(_moment(end=False))] = Field(
        default=None,
        description="Only crashes created at or after this time (ISO 8601, UTC unless a zone "
        "is given; a bare date is the start of that day).",
    )
    until: Annotated[datetime | None, BeforeValidator(_moment(end=True))] = Field(
        default=None,
        description="Only crashes created at or before this time (a bare date: that whole day).",
    )
    dry_run: StrictBool = Field(default=False, description="List the changes, write nothing.")
    limit: int = Field(
        default=1000,
        ge=1,
        le=1000,
        description="At most this many crashes examined (eligible, or without a signature).",
    )
    after: UUID | None = Field(
        default=None, description="Go on after this job: the `next` of an earlier answer."
    )

    @model_validator(mode="after")
    def _in_order(self) -> Self:
        if self.since is not None and self.until is not None and self.until < self.since:
            raise ValueError("until: before since")
        return self


class AnswerPublic(BaseModel):
    blame: Blame | None
    cause: str | None
    rule_id: str | None = Field(description="The rule that gave the answer (null: none).")
    classified_by: str | None = Field(description="rules, or null (nobody).")


class Reclassified(BaseModel):
    uuid: UUID
    href: str
    old: AnswerPublic
    new: AnswerPublic
    retry_withdrawn: str | None = Field(
        description="Why the job's pending retry was withdrawn (in a dry run: would be), by the "
        "retry policy; null: no retry was withdrawn."
    )


class ReclassifyResult(BaseModel):
    dry_run: bool
    rules_version: str = Field(description="The version of the rules that were run.")
    examined: int = Field(
        description="Crashes looked at: eligible ones, and those stored without a signature."
    )
    changed: int = Field(description="Of them, given a new blame, cause or rule (listed).")
    unchanged: int = Field(
        description="Of them, answered the same by the current rules (or not theirs to decide)."
    )
    skipped: int = Field(
        description="Of them, changed meanwhile (reported, or no longer eligible) and left alone."
    )
    signed: int = Field(
        description="Of them, given the signature they were stored without (in a dry run: "
        "would be)."
    )
    data: list[Reclassified]
    next: UUID | None = Field(
        description="The last job examined when `limit` stopped the run: send it as `after` to "
        "go on. Null when every eligible crash was examined."
    )


NOTE_MAX_CHARS = 2000


class ClassificationIn(BaseModel):
    """A person's classification of a crash (PUT /api/v1/jobs/<uuid>/classification)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"blame": "THIRD_PARTY", "cause": "koji.timeout", "note": "koji was down"},
            ]
        },
    )

    blame: BlameIn | None = Field(
        default=None, description="Missing or null: the cause's default blame, else UNKNOWN."
    )
    cause: CauseCode = Field(
        description="A cause code; one not in the catalogue is kept, with a warning."
    )
    note: Annotated[Text, StringConstraints(max_length=NOTE_MAX_CHARS)] | None = Field(
        default=None, description=f"Why, for the history; at most {NOTE_MAX_CHARS} characters."
    )


class Classified(JobPublic):
    retry: str = Field(description="What the classification did to the job's retry.")
    warnings: list[str] = Field(default_factory=list)
