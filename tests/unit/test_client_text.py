"""The client's copies of the server's rules agree with the originals."""

from __future__ import annotations

import json
from importlib import resources

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from execdb.causes import catalogue
from execdb.client import text
from execdb.client.text import (
    DETAILS_MAX_BYTES,
    LOG_MAX_BYTES,
    MAX_BODY_BYTES,
    fit,
    is_valid_code,
    sendable,
)
from execdb.config import Settings
from execdb.jobs import text as server_text

CODE_CHARS = st.sampled_from("abz09_.A \n-\ud800é")


@pytest.mark.parametrize(
    ("code", "valid"),
    [
        ("koji.timeout", True),
        ("a.b.c_2", True),
        ("koji", False),
        ("Koji.Timeout", False),
        ("koji timeout", False),
        ("koji.timeout\n", False),
        ("koji.timeout ", False),
        ("koji..timeout", False),
        ("k" * 99 + ".x", False),
        ("k" * 98 + ".x", True),
    ],
)
def test_cause_codes(code: str, valid: bool) -> None:
    assert is_valid_code(code) is valid


@given(st.text(CODE_CHARS, max_size=110) | st.from_regex(catalogue.CODE_RE))
@example("koji.timeout\n")
def test_the_cause_rule_is_the_servers(code: str) -> None:
    """The server's rule: a whole-string match of its CODE_RE, at most CODE_MAX_LENGTH."""
    assert text.CODE_MAX_LENGTH == catalogue.CODE_MAX_LENGTH
    server = len(code) <= catalogue.CODE_MAX_LENGTH and bool(catalogue.CODE_RE.fullmatch(code))
    assert is_valid_code(code) is server
    if not code.endswith("\n"):  # the server's `$` also took a trailing newline
        assert is_valid_code(code) is catalogue.is_valid_code(code)


def test_the_status_file_schema_has_the_cause_rule() -> None:
    schema = json.loads(
        resources.files("execdb.client").joinpath("status-file.schema.json").read_text()
    )
    cause = schema["properties"]["cause"]
    assert cause["pattern"] == f"^{text.CODE_RE.pattern}$"  # JSON Schema's $ ends the text
    assert cause["maxLength"] == text.CODE_MAX_LENGTH


@given(st.text(), st.integers(min_value=1024, max_value=8192))
def test_shorten_is_the_servers(value: str, limit: int) -> None:
    assert text.MARKER == server_text.MARKER
    assert text.shorten(value, limit) == server_text.shorten(value, limit)


def test_the_limits_are_the_servers_defaults() -> None:
    defaults = Settings.model_fields
    assert defaults["details_max_bytes"].default == DETAILS_MAX_BYTES
    assert defaults["max_body_bytes"].default == MAX_BODY_BYTES
    assert defaults["log_max_bytes"].default == LOG_MAX_BYTES


def test_sendable_replaces_lone_surrogates_everywhere() -> None:
    value = {"a\udcff": ["b\ud800", {"c": "\udfff"}], "n": 1, "ok": "é€😀"}
    assert sendable(value) == {"a\ufffd": ["b\ufffd", {"c": "\ufffd"}], "n": 1, "ok": "é€😀"}


@given(st.text(st.characters(), max_size=DETAILS_MAX_BYTES // 2) | st.just("\x01" * 200_000))
def test_a_fitted_body_fits_the_server_however_it_escapes(details: str) -> None:
    body, _ = fit({"state": "CRASHED", "cause": "koji.timeout", "details": details})
    encoded = json.dumps(body).encode()  # what httpx sends: ASCII, every escape spelled out
    assert len(body["details"].encode()) <= DETAILS_MAX_BYTES
    assert len(encoded) < MAX_BODY_BYTES


@given(
    st.text(st.characters(), max_size=LOG_MAX_BYTES // 4)
    | st.just("\x01\n" * (LOG_MAX_BYTES // 2))
    | st.just("😀" * (LOG_MAX_BYTES // 4))
)
def test_a_log_and_details_fit_the_server_however_they_escape(log: str) -> None:
    body, _ = fit({"state": "CRASHED", "details": "\x01" * DETAILS_MAX_BYTES, "log": log})
    encoded = json.dumps(body).encode()
    assert len(encoded) < MAX_BODY_BYTES
    sent = sendable(log)  # lone surrogates become U+FFFD, as everywhere
    assert sent.endswith(body["log"])
    if len(json.dumps(sent)) < MAX_BODY_BYTES // 2:
        assert body["log"] == sent  # ordinary logs go whole
