"""The classification engine: root cause wins, sequences, vetoes, and hostile logs."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from execdb.causes.catalogue import load_catalogue
from execdb.classify import Engine, load_rules
from execdb.classify.engine import EVIDENCE_MAX_CHARS
from execdb.vocabulary import Blame

CATALOGUE = load_catalogue()
SHIPPED = load_rules(CATALOGUE)
ENGINE = Engine(SHIPPED)

GIT_DNS = (
    "fatal: unable to access 'https://pagure.io/taskotron/task-rpmlint.git/': "
    "Could not resolve host: pagure.io"
)
KOJI_TIMEOUT = (
    "requests.exceptions.ReadTimeout: HTTPSConnectionPool(host='koji.fedoraproject.org', "
    "port=443): Read timed out. (read timeout=43200)"
)
RUNNER_TRACEBACK = """Traceback (most recent call last):
  File "/usr/lib/python3.12/site-packages/libtaskotron/koji_utils.py", line 140, in get_rpms
    return build['nvr']
           ~~~~~^^^^^^^
AttributeError: 'NoneType' object has no attribute '__getitem__'"""

# Two rules of one precedence, to see ties decided by the log and not by the file.
TIED = """
["site.first"]
cause = "task.exception"
precedence = 30
description = "Tied rule."
match = ['ALPHA']
examples = ["ALPHA"]

["site.second"]
cause = "dnf.install_failed"
precedence = 30
description = "Tied rule."
match = ['BETA']
examples = ["BETA"]

["site.sequence"]
cause = "minion.timeout"
precedence = 35
description = "A line, then another at most two lines down."
match = ['^START$']
then = ['^END$']
within = 2
examples = ["START\\nEND"]

["site.vetoed"]
cause = "mirror.unavailable"
precedence = 36
description = "A line, unless it is only a warning."
match = ['MIRROR DOWN']
unless = ['^WARNING']
examples = ["MIRROR DOWN"]

["site.spaced"]
cause = "koji.error"
precedence = 37
description = "Two words apart."
match = ['GAMMA\\s+[^x]*DELTA']
examples = ["GAMMA  DELTA"]
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    path = tmp_path_factory.mktemp("rules") / "rules.toml"
    path.write_text(TIED)
    return Engine(load_rules(CATALOGUE, path))


def log(*lines: str) -> str:
    return "\n".join(lines) + "\n"


def test_a_log_nothing_recognises_is_unknown_with_no_cause() -> None:
    verdict = ENGINE.classify(log("task started", "task ended", "ERROR: it went wrong"))
    assert (verdict.blame, verdict.cause, verdict.rule, verdict.evidence) == (
        Blame.UNKNOWN,
        None,
        None,
        (),
    )
    assert verdict.version == SHIPPED.version
    assert verdict.explanation == "no rule matched"
    assert ENGINE.classify("").cause is None


def test_a_dns_failure_beats_the_git_clone_it_broke() -> None:
    text = log(
        "Cloning into 'task-rpmlint'...", GIT_DNS, "fatal: the remote end hung up unexpectedly"
    )
    verdict = ENGINE.classify(text)
    assert (verdict.cause, verdict.blame, verdict.rule) == (
        "network.dns",
        Blame.THIRD_PARTY,
        "network.name_resolution",
    )
    assert [(e.line, e.text) for e in verdict.evidence] == [(2, GIT_DNS)]
    assert verdict.explanation == (
        "rule network.name_resolution (precedence 85, line 2) beat "
        "rule git.remote_failure (precedence 73, line 3)"
    )


def test_a_service_the_log_names_owns_the_connection_it_refused() -> None:
    refused = (
        "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='{host}', port=443): "
        "Max retries exceeded with url: / (Caused by NewConnectionError('<urllib3.connection."
        "HTTPSConnection object at 0x7f1c>: Failed to establish a new connection: "
        "[Errno 111] Connection refused'))"
    )
    koji = ENGINE.classify(refused.format(host="koji.fedoraproject.org"))
    assert (koji.cause, koji.rule) == ("koji.error", "koji.bad_answer")
    other = ENGINE.classify(refused.format(host="resultsdb.fedoraproject.org"))
    assert (other.cause, other.rule) == ("network.unreachable", "network.connection_failed")


def test_what_a_program_logged_at_debug_or_info_level_and_went_on_from_does_not_count() -> None:
    probe = "[libtaskotron:cache.py:308] 2024-12-23 18:37:23 DEBUG curl: (6) Could not resolve host"
    assert ENGINE.classify(log(probe, "Execution finished")).cause is None
    assert ENGINE.classify(log(probe.replace("DEBUG", "ERROR"))).cause == "network.dns"


def test_a_koji_timeout_beats_the_traceback_it_caused_even_when_it_comes_first() -> None:
    verdict = ENGINE.classify(log("INFO: fetching rpms", RUNNER_TRACEBACK, "", KOJI_TIMEOUT))
    assert (verdict.cause, verdict.rule) == ("koji.timeout", "koji.timed_out")
    assert verdict.evidence[0].line == 8
    ids = [f.rule.id for f in verdict.findings]
    assert ids[0] == "koji.timed_out"
    assert ids[-1] == "task.python_exception"


def test_the_first_error_beats_the_teardown_errors_after_it() -> None:
    teardown = RUNNER_TRACEBACK.replace("AttributeError", "FileNotFoundError")
    verdict = ENGINE.classify(log("running", RUNNER_TRACEBACK, "cleaning up", teardown))
    assert verdict.cause == "task.exception"
    assert verdict.evidence[-1].text.startswith("AttributeError")
    assert [e.line for e in verdict.evidence] == [3, 6]


def test_a_python_traceback_gives_its_last_frame_and_its_exception() -> None:
    verdict = ENGINE.classify(RUNNER_TRACEBACK)
    assert [e.text for e in verdict.evidence] == [
        '  File "/usr/lib/python3.12/site-packages/libtaskotron/koji_utils.py", line 140, '
        "in get_rpms",
        "AttributeError: 'NoneType' object has no attribute '__getitem__'",
    ]


def test_equal_precedences_go_to_the_earliest_evidence_then_to_the_id(site: Engine) -> None:
    assert site.classify(log("BETA", "ALPHA")).rule == "site.second"
    assert site.classify(log("ALPHA", "BETA")).rule == "site.first"
    same_line = site.classify(log("BETA ALPHA"))
    assert same_line.rule == "site.first"
    assert same_line.explanation == (
        "rule site.first (precedence 30, line 1) beat rule site.second (precedence 30, line 1)"
    )


@pytest.mark.parametrize(
    ("lines", "fires_at"),
    [
        (["START", "END"], (1, 2)),
        (["START", "x", "END"], (1, 3)),
        (["START", "x", "y", "END"], None),  # three lines down: too far
        (["END", "START"], None),  # the second line must come after the first
        (["START END"], None),
        (["START", "x", "y", "START", "END"], (4, 5)),
        (["START"] * 50 + ["x", "END"], (50, 52)),  # the nearest first line that pairs
        (["START", "x", "y", "z", "END", "START", "END"], (6, 7)),
    ],
)
def test_a_line_then_another_within_n_lines(
    site: Engine, lines: list[str], fires_at: tuple[int, int] | None
) -> None:
    found = {f.rule.id: f for f in site.findings(log(*lines))}
    if fires_at is None:
        assert "site.sequence" not in found
    else:
        assert tuple(e.line for e in found["site.sequence"].evidence) == fires_at


def test_a_pattern_never_matches_across_a_line_end(site: Engine) -> None:
    assert site.classify(log("GAMMA  DELTA")).rule == "site.spaced"
    assert site.classify(log("GAMMA", "DELTA")).rule is None
    assert site.classify(log("GAMMA ", " DELTA")).rule is None


def test_a_vetoed_line_does_not_count_but_a_later_line_does(site: Engine) -> None:
    assert site.classify(log("WARNING: MIRROR DOWN, trying another")).cause is None
    verdict = site.classify(log("WARNING: MIRROR DOWN, trying another", "x", "MIRROR DOWN"))
    assert (verdict.cause, verdict.evidence[0].line) == ("mirror.unavailable", 3)


def test_mirror_warnings_that_dnf_recovered_from_are_not_dns_failures() -> None:
    warning = (
        "[MIRROR] xchat-2.8.8-21.fc40.x86_64.rpm: Curl error (6): Couldn't resolve host name "
        "for https://mirror.example.org/x.rpm [Could not resolve host: mirror.example.org]"
    )
    assert ENGINE.classify(log(warning, "Complete!", RUNNER_TRACEBACK)).cause == "task.exception"


def test_what_went_wrong_above_a_command_that_succeeded_was_recovered_from() -> None:
    probe = ["+ dnf -y install python2-rpm", "No match for argument: python2-rpm"]
    fallback = ["+ echo 'running Python 3 checks only'", "Result: PASSED"]
    passed = ENGINE.classify(log(*probe, *fallback, "program finished with exit code 0"))
    assert (passed.blame, passed.cause, passed.rule) == (Blame.UNKNOWN, None, None)
    failed = ENGINE.classify(log(*probe, "program finished with exit code 1"))
    assert failed.cause == "dnf.package_not_found"
    # A later step that crashed is still classified, its evidence counted in the whole log.
    later = ENGINE.classify(
        log(*probe, *fallback, "program finished with exit code 0", "runtask", KOJI_TIMEOUT)
    )
    assert (later.cause, later.evidence[0].line) == ("koji.timeout", 7)
    assert [f.rule.id for f in later.findings].count("dnf.no_such_package") == 0


def test_only_buildbot_s_own_line_says_a_command_succeeded() -> None:
    probe = "No match for argument: python2-rpm"
    for text in (
        log(probe, "echo 'program finished with exit code 0'"),
        log(probe, "program finished with exit code 0 (simulated)"),
        log(probe, "program finished with exit code 0" + " x" * 50) * 20,
    ):
        assert ENGINE.classify(text).cause == "dnf.package_not_found", text[-80:]
    assert ENGINE.classify(log(probe, "program finished with exit code 0\r")).cause is None


def test_a_huge_line_is_matched_and_shown_cut_around_the_match() -> None:
    huge = "x" * 600_000 + " No space left on device " + "y" * 600_000
    verdict = ENGINE.classify(log("start", huge, "end"))
    assert verdict.cause == "resources.disk_full"
    (evidence,) = verdict.evidence
    assert evidence.line == 2
    assert len(evidence.text) == EVIDENCE_MAX_CHARS
    assert "No space left on device" in evidence.text


def test_nul_bytes_invalid_utf8_and_crlf_do_not_hide_a_failure() -> None:
    raw = (
        b"binary \x00\x00\xff\xfe junk\r\n"
        b"\xc3\x28 OSError: [Errno 28] No space left on device: '/var/tmp/\xff'\r\n"
        b"done\r\n"
    )
    verdict = ENGINE.classify(raw)
    assert verdict.cause == "resources.disk_full"
    assert verdict.evidence[0].line == 2
    assert verdict.evidence[0].text.endswith("device: '/var/tmp/\ufffd'")
    as_text = raw.decode("utf-8", "surrogateescape")
    assert ENGINE.classify(as_text) == verdict


def test_many_lines_a_rule_vetoes_cannot_make_it_search_forever() -> None:
    vetoed = "[MIRROR] x.rpm: Curl error (6): Could not resolve host: mirror.example.org"
    text = log(*[vetoed] * 20_000, GIT_DNS)
    # The rule gives up after a bounded number of tries: it misses rather than loops.
    assert ENGINE.classify(text).cause != "network.dns"
    assert ENGINE.classify(log(*[vetoed] * 10, GIT_DNS)).cause == "network.dns"


LINES = [example for rule in SHIPPED.rules for example in rule.examples] + [
    "noise",
    "",
    '  File "x.py", line 1, in f',
    "ValueError: x",
    "\x00\udcff",
]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(LINES), max_size=12), st.text(max_size=40))
def test_the_one_pass_set_loses_no_rule(lines: list[str], noise: str) -> None:
    text = "\n".join([*lines, noise])
    direct = {
        rule.id for rule in SHIPPED.rules if rule.locate(text.encode("utf-8", "surrogateescape"))
    }
    assert {f.rule.id for f in ENGINE.findings(text)} == direct


def test_the_engine_reads_only_the_vocabulary_and_the_catalogue() -> None:
    package = Path(__file__).parents[2] / "src" / "execdb" / "classify"
    allowed = ("execdb.classify", "execdb.causes.catalogue", "execdb.vocabulary")
    for module in package.glob("*.py"):
        for line in module.read_text().splitlines():
            words = line.split()
            if words[:1] in (["import"], ["from"]) and words[1].startswith("execdb"):
                assert words[1].startswith(allowed), f"{module.name}: {line}"
