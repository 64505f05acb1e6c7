"""The status file: every run ends in a report, whatever the runner left behind."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from execdb.client.statusfile import MAX_BYTES, Report, StatusFileError, outcome, parse


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
        ('{"status": "OK"}', "'version' must be 1"),
        ('{"version": 2, "status": "OK"}', "'version' must be 1"),
        ('{"version": true, "status": "OK"}', "'version' must be 1"),
        ('{"version": 1, "status": "ok"}', "'status' must be"),
        ('{"version": 1, "status": "FAULT", "blame": "NOBODY"}', "'blame' must be one of"),
        ('{"version": 1, "status": "FAULT", "blame": 3}', "'blame' must be one of"),
        ('{"version": 1, "status": "FAULT", "cause": ["koji"]}', "'cause' must be a string"),
        ('{"version": 1, "status": "OK", "cause": "koji.timeout"}', "only for status FAULT"),
        ('{"version": 1, "status": "OK", "x": NaN}', "NaN is not JSON"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ],
)
def test_an_invalid_file_is_a_crash_with_the_error_and_its_start(
    tmp_path: Path, content: str | bytes, problem: str
) -> None:
    report = outcome(write(tmp_path, content), 0)
    assert (report.state, report.cause) == ("CRASHED", "status_file.invalid")
    assert report.details is not None
    assert problem in report.details
    assert "it starts with:" in report.details


def test_a_huge_file_is_invalid_without_being_read_whole(tmp_path: Path) -> None:
    path = write(tmp_path, b" " * (MAX_BYTES * 3) + b'{"version": 1, "status": "OK"}')
    report = outcome(path, 0)
    assert report.cause == "status_file.invalid"
    assert report.details is not None
    assert f"larger than {MAX_BYTES} bytes" in report.details
    assert len(report.details) < 10_000


def test_an_unreadable_file_is_invalid(tmp_path: Path) -> None:
    report = outcome(tmp_path, 0)  # a directory
    assert report.cause == "status_file.invalid"


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
