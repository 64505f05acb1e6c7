"""The crash-cause catalogue: the shipped data, extra files, and the generated docs."""

from __future__ import annotations

from pathlib import Path

import pytest

from execdb.causes.catalogue import (
    CatalogueError,
    in_family,
    is_valid_code,
    load_catalogue,
    render_markdown,
)
from execdb.vocabulary import Blame

DOCS = Path(__file__).parents[2] / "docs" / "causes.md"

# The well-known failures the proposal names; each must have a documented cause.
REQUIRED = [
    "koji.error",
    "koji.timeout",
    "bodhi.error",
    "bodhi.timeout",
    "network.unreachable",
    "network.dns",
    "mirror.unavailable",
    "resources.oom",
    "resources.disk_full",
    "watchdog.timeout",
    "minion.creation_failed",
    "minion.timeout",
    "git.clone_failed",
    "dnf.install_failed",
    "dnf.package_not_found",
    "task.exception",
    "task.timeout",
    "executor.lost",
    "status_file.missing",
    "status_file.invalid",
]


def test_the_shipped_catalogue_covers_the_well_known_failures() -> None:
    catalogue = load_catalogue()
    assert set(REQUIRED) <= set(catalogue)
    assert catalogue["koji.timeout"].blame is Blame.THIRD_PARTY
    assert catalogue["koji.timeout"].retryable
    assert catalogue["dnf.package_not_found"].blame is Blame.TASK
    assert catalogue["minion.creation_failed"].blame is Blame.TASKOTRON
    assert all(cause.description.endswith(".") for cause in catalogue.values())


def test_docs_causes_md_is_generated_from_the_catalogue() -> None:
    assert DOCS.read_text() == render_markdown(load_catalogue()), (
        "docs/causes.md is stale: run `python -m execdb.causes > docs/causes.md`"
    )


def test_symptoms_are_marked_and_nothing_else_is() -> None:
    catalogue = load_catalogue()
    symptoms = {code for code, cause in catalogue.items() if cause.symptom}
    assert symptoms == {"status_file.missing", "status_file.invalid", "executor.timeout"}


def test_an_extra_file_can_mark_a_symptom(tmp_path: Path) -> None:
    extra = tmp_path / "causes.toml"
    extra.write_text(
        '["executor.killed"]\nblame = "TASKOTRON"\nretryable = true\nsymptom = true\n'
        'description = "The executor killed the run."\n'
    )
    assert load_catalogue(extra)["executor.killed"].symptom


def test_an_extra_file_adds_and_overrides(tmp_path: Path) -> None:
    extra = tmp_path / "causes.toml"
    extra.write_text(
        '["selinux.denial"]\nblame = "taskotron"\nretryable = false\n'
        'description = "SELinux denied the task something."\n\n'
        '["koji.timeout"]\nblame = "THIRD_PARTY"\nretryable = false\n'
        'description = "Koji was too slow; we stopped retrying it."\n'
    )
    catalogue = load_catalogue(extra)
    assert catalogue["selinux.denial"].blame is Blame.TASKOTRON
    assert catalogue["koji.timeout"].retryable is False
    assert "koji.error" in catalogue, "the rest of the shipped catalogue stays"


@pytest.mark.parametrize(
    ("content", "names"),
    [
        ('["Bad.Code"]\nblame="TASK"\nretryable=true\ndescription="x"', "Bad.Code"),
        ('["a.b"]\nblame="NOBODY"\nretryable=true\ndescription="x"', "blame"),
        ('["a.b"]\nblame="TASK"\nretryable="yes"\ndescription="x"', "retryable"),
        ('["a.b"]\nblame="TASK"\nretryable=true', "description"),
        ('["a.b"]\nblame="TASK"\nretryable=true\ndescription="x"\ncolour=1', "colour"),
        ('["a.b"]\nblame="TASK"\nretryable=true\ndescription="x"\nsymptom="no"', "symptom"),
        ("not toml at all [", "TOML"),
    ],
)
def test_a_bad_extra_file_is_refused_naming_the_problem(
    tmp_path: Path, content: str, names: str
) -> None:
    extra = tmp_path / "causes.toml"
    extra.write_text(content)
    with pytest.raises(CatalogueError, match=names) as error:
        load_catalogue(extra)
    assert str(extra) in str(error.value)


def test_a_missing_extra_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="cannot read"):
        load_catalogue(tmp_path / "nope.toml")


def test_codes_and_families() -> None:
    assert is_valid_code("koji.timeout")
    assert is_valid_code("koji.build.timeout")
    assert not is_valid_code("koji")
    assert not is_valid_code("koji.")
    assert not is_valid_code("Koji.timeout")
    assert not is_valid_code("koji.timeout\n")
    assert in_family("koji.timeout", "koji")
    assert in_family("koji", "koji")
    assert not in_family("kojihub.timeout", "koji")
    assert load_catalogue().default_blame("nope.nope") is Blame.UNKNOWN
    assert load_catalogue().default_blame(None) is Blame.UNKNOWN
