"""The status file: every run ends in a report, whatever the runner left behind."""

from __future__ import annotations

import json
import os
import threading
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from execdb.client.statusfile import MAX_BYTES, Report, StatusFileError, outcome, parse
from execdb.client.text import DETAILS_MAX_BYTES


def write(tmp_path: Path, content: bytes | str) -> Path:
    path = tmp_path / "status.json"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def test_ok_is_finished(tmp_path: Path) -> None:
    report = outcome(write(tmp_path, '{"version": 1, "status": "OK"}'), 0)
    assert report == Report("FINISHED")
    assert report.body() == {"state": "FINISHED"}


def test_fault_is_crashed_with_blame_cause_and_details(tmp_path: Path) -> None:
    doc = {
        "version": 1,
        "status": "FAULT",
        "blame": "third_party",
        "cause": "koji.timeout",
        "details": "no answer",
    }
    report = outcome(write(tmp_path, json.dumps(doc)), 1)
    assert report.body() == {
        "state": "CRASHED",
        "blame": "THIRD_PARTY",
        "cause": "koji.timeout",
        "details": "no answer",
    }


def test_unknown_keys_are_kept_in_the_details(tmp_path: Path) -> None:
    doc = {"version": 1, "status": "FAULT", "cause": "dnf.install_failed", "log": "/var/log/x"}
    body = outcome(write(tmp_path, json.dumps(doc))).body()
    assert body["cause"] == "dnf.install_failed"
    assert '"log": "/var/log/x"' in body["details"]


def test_a_missing_file_is_a_crash_saying_so(tmp_path: Path) -> None:
    report = outcome(tmp_path / "nowhere.json", 137)
    assert (report.state, report.cause) == ("CRASHED", "status_file.missing")
    assert report.details is not None
    assert "nowhere.json" in report.details
    assert "137" in report.details


def test_ok_with_a_failing_exit_code_is_finished_and_says_so(tmp_path: Path) -> None:
    report = outcome(write(tmp_path, '{"version": 1, "status": "OK", "details": "fine"}'), 3)
    assert report.state == "FINISHED"
    assert report.details == "fine\n\nthe runner exited with code 3 after writing status OK"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("", "not JSON"),
        ("{not json", "not JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"version": 1, "status": "OK", "x": NaN}', "NaN is not JSON"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ],
)
def test_a_file_that_is_no_json_object_is_a_crash_quoting_its_start(
    tmp_path: Path, content: str | bytes, problem: str
) -> None:
    report = outcome(write(tmp_path, content), 0)
    assert (report.state, report.cause) == ("CRASHED", "status_file.invalid")
    assert report.details is not None
    assert problem in report.details
    assert "it starts with:" in report.details


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"status": "OK"}', "'version' must be 1"),
        ('{"version": 2, "status": "OK"}', "'version' must be 1"),
        ('{"version": true, "status": "OK"}', "'version' must be 1"),
        ('{"version": 1, "status": "ok"}', "'status' must be"),
        ('{"version": 1, "status": "FAULT", "blame": "NOBODY"}', "'blame' must be one of"),
        ('{"version": 1, "status": "FAULT", "blame": 3}', "'blame' must be one of"),
        ('{"version": 1, "status": "FAULT", "cause": ["koji"]}', "'cause' must be a string"),
        ('{"version": 1, "status": "OK", "cause": "koji.timeout"}', "only for status FAULT"),
        ('{"version": 1, "status": "FAULT", "cause": "Koji.Timeout"}', "'cause' must be"),
    ],
)
def test_an_object_breaking_the_rules_is_a_crash_quoting_its_fields(
    tmp_path: Path, content: str, problem: str
) -> None:
    report = outcome(write(tmp_path, content), 0)
    assert (report.state, report.cause) == ("CRASHED", "status_file.invalid")
    assert report.details is not None
    assert problem in report.details
    assert "the runner wrote:\n" in report.details
    assert 'status: "' in report.details, "each field on a line of its own"


@pytest.mark.parametrize(
    "cause",
    ["Koji.Timeout", "koji timeout", "koji", "koji.timeout\n", "k" * 97 + ".x" * 2, "\ud800.x"],
)
def test_a_malformed_cause_is_an_invalid_file_that_keeps_what_the_runner_said(
    tmp_path: Path, cause: str
) -> None:
    """The server refuses such a cause: sent as it is, the job would stay RUNNING."""
    doc = {
        "version": 1,
        "status": "FAULT",
        "blame": "THIRD_PARTY",
        "cause": cause,
        "details": "koji said:\n  503 Service Unavailable",
        "log": "/srv/log",
    }
    body = outcome(write(tmp_path, json.dumps(doc)), 1).body()
    assert (body["state"], body["cause"]) == ("CRASHED", "status_file.invalid")
    assert "blame" not in body, "status_file.invalid takes its catalogue blame"
    details = body["details"]
    assert f"cause: {json.dumps(cause, ensure_ascii=False)}".replace("\ud800", "\ufffd") in details
    assert 'blame: "THIRD_PARTY"' in details
    assert "details:\nkoji said:\n  503 Service Unavailable" in details
    assert 'more from the status file: {"log": "/srv/log"}' in details


def test_a_well_formed_cause_the_catalogue_lacks_is_sent_as_it_is(tmp_path: Path) -> None:
    doc = {"version": 1, "status": "FAULT", "cause": "koji.brand_new_" + "x" * 80}
    assert outcome(write(tmp_path, json.dumps(doc))).cause == doc["cause"]


def test_details_are_cut_to_the_servers_limit_head_and_tail(tmp_path: Path) -> None:
    details = "HEAD" + "x" * 1_048_400 + "TAIL"
    doc = {"version": 1, "status": "OK", "details": details}
    body = outcome(write(tmp_path, json.dumps(doc)), 1).body()
    assert len(body["details"].encode()) <= DETAILS_MAX_BYTES
    assert body["details"].startswith("HEAD")
    assert body["details"].endswith("the runner exited with code 1 after writing status OK")
    assert "bytes omitted by ExecDB" in body["details"]


def test_quoted_extra_keys_are_cut_like_details(tmp_path: Path) -> None:
    doc = {"version": 1, "status": "OK"} | {f"k{i}": '"' * 80 for i in range(5_000)}
    path = write(tmp_path, json.dumps(doc))
    assert 800_000 < path.stat().st_size < MAX_BYTES
    body = outcome(path, 0).body()
    assert body["state"] == "FINISHED"
    assert len(json.dumps(body).encode()) < 2 * DETAILS_MAX_BYTES


def test_lone_surrogates_are_replaced(tmp_path: Path) -> None:
    doc = '{"version": 1, "status": "FAULT", "cause": "koji.timeout", "details": "a\\ud800b"}'
    body = outcome(write(tmp_path, doc)).body()
    assert body["details"] == "a\ufffdb"
    json.dumps(body, ensure_ascii=False).encode()


def test_a_fifo_is_not_read_and_does_not_block(tmp_path: Path) -> None:
    fifo = tmp_path / "status.json"
    os.mkfifo(fifo)
    reports: list[Report] = []
    reader = threading.Thread(target=lambda: reports.append(outcome(fifo, 0)), daemon=True)
    reader.start()
    reader.join(timeout=10)
    if reader.is_alive():  # blocked opening the FIFO: let it go, then fail
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(timeout=10)
        pytest.fail("reading the status file blocked on a FIFO")
    [report] = reports
    assert report.cause == "status_file.invalid"
    assert report.details is not None
    assert "is a FIFO, not a regular file" in report.details


def test_a_device_is_not_read(tmp_path: Path) -> None:
    report = outcome(Path("/dev/zero"), 0)
    assert report.cause == "status_file.invalid"
    assert report.details is not None
    assert "a character device, not a regular file" in report.details


def test_a_huge_file_is_invalid_without_being_read_whole(tmp_path: Path) -> None:
    path = write(tmp_path, b" " * (MAX_BYTES * 3) + b'{"version": 1, "status": "OK"}')
    report = outcome(path, 0)
    assert report.cause == "status_file.invalid"
    assert report.details is not None
    assert f"larger than {MAX_BYTES} bytes" in report.details
    assert len(report.details) < 10_000


def test_an_unreadable_file_is_invalid(tmp_path: Path) -> None:
    report = outcome(tmp_path, 0)
    assert report.cause == "status_file.invalid"
    assert report.details is not None
    assert "is a directory" in report.details


@given(st.binary(max_size=4096))
def test_any_bytes_give_a_report(data: bytes) -> None:
    try:
        report = parse(data)
    except StatusFileError:
        return
    assert report.state in ("FINISHED", "CRASHED")
    json.dumps(report.body())


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=30,
    )
)
def test_any_json_gives_a_report_or_a_clear_error(doc: object) -> None:
    try:
        report = parse(json.dumps(doc).encode())
    except StatusFileError as exc:
        message = str(exc)
        assert message, "an error says what is wrong"
        return
    assert report.state in ("FINISHED", "CRASHED")


def test_the_shipped_schema_names_the_fields_the_parser_knows() -> None:
    text = resources.files("execdb.client").joinpath("status-file.schema.json").read_text()
    schema = json.loads(text)
    assert set(schema["properties"]) == {"version", "status", "blame", "cause", "details"}
    assert schema["properties"]["status"]["enum"] == ["OK", "FAULT"]
