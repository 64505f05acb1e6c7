"""Crash signatures: the same failure on other builds, hosts and days groups together;
different failures do not; the key line is found in linear time whatever the log."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from execdb.classify.signature import key_line, mask, signature


@dataclass(frozen=True)
class Line:
    line: int
    text: str


SAME = [
    (
        "requests.exceptions.ReadTimeout: HTTPSConnectionPool(host='koji.fedoraproject.org', "
        "port=443): Read timed out. (read timeout=43200)",
        "requests.exceptions.ReadTimeout: HTTPSConnectionPool(host='kojipkgs.fedoraproject.org',"
        " port=8443): Read timed out. (read timeout=300)",
    ),
    (
        "Error: Unable to find a match: python3-foo-1.2-3.fc40.noarch",
        "Error: Unable to find a match: xchat-2.8.8-21.fc41.noarch",
    ),
    (
        "2026-11-30 12:01:02,345 ERROR minion 3f2a9c1d-aaaa-bbbb-cccc-1234567890ab not created "
        "on 10.0.0.12",
        "2026-12-02 23:59:59,001 ERROR minion 01a2b3c4-dddd-eeee-ffff-0987654321fe not created "
        "on 192.168.122.7",
    ),
    (
        "OSError: [Errno 28] No space left on device: '/var/tmp/taskotron/job-1234/out.log'",
        "OSError: [Errno 28] No space left on device: '/srv/minion/abc/result.json'",
    ),
    (
        "fatal: unable to access 'https://pagure.io/taskotron/task-rpmlint.git/': Could not "
        "resolve host: pagure.io",
        "fatal: unable to access 'https://src.fedoraproject.org/rpms/dist-git.git/': Could not "
        "resolve host: src.fedoraproject.org",
    ),
    ("git checkout failed at commit 4f2a9c1de7", "git checkout failed at commit 0b77aa19ff23e"),
]

DIFFERENT = [
    (
        "requests.exceptions.ReadTimeout: HTTPSConnectionPool(host='koji.fedoraproject.org', "
        "port=443): Read timed out.",
        "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='koji.fedoraproject.org', "
        "port=443): Max retries exceeded",
    ),
    ("Error: Unable to find a match: python3-foo", "Error: Failed to download metadata"),
    ("OSError: [Errno 28] No space left on device", "MemoryError"),
    ("KeyError: 'nvr'", "KeyError: 'arch'"),
    ("rpmlint failed on x86_64", "rpmlint failed on aarch64"),
]


@pytest.mark.parametrize(("one", "other"), SAME)
def test_the_same_failure_groups_together(one: str, other: str) -> None:
    first, second = signature(None, one, ()), signature(None, other, ())
    assert first is not None
    assert second is not None
    assert first.text == second.text
    assert first.key == second.key
    assert len(first.key) == 16


@pytest.mark.parametrize(("one", "other"), DIFFERENT)
def test_different_failures_do_not(one: str, other: str) -> None:
    first, second = signature(None, one, ()), signature(None, other, ())
    assert first is not None
    assert second is not None
    assert first.key != second.key


def test_what_is_masked() -> None:
    assert mask("job 01a2b3c4-dddd-eeee-ffff-0987654321fe on 10.0.0.1:22") == "job <uuid> on <ip>"
    assert mask("at 2026-12-03T08:00:01Z and 12:00:01.5") == "at <date> and <time>"
    assert mask("see https://koji.fedoraproject.org/koji/taskinfo?taskID=1") == "see <url>"
    assert mask("in /usr/lib/python3.12/site-packages/x.py line 12") == "in <path> line <n>"
    assert mask("host qa01.qa.fedoraproject.org down") == "host <host> down"
    assert mask("build xchat-2.8.8-21.fc40 for x86_64") == "build <nvr> for x86_64"
    assert mask("pointer 0x7ffe1234 id deadbeef42") == "pointer <hex> id <hex>"
    assert mask("  many    blanks\there ") == "many blanks here"
    assert len(mask("x" * 5000)) == 300


def test_the_rules_evidence_is_the_key_line() -> None:
    log = "ok\nKeyError: 'x'\nRead timed out after 300 s\n"
    found = signature(log, "details", [Line(3, "Read timed out after 300 s")])
    assert found is not None
    assert (found.text, found.line) == ("Read timed out after <n> s", 3)


def test_a_tracebacks_final_exception_is_picked() -> None:
    log = "\n".join(
        [
            "starting",
            "Traceback (most recent call last):",
            '  File "/usr/lib/python3.12/site-packages/libtaskotron/runner.py", line 12, in run',
            '    raise SomeError("x")',
            "libtaskotron.exceptions.TaskotronYamlError: formula has no 'name' at line 3",
            "cleaning up",
            "",
        ]
    )
    assert key_line(log) == ("libtaskotron.exceptions.TaskotronYamlError: formula has no "
                             "'name' at line 3", 5)  # fmt: skip
    # An exception without Error or Exception in its name, too.
    log = "x\nTraceback (most recent call last):\n  File 'a', line 1\nSystemExit: 2\nbye\n"
    assert key_line(log) == ("SystemExit: 2", 4)


def test_the_last_error_line_wins_and_recovered_errors_do_not_count() -> None:
    log = "ERROR: mirror 1 failed\nretrying\nFAILED: test_foo\nsummary: 1 test\n"
    assert key_line(log) == ("FAILED: test_foo", 3)
    log = "ERROR: mirror failed\nprogram finished with exit code 0\nstep two\nall done\n"
    assert key_line(log) == ("all done", 4)
    found = signature("\n\n  \n", "first line of details\nsecond", ())
    assert found is not None
    assert found.text == "first line of details"
    assert signature(None, None, ()) is None
    assert signature(None, "   ", ()) is None


def test_a_hostile_log_costs_linear_time() -> None:
    lines = ["Error " * 2000, "x" * 100_000, "(" * 50_000, "Traceback (most recent call last):"]
    log = "\n".join(lines * 20)
    start = time.perf_counter()
    found = signature(log, None, ())
    assert time.perf_counter() - start < 1.0
    assert found is not None
    assert len(found.text) <= 300
