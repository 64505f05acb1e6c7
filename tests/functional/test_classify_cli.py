"""`execdb classify` and `execdb rules` through the installed entry point, on real files.

They are offline commands: no server and no database is started, and none is configured.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.functional.test_cli import EXECDB, environment, failed_cleanly, usage_error

GIT_DNS = (
    "fatal: unable to access 'https://pagure.io/taskotron/task-rpmlint.git/': "
    "Could not resolve host: pagure.io"
)
OOM = "[ 8811.12] Out of memory: Killed process 48211 (python3) total-vm:8388608kB"
WATCHDOG = "command timed out: 1200 seconds without output running [b'runtask'], attempting to kill"

SITE_RULES = """
["site.selinux"]
cause = "task.exception"
blame = "TASKOTRON"
precedence = 90
description = "SELinux denied the task something."
match = ['avc:  denied']
examples = ["avc:  denied  { write } for pid=4242"]
"""


def run(
    tmp_path: Path, *args: str, stdin: bytes = b"", **variables: str | Path
) -> subprocess.CompletedProcess[str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    result = subprocess.run(
        [str(EXECDB), *args],
        env=environment(home, **variables),
        cwd=tmp_path,
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )
    return subprocess.CompletedProcess(
        result.args,
        result.returncode,
        result.stdout.decode("utf-8", "replace"),
        result.stderr.decode("utf-8", "replace"),
    )


def write(tmp_path: Path, name: str, *lines: str) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def json_lines(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines()]


def test_classify_says_blame_cause_rule_and_evidence(tmp_path: Path) -> None:
    clone = write(tmp_path, "clone.log", "Cloning into 'task-rpmlint'...", GIT_DNS)
    fine = write(tmp_path, "fine.log", "all good", "really")
    result = run(tmp_path, "classify", str(clone), str(fine))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{clone}: THIRD_PARTY network.dns  [rule network.name_resolution")
    assert lines[1] == f"  line 2: {GIT_DNS}"
    assert lines[2].startswith(f"{fine}: UNKNOWN, no rule matched")

    result = run(tmp_path, "classify", "--json", str(clone), str(fine))
    assert result.returncode == 0, result.stderr
    first, second = json_lines(result.stdout)
    assert {"file", "blame", "cause", "rule", "evidence"} <= first.keys()
    assert (first["file"], first["blame"], first["cause"], first["rule"]) == (
        str(clone),
        "THIRD_PARTY",
        "network.dns",
        "network.name_resolution",
    )
    assert first["evidence"] == [{"line": 2, "text": GIT_DNS}]
    assert (second["blame"], second["cause"], second["rule"], second["evidence"]) == (
        "UNKNOWN",
        None,
        None,
        [],
    )
    assert first["rules_version"] == second["rules_version"]


def test_classify_reads_stdin_and_goes_on_past_a_file_it_cannot_read(tmp_path: Path) -> None:
    log = write(tmp_path, "oom.log", "starting", OOM)
    missing = tmp_path / "nope.log"
    result = run(
        tmp_path,
        "classify",
        "--json",
        str(missing),
        "-",
        str(log),
        stdin=b"x\n" + WATCHDOG.encode(),
    )
    assert result.returncode == 1
    assert result.stderr == f"execdb: {missing}: cannot read: No such file or directory\n"
    piped, from_file = json_lines(result.stdout)
    assert (piped["file"], piped["cause"], piped["blame"]) == ("-", "watchdog.timeout", "TASKOTRON")
    assert (from_file["cause"], from_file["evidence"]) == (
        "resources.oom",
        [{"line": 2, "text": OOM}],
    )


@pytest.mark.parametrize("via", ["file", "stdin"])
def test_only_the_last_256_kib_of_a_10_mb_log_is_read(tmp_path: Path, via: str) -> None:
    filler = "DEBUG: nothing to see here, just a long log line of the task's own chatter\n"
    body = OOM + "\n" + filler * (10_000_000 // len(filler)) + "half a line"
    data = (body + "\n" + GIT_DNS + "\n").encode()
    path = tmp_path / "big.log"
    path.write_bytes(data)
    if via == "file":
        result = run(tmp_path, "classify", "--json", str(path))
    else:
        result = run(tmp_path, "classify", "--json", "-", stdin=data)
    assert result.returncode == 0, result.stderr
    (verdict,) = json_lines(result.stdout)
    # The OOM kill at the start (which would win) is out of reach; the end is what counts.
    assert verdict["cause"] == "network.dns"
    skipped = verdict["skipped_bytes"]
    assert isinstance(skipped, int)
    assert len(data) - 256 * 1024 <= skipped < len(data) - 255 * 1024
    assert data[skipped - 1 : skipped] == b"\n", "the tail starts on a line boundary"
    tail_lines = data[skipped:].count(b"\n")
    assert verdict["evidence"] == [{"line": tail_lines, "text": GIT_DNS}]


def test_control_characters_of_a_log_are_shown_escaped(tmp_path: Path) -> None:
    path = tmp_path / "evil.log"
    path.write_bytes(b"\x1b]0;pwned\x07\x1b[2J " + OOM.encode() + b"\x00\xff\n")
    result = run(tmp_path, "classify", str(path))
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout
    assert "\\x1b]0;pwned\\x07\\x1b[2J" in result.stdout
    assert "\\x00\ufffd" in result.stdout


def test_a_deployment_rules_file_from_the_option_or_the_settings(tmp_path: Path) -> None:
    rules = write(tmp_path, "site-rules.toml", SITE_RULES)
    log = write(tmp_path, "denied.log", GIT_DNS, "avc:  denied  { read } for pid=1")
    for args, variables in [
        (("--rules", str(rules)), {}),
        ((), {"EXECDB_RULES_FILE": rules}),
    ]:
        result = run(tmp_path, "classify", "--json", *args, str(log), **variables)
        assert result.returncode == 0, result.stderr
        (verdict,) = json_lines(result.stdout)
        assert (verdict["rule"], verdict["blame"]) == ("site.selinux", "TASKOTRON")

    settings = write(tmp_path, "execdb.toml", f"rules_file = '{rules}'")
    result = run(tmp_path, "--config", str(settings), "rules", "list")
    assert result.returncode == 0, result.stderr
    assert any(line.split()[:2] == ["90", "site.selinux"] for line in result.stdout.splitlines())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("match = ['avc:  denied']", "match = ['avc(?<=:)']"), "RE2 cannot compile it"),
        (('cause = "task.exception"', 'cause = "executor.timeout"'), "only describes a symptom"),
        (("precedence = 90", "precedence = 900"), "'precedence'"),
    ],
)
def test_a_bad_rules_file_stops_the_command_naming_the_rule(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    rules = write(tmp_path, "site-rules.toml", SITE_RULES.replace(*change))
    log = write(tmp_path, "x.log", "x")
    for args in (
        ("classify", "--rules", str(rules), str(log)),
        ("rules", "list", "--rules", str(rules)),
    ):
        line = failed_cleanly(run(tmp_path, *args))
        assert line.startswith(f"execdb: {rules}: rule 'site.selinux': ")
        assert message in line


def test_rules_list_shows_every_shipped_rule(tmp_path: Path) -> None:
    result = run(tmp_path, "rules", "list", "--json")
    assert result.returncode == 0, result.stderr
    rules = json_lines(result.stdout)
    assert len(rules) >= 20
    by_id = {r["id"]: r for r in rules}
    assert by_id["git.remote_failure"]["blame"] == "THIRD_PARTY"
    assert by_id["git.local_checkout"]["blame"] == "TASKOTRON"
    assert [r["precedence"] for r in rules] == sorted(
        (r["precedence"] for r in rules), reverse=True
    )
    text = run(tmp_path, "rules", "list")
    assert text.stdout.splitlines()[0].startswith(f"{len(rules)} rules, version ")


def corpus(tmp_path: Path) -> Path:
    entries = [
        {
            "id": "d1",
            "split": "dev",
            "blame": "THIRD_PARTY",
            "cause": "network.dns",
            "log": GIT_DNS,
        },
        {"id": "d2", "split": "dev", "blame": "TASKOTRON", "cause": "resources.oom", "log": OOM},
        {"id": "d3", "split": "dev", "blame": None, "cause": None, "log": "all fine\n"},
        # Labelled a Koji error, but the log shows the watchdog: a wrong answer.
        {
            "id": "d4",
            "split": "dev",
            "blame": "THIRD_PARTY",
            "cause": "koji.error",
            "log": WATCHDOG,
        },
        {"id": "h1", "split": "heldout", "blame": "TASK", "cause": "task.exception", "log": "boom"},
    ]
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return path


def test_rules_check_prints_the_figures_and_every_miss(tmp_path: Path) -> None:
    result = run(tmp_path, "rules", "check", str(corpus(tmp_path)), "--split", "dev")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "4 entries" in out
    assert "blame accuracy 0.750   cause accuracy 0.750" in out
    assert "answered 3 of 4; 1 wrong (precision of the answers 0.667)" in out
    assert any(line.split() == ["koji.error", "-", "0.000", "0", "1"] for line in out.splitlines())
    assert any(
        line.split() == ["watchdog.timeout", "0.000", "-", "1", "0"] for line in out.splitlines()
    )
    assert "   1  koji.error -> watchdog.timeout" in out
    assert (
        "  d4: labelled THIRD_PARTY koji.error, answered TASKOTRON watchdog.timeout "
        "by executor.watchdog" in out
    )
    assert "h1" not in out


def test_rules_check_fails_below_a_threshold(tmp_path: Path) -> None:
    path = corpus(tmp_path)
    passing = run(
        tmp_path, "rules", "check", str(path), "--split", "dev", "--min-blame-accuracy", "0.75"
    )
    assert passing.returncode == 0, passing.stdout
    failing = run(
        tmp_path, "rules", "check", str(path), "--split", "dev",
        "--min-cause-accuracy", "0.9", "--min-precision", "0.5", "--json",
    )  # fmt: skip
    assert failing.returncode == 1
    report = json.loads(failing.stdout)
    assert report["failures"] == ["cause accuracy 0.750 is below 0.9"]
    assert report["entries"] == 4
    assert [m["id"] for m in report["misses"]] == ["d4"]
    heldout = run(tmp_path, "rules", "check", str(path), "--split", "heldout", "--json")
    assert json.loads(heldout.stdout)["cause_accuracy"] == 0.0


def test_rules_check_refuses_a_broken_corpus(tmp_path: Path) -> None:
    path = corpus(tmp_path)
    line = failed_cleanly(run(tmp_path, "rules", "check", str(path), "--split", "nope"))
    assert line == "execdb: no corpus entries in split 'nope'"
    path.write_text(path.read_text() + '{"log": "x", "blame": "NOBODY"}\n')
    line = failed_cleanly(run(tmp_path, "rules", "check", str(path)))
    assert line.startswith(f"execdb: {path}:6: key 'blame' must be one of")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert (
        failed_cleanly(run(tmp_path, "rules", "check", str(empty))) == "execdb: no corpus entries"
    )


@pytest.mark.parametrize(
    "args",
    [
        ("classify",),
        ("rules",),
        ("rules", "check"),
        ("rules", "check", "x", "--min-precision", "2"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: tuple[str, ...]) -> None:
    usage_error(run(tmp_path, *args))
