"""The messages ExecDB publishes on the Fedora message bus, one class per topic.

Every body carries the job as it is after the change (`job`), who made the change (`agent`,
null when ExecDB itself did), when (`at`) and `seq`, the job's own message counter: 1 for its
creation, one more for every message about it after that, so that a consumer can put one job's
messages in order and see a gap. Messages may arrive twice (the bus is at least once); a
repeated one has the same message id, which consumers use to drop it.

A schema never changes in place: a new version is a new class and topic (`.v2`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from fedora_messaging import message

__all__ = [
    "TOPICS",
    "ExecDBMessage",
    "JobCreatedV1",
    "JobReclassifiedV1",
    "JobStateChangeV1",
    "package_of",
]

SCHEMA_URL = "http://json-schema.org/draft-04/schema#"
STATES = ["SCHEDULED", "RUNNING", "FINISHED", "CRASHED", "CANCELLED"]
BLAMES = ["TASKOTRON", "TASK", "THIRD_PARTY", "UNKNOWN"]

_NULLABLE_STRING = {"type": ["string", "null"]}
_BLAME = {"type": ["string", "null"], "enum": [*BLAMES, None]}

JOB_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "uuid",
        "task",
        "item",
        "item_type",
        "arch",
        "attempt",
        "state",
        "blame",
        "cause",
        "page",
        "href",
    ],
    "properties": {
        "uuid": {"type": "string", "description": "The job's UUID (the ResultsDB group)."},
        "task": {"type": "string"},
        "item": {"type": "string", "description": "What the task ran on, e.g. an NVR."},
        "item_type": {"type": "string", "description": "koji_build, bodhi_update ..."},
        "arch": _NULLABLE_STRING,
        "attempt": {"type": "integer", "minimum": 1},
        "state": {"type": "string", "enum": STATES},
        "blame": _BLAME,
        "cause": _NULLABLE_STRING,
        "page": {"type": "string", "description": "The job's web page."},
        "href": {"type": "string", "description": "The job in ExecDB's API."},
        "rescheduled_from": {
            "type": ["string", "null"],
            "description": "The attempt this one repeats.",
        },
        "packages": {
            "type": "array",
            "items": {"type": "string"},
            "description": "The packages the item is about, where the item's name does not say.",
        },
    },
}


def _body_schema(
    description: str, required: list[str], properties: dict[str, Any]
) -> dict[str, Any]:
    return {
        "$schema": SCHEMA_URL,
        "description": description,
        "type": "object",
        "required": ["job", "seq", "agent", "at", *required],
        "properties": {
            "job": JOB_SCHEMA,
            "seq": {
                "type": "integer",
                "minimum": 1,
                "description": "The job's message counter: 1 at its creation, then one more "
                "for each message about it.",
            },
            "agent": {
                "type": ["string", "null"],
                "description": "The API token's name that made the change; null: ExecDB itself.",
            },
            "at": {"type": "string", "description": "When the change was made (ISO 8601)."},
            **properties,
        },
    }


def package_of(item: str, item_type: str) -> str | None:
    """The package a koji_build's NVR names (`xchat-2.8.8-21.fc40` -> `xchat`), else None."""
    if item_type != "koji_build":
        return None
    parts = item.rsplit("-", 2)
    if len(parts) != 3 or not parts[0]:
        return None
    # A version and a release hold a digit: "not-an-nvr" names no package.
    name, version, release = parts
    digits = all(any(c.isdigit() for c in part) for part in (version, release))
    return name if digits else None


class ExecDBMessage(message.Message):
    """What every ExecDB message has: the job, who changed it, and the job's page."""

    @property
    def app_name(self) -> str:
        return "ExecDB"

    @property
    def job(self) -> dict[str, Any]:
        job: dict[str, Any] = self.body["job"]
        return job

    @property
    def seq(self) -> int:
        return int(self.body["seq"])

    @property
    def agent_name(self) -> str | None:
        agent: str | None = self.body.get("agent")
        return agent

    @property
    def usernames(self) -> list[str]:
        return []

    @property
    def url(self) -> str:
        return str(self.job["page"])

    @property
    def packages(self) -> list[str]:
        job = self.job
        named = package_of(job["item"], job["item_type"])
        given = [p for p in job.get("packages") or [] if isinstance(p, str)]
        return sorted({*given, named} - {None}) if named else sorted(set(given))

    @property
    def _what(self) -> str:
        job = self.job
        arch = f" ({job['arch']})" if job.get("arch") else ""
        return f"{job['task']} on {job['item']}{arch}"

    def __str__(self) -> str:
        job = self.job
        lines = [
            self.summary,
            "",
            f"Job:      {job['uuid']}",
            f"Page:     {job['page']}",
            f"Task:     {job['task']}",
            f"Item:     {job['item']} ({job['item_type']})",
            f"Attempt:  {job['attempt']}",
            f"State:    {job['state']}",
        ]
        if job.get("cause") or job.get("blame"):
            lines.append(f"Blame:    {job.get('blame') or '-'}, cause {job.get('cause') or '-'}")
        lines.append(f"By:       {self.agent_name or 'ExecDB'} at {self.body['at']}")
        return "\n".join(lines) + "\n"


class JobCreatedV1(ExecDBMessage):
    """A job was created: by a trigger for a bus message, or as a new attempt of a crash."""

    topic = "execdb.job.created.v1"
    body_schema = _body_schema(
        "execdb.job.created.v1",
        ["msg_id"],
        {
            "msg_id": {
                "type": ["string", "null"],
                "description": "The bus message the trigger made the job for.",
            }
        },
    )

    @property
    def summary(self) -> str:
        again = self.job.get("rescheduled_from")
        how = f" (attempt {self.job['attempt']} of {again})" if again else ""
        return f"ExecDB scheduled {self._what}{how}"


class JobStateChangeV1(ExecDBMessage):
    """A job switched state; a crash says who is to blame and why."""

    topic = "execdb.job.state.change.v1"
    body_schema = _body_schema(
        "execdb.job.state.change.v1",
        ["from", "to", "blame", "cause"],
        {
            "from": {"type": "string", "enum": STATES},
            "to": {"type": "string", "enum": STATES},
            "blame": _BLAME,
            "cause": _NULLABLE_STRING,
            "retry_at": {
                "type": ["string", "null"],
                "description": "When ExecDB runs a crashed job again; null: it does not.",
            },
        },
    )

    def __init__(
        self,
        body: dict[str, Any] | None = None,
        headers: dict[str, Any] | None = None,
        topic: str | None = None,
        properties: Any = None,
        severity: int | None = None,
    ) -> None:
        # A crash is worth a look (fedora-messaging's WARNING: a test could not run); the
        # other changes are INFO. A severity given (or received) wins.
        if severity is None and body is not None and body.get("to") == "CRASHED":
            severity = message.WARNING
        super().__init__(body, headers, topic, properties, severity)

    @property
    def summary(self) -> str:
        body = self.body
        text = f"{self._what} went from {body['from']} to {body['to']}"
        if body["to"] == "CRASHED":
            text += f" ({body.get('blame') or 'UNKNOWN'}: {body.get('cause') or 'no cause'})"
        return text


class JobReclassifiedV1(ExecDBMessage):
    """A crashed job was given another blame or cause after it ended (a person, or new rules)."""

    topic = "execdb.job.reclassified.v1"
    _classification: ClassVar[dict[str, Any]] = {
        "type": "object",
        "required": ["blame", "cause"],
        "properties": {"blame": _BLAME, "cause": _NULLABLE_STRING},
    }
    body_schema = _body_schema(
        "execdb.job.reclassified.v1",
        ["old", "new", "classified_by"],
        {
            "old": _classification,
            "new": _classification,
            "classified_by": {
                "type": ["string", "null"],
                "description": "Who gave the new classification: person, rules, reporter.",
            },
            "rule_id": _NULLABLE_STRING,
        },
    )

    @property
    def summary(self) -> str:
        old, new = self.body["old"], self.body["new"]
        return (
            f"{self._what} was reclassified from {old['blame']}: {old['cause'] or 'no cause'} "
            f"to {new['blame']}: {new['cause'] or 'no cause'}"
        )


TOPICS: dict[str, type[ExecDBMessage]] = {
    cls.topic: cls for cls in (JobCreatedV1, JobStateChangeV1, JobReclassifiedV1)
}
