"""Classification rules: the shipped set, a deployment's file merged over it, and refusals."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from execdb.causes.catalogue import load_catalogue
from execdb.classify import Engine, RulesError, load_rules
from execdb.classify.rules import render_markdown
from execdb.vocabulary import Blame

CATALOGUE = load_catalogue()
SHIPPED = load_rules(CATALOGUE)
ENGINE = Engine(SHIPPED)
DOCS = Path(__file__).parents[2] / "docs" / "rules.md"

EXAMPLES = [
    pytest.param(rule.id, example, id=f"{rule.id}-{i}")
    for rule in SHIPPED.rules
    for i, example in enumerate(rule.examples, 1)
]
COUNTER_EXAMPLES = [
    pytest.param(rule.id, example, id=f"{rule.id}-{i}")
    for rule in SHIPPED.rules
    for i, example in enumerate(rule.counter_examples, 1)
]

GOOD = """
["site.selinux"]
cause = "task.exception"
precedence = 30
description = "SELinux denied the task something."
match = ['avc:  denied']
examples = ["type=AVC msg=audit(1714557600.123:456): avc:  denied  { write } for pid=4242"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("rule_id", "example"), EXAMPLES)
def test_every_shipped_example_alone_gives_its_rules_verdict(rule_id: str, example: str) -> None:
    rule = SHIPPED.get(rule_id)
    assert rule is not None
    verdict = ENGINE.classify(example)
    assert verdict.rule == rule_id, verdict.explanation
    assert verdict.cause == rule.cause
    assert verdict.blame is rule.blame
    assert verdict.evidence


@pytest.mark.parametrize(("rule_id", "example"), COUNTER_EXAMPLES)
def test_no_shipped_counter_example_fires_its_rule(rule_id: str, example: str) -> None:
    assert rule_id not in {f.rule.id for f in ENGINE.findings(example)}


def test_the_shipped_rules_cover_the_well_known_failures() -> None:
    causes = {rule.cause for rule in SHIPPED.rules}
    assert {
        "koji.timeout",
        "koji.error",
        "bodhi.timeout",
        "bodhi.error",
        "network.dns",
        "network.unreachable",
        "mirror.unavailable",
        "resources.oom",
        "resources.disk_full",
        "watchdog.timeout",
        "task.timeout",
        "minion.creation_failed",
        "minion.timeout",
        "git.clone_failed",
        "dnf.package_not_found",
        "dnf.install_failed",
        "task.formula_invalid",
        "task.exception",
    } <= causes
    assert not any(CATALOGUE[cause].symptom for cause in causes)


def test_a_rules_blame_overrides_its_causes_default_only_where_it_says_so() -> None:
    remote, local = SHIPPED.get("git.remote_failure"), SHIPPED.get("git.local_checkout")
    assert remote is not None
    assert local is not None
    assert remote.cause == local.cause == "git.clone_failed"
    assert (remote.blame, remote.blame_is_default) == (Blame.THIRD_PARTY, False)
    assert (local.blame, local.blame_is_default) == (Blame.TASKOTRON, True)
    conflicts = SHIPPED.get("dnf.depsolve_failed")
    assert conflicts is not None
    assert conflicts.blame is Blame.TASK
    assert CATALOGUE["dnf.install_failed"].blame is Blame.TASKOTRON


def test_docs_rules_md_is_generated_from_the_shipped_rules() -> None:
    assert DOCS.read_text() == render_markdown(SHIPPED), (
        "docs/rules.md is stale: run `python -m execdb.classify > docs/rules.md`"
    )


def test_a_deployment_file_adds_replaces_and_disables_rules(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        GOOD
        + """
["koji.timed_out"]
cause = "koji.error"
precedence = 10
description = "Koji timeouts are errors here."
match = ['kojihub timeout']
examples = ["kojihub timeout"]

["executor.worker_lost"]
disabled = true
""",
    )
    rules = load_rules(CATALOGUE, path)
    assert len(rules) == len(SHIPPED)  # one added, one disabled
    assert rules.get("site.selinux") is not None
    assert rules.get("executor.worker_lost") is None
    replaced = rules.get("koji.timed_out")
    assert replaced is not None
    assert (replaced.cause, replaced.precedence, replaced.match) == (
        "koji.error",
        10,
        ("kojihub timeout",),
    )
    assert replaced.origin == str(path)
    engine = Engine(rules)
    shipped_example = "requests.exceptions.ReadTimeout: Read timed out talking to koji"
    assert ENGINE.classify(shipped_example).cause == "koji.timeout"
    assert engine.classify(shipped_example).cause is None, "the shipped patterns are gone"
    assert (
        engine.classify("Connection to the other side was lost in a non-clean fashion").rule is None
    )
    assert rules.version != SHIPPED.version


def test_the_version_follows_what_decides_a_verdict(tmp_path: Path) -> None:
    first = load_rules(CATALOGUE, write(tmp_path, GOOD)).version
    assert load_rules(CATALOGUE, write(tmp_path, GOOD)).version == first
    reworded = GOOD.replace("denied the task something", "said no")
    assert load_rules(CATALOGUE, write(tmp_path, reworded)).version == first
    reranked = GOOD.replace("precedence = 30", "precedence = 31")
    assert load_rules(CATALOGUE, write(tmp_path, reranked)).version != first
    assert re.fullmatch(r"[0-9a-f]{12}", first)


def test_a_rule_may_name_a_cause_the_deployment_added(tmp_path: Path) -> None:
    causes = tmp_path / "causes.toml"
    causes.write_text(
        '["selinux.denial"]\nblame = "TASKOTRON"\nretryable = false\n'
        'description = "SELinux denied something."\n'
    )
    rules_file = write(tmp_path, GOOD.replace('"task.exception"', '"selinux.denial"'))
    with pytest.raises(RulesError, match=r"selinux\.denial"):
        load_rules(CATALOGUE, rules_file)
    rule = load_rules(load_catalogue(causes), rules_file).get("site.selinux")
    assert rule is not None
    assert rule.blame is Blame.TASKOTRON


@pytest.mark.parametrize(
    ("change", "names"),
    [
        (("match = ['avc:  denied']", "match = ['avc(?=:)']"), r"match pattern 1 .*RE2 cannot"),
        (("match = ['avc:  denied']", r"match = ['(a)\1']"), r"RE2 cannot compile it"),
        (("match = ['avc:  denied']", "match = ['avc:  denied', 'x*']"), "pattern 2.*empty line"),
        (("match = ['avc:  denied']", "match = []"), "'match' must be a non-empty list"),
        (("match = ['avc:  denied']", "match = 'avc'"), "'match' must be a non-empty list"),
        (('cause = "task.exception"', 'cause = "nope.nope"'), "'cause' must name a cause"),
        (('cause = "task.exception"', 'cause = "status_file.missing"'), "symptom"),
        (('cause = "task.exception"', 'cause = "task.exception"\nblame = "X"'), "'blame'"),
        (("precedence = 30", "precedence = 101"), "'precedence' must be a whole number"),
        (("precedence = 30", "precedence = true"), "'precedence' must be a whole number"),
        (("precedence = 30", "precedence = 30\nwithin = 3"), "'within' needs a 'then'"),
        (("precedence = 30", "precedence = 30\nthen = ['x']"), "'within' must be a whole"),
        (("precedence = 30", "precedence = 30\ncolour = 1"), "unknown field.*colour"),
        (("precedence = 30", "precedence = 30\ndisabled = true"), "disabled has no other"),
        (('description = "SELinux denied the task something."', ""), "'description'"),
        (("examples = [", 'examples = ["nothing to see", '), r"example 1 \('nothing"),
        (("examples = [", 'counter_examples = ["avc:  denied"]\nexamples = ['), "counter-ex"),
        (("examples = [", "examples = [] and ["), "TOML"),
        (('["site.selinux"]', '["Site.SELinux"]'), "an id is lower case"),
    ],
)
def test_a_bad_rule_is_refused_naming_the_file_the_rule_and_the_problem(
    tmp_path: Path, change: tuple[str, str], names: str
) -> None:
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(RulesError, match=names) as error:
        load_rules(CATALOGUE, path)
    assert str(path) in str(error.value)
    if "TOML" not in names:
        assert "rule '" in str(error.value)


def test_disabling_a_rule_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, '["koji.timed_ou"]\ndisabled = true\n')
    with pytest.raises(RulesError, match=r"'koji\.timed_ou': disables a rule that does not exist"):
        load_rules(CATALOGUE, path)


def test_an_unreadable_rules_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot read"):
        load_rules(CATALOGUE, tmp_path / "nope.toml")
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(b'["a.b"]\ndescription = "caf\xe9"\n')
    with pytest.raises(RulesError, match="not UTF-8"):
        load_rules(CATALOGUE, latin1)
