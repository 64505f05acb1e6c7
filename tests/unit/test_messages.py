"""The message schemas (messages/, the execdb-messages package): registered where
fedora-messaging looks, the documented examples valid, and what consumers read of them."""

from __future__ import annotations

import copy
import json
import re
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from execdb_messages import (
    TOPICS,
    JobCreatedV1,
    JobReclassifiedV1,
    JobStateChangeV1,
    package_of,
)
from fedora_messaging import message as fm_message

DOC = Path(__file__).resolve().parents[2] / "docs" / "messages.md"


def documented() -> dict[str, dict[str, Any]]:
    """Each `### `topic`` section's first JSON example."""
    text = DOC.read_text()
    found = re.findall(r"^### `([a-z0-9.]+)`\n.*?```json\n(.*?)```", text, re.M | re.S)
    return {topic: json.loads(body) for topic, body in found}


def test_every_topic_is_documented_with_an_example_its_schema_takes() -> None:
    examples = documented()
    assert (
        set(examples)
        == set(TOPICS)
        == {
            "execdb.job.created.v1",
            "execdb.job.state.change.v1",
            "execdb.job.reclassified.v1",
        }
    )
    for topic, body in examples.items():
        TOPICS[topic](body=body).validate()


@pytest.mark.parametrize(
    ("topic", "change"),
    [
        ("execdb.job.state.change.v1", {"to": "DONE"}),
        ("execdb.job.state.change.v1", {"seq": 0}),
        ("execdb.job.created.v1", {"job": {"uuid": 1}}),
        ("execdb.job.reclassified.v1", {"new": {"blame": "SOMEONE", "cause": None}}),
    ],
)
def test_a_body_that_breaks_its_schema_is_refused(topic: str, change: dict[str, Any]) -> None:
    body = copy.deepcopy(documented()[topic])
    for key, value in change.items():
        body[key] = {**body[key], **value} if isinstance(value, dict) else value
    with pytest.raises(jsonschema.ValidationError):
        TOPICS[topic](body=body).validate()


def test_the_classes_are_registered_as_fedora_messaging_looks_them_up() -> None:
    names = {ep.name: ep.load() for ep in entry_points(group="fedora.messages")}
    for topic, cls in TOPICS.items():
        assert names[topic] is cls
        assert fm_message.get_class(topic) is cls
        assert fm_message.get_name(cls) == topic
    # What a consumer is told to install when it lacks the schemas.
    headers = JobCreatedV1(body=documented()["execdb.job.created.v1"])._headers
    assert headers["fedora_messaging_schema"] == "execdb.job.created.v1"
    assert headers["fedora_messaging_schema_package"] == "execdb_messages"


def test_what_a_consumer_reads_of_a_crash() -> None:
    crash = JobStateChangeV1(body=documented()["execdb.job.state.change.v1"])
    assert crash.summary == (
        "rpmlint on xchat-2.8.8-21.fc40 (x86_64) went from RUNNING to CRASHED "
        "(THIRD_PARTY: koji.timeout)"
    )
    assert crash.url == "https://execdb.example.org/jobs/01938a2c-5d1e-7c3a-9f60-1b2c3d4e5f60"
    assert crash.agent_name == "buildbot"
    assert crash.app_name == "ExecDB"
    assert crash.packages == ["xchat"]
    assert crash.severity == fm_message.WARNING
    assert crash.seq == 3
    text = str(crash)
    assert text.startswith(crash.summary + "\n")
    assert "Blame:    THIRD_PARTY, cause koji.timeout" in text
    assert "By:       buildbot at 2026-12-03T09:12:44.123456+00:00" in text
    # The header fedora-messaging's consumers filter packages by.
    assert crash._headers["fedora_messaging_rpm_xchat"] is True


def test_other_changes_are_info_and_execdbs_own_have_no_agent() -> None:
    body = copy.deepcopy(documented()["execdb.job.state.change.v1"])
    body.update({"from": "SCHEDULED", "to": "RUNNING", "agent": None})
    running = JobStateChangeV1(body=body)
    assert running.severity == fm_message.INFO
    assert running.agent_name is None
    assert "By:       ExecDB at" in str(running)
    again = copy.deepcopy(documented()["execdb.job.created.v1"])
    again["job"].update({"attempt": 2, "rescheduled_from": "0193-first"})
    assert JobCreatedV1(body=again).summary == (
        "ExecDB scheduled rpmlint on xchat-2.8.8-21.fc40 (x86_64) (attempt 2 of 0193-first)"
    )
    reclassified = JobReclassifiedV1(body=documented()["execdb.job.reclassified.v1"])
    assert reclassified.summary == (
        "rpmlint on xchat-2.8.8-21.fc40 (x86_64) was reclassified from UNKNOWN: no cause "
        "to TASKOTRON: minion.creation_failed"
    )


@pytest.mark.parametrize(
    ("item", "item_type", "given", "packages"),
    [
        ("xchat-2.8.8-21.fc40", "koji_build", None, ["xchat"]),
        ("python-requests-2.31.0-1.fc40", "koji_build", None, ["python-requests"]),
        ("not-an-nvr", "koji_build", None, []),
        ("FEDORA-2026-1a2b3c", "bodhi_update", None, []),
        ("FEDORA-2026-1a2b3c", "bodhi_update", ["xchat", "xchat-tcl"], ["xchat", "xchat-tcl"]),
        ("Fedora-40-20261201.0", "compose", None, []),
    ],
)
def test_packages(item: str, item_type: str, given: list[str] | None, packages: list[str]) -> None:
    body = copy.deepcopy(documented()["execdb.job.created.v1"])
    body["job"].update({"item": item, "item_type": item_type})
    if given is not None:
        body["job"]["packages"] = given
    created = JobCreatedV1(body=body)
    created.validate()
    assert created.packages == packages
    assert package_of("xchat-2.8.8-21.fc40", "bodhi_update") is None
