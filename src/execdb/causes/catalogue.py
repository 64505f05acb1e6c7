"""The crash-cause catalogue: documented cause codes, their default blame and retry hint.

The catalogue is data, not schema: it ships as `catalogue.toml` beside this module and a
deployment may merge a file of its own over it, so adding a cause never needs a migration.
Crash reports are never refused for naming a cause the catalogue lacks; they are kept as sent
and the answer warns, which is how new kinds of crashes get noticed.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from execdb.vocabulary import Blame

# `\Z`, not `$`: `$` also matches before a final newline, and "koji.timeout\n" would then be
# stored as a cause of its own (unknown, so UNKNOWN blame and never retried).
CODE_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+\Z")
CODE_MAX_LENGTH = 100
FAMILY_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*\Z")


class CatalogueError(ValueError):
    """A catalogue file is malformed; the message names the file, the cause and the field."""


@dataclass(frozen=True, slots=True)
class Cause:
    code: str
    blame: Blame
    retryable: bool
    description: str
    # A symptom says how a run ended, not why it failed (no status file, an executor's time
    # limit): a log may still show the underlying failure, so a classifier never answers one.
    symptom: bool = False

    @property
    def family(self) -> str:
        return self.code.split(".", 1)[0]


def is_valid_code(code: str) -> bool:
    return len(code) <= CODE_MAX_LENGTH and CODE_RE.fullmatch(code) is not None


def in_family(code: str, family: str) -> bool:
    """Whether `code` is `family` itself or one of its descendants (`koji` holds `koji.timeout`)."""
    return code == family or code.startswith(family + ".")


class Catalogue(Mapping[str, Cause]):
    def __init__(self, causes: Mapping[str, Cause]) -> None:
        self._causes = dict(sorted(causes.items()))

    def __getitem__(self, code: str) -> Cause:
        return self._causes[code]

    def __iter__(self) -> Iterator[str]:
        return iter(self._causes)

    def __len__(self) -> int:
        return len(self._causes)

    def default_blame(self, code: str | None) -> Blame:
        cause = self._causes.get(code) if code else None
        return cause.blame if cause else Blame.UNKNOWN


def _parse(data: Mapping[str, Any], origin: str) -> dict[str, Cause]:
    causes: dict[str, Cause] = {}
    for code, entry in data.items():
        where = f"{origin}: cause {code!r}"
        if not is_valid_code(code):
            raise CatalogueError(
                f"{where}: a code is 'family.name' in lower case letters, digits and '_'"
            )
        if not isinstance(entry, dict):
            raise CatalogueError(f"{where}: expected a table with blame, retryable, description")
        unknown = set(entry) - {"blame", "retryable", "description", "symptom"}
        if unknown:
            raise CatalogueError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        blame = entry.get("blame")
        if not isinstance(blame, str) or blame.upper() not in Blame.__members__:
            raise CatalogueError(
                f"{where}: field 'blame' must be one of {', '.join(Blame)}, got {blame!r}"
            )
        retryable = entry.get("retryable")
        if not isinstance(retryable, bool):
            raise CatalogueError(f"{where}: field 'retryable' must be true or false")
        description = entry.get("description")
        if not isinstance(description, str) or not description.strip():
            raise CatalogueError(f"{where}: field 'description' must be a non-empty string")
        symptom = entry.get("symptom", False)
        if not isinstance(symptom, bool):
            raise CatalogueError(f"{where}: field 'symptom' must be true or false")
        text = " ".join(description.split())
        causes[code] = Cause(code, Blame(blame.upper()), retryable, text, symptom)
    return causes


def load_catalogue(extra_file: Path | None = None) -> Catalogue:
    """The shipped catalogue, with `extra_file` (if any) merged over it cause by cause."""
    shipped = resources.files(__package__).joinpath("catalogue.toml").read_text("utf-8")
    causes = _parse(tomllib.loads(shipped), "shipped catalogue")
    if extra_file is not None:
        try:
            data = tomllib.loads(extra_file.read_text("utf-8"))
        except OSError as exc:
            raise CatalogueError(f"{extra_file}: cannot read: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise CatalogueError(f"{extra_file}: not valid TOML: {exc}") from exc
        causes.update(_parse(data, str(extra_file)))
    return Catalogue(causes)


def render_markdown(catalogue: Catalogue) -> str:
    """docs/causes.md, generated so that the documentation cannot drift from the data."""
    lines = [
        "# Crash causes",
        "",
        "<!-- Generated from src/execdb/causes/catalogue.toml by"
        " `python -m execdb.causes > docs/causes.md`; do not edit by hand. -->",
        "",
        "A CRASHED report names a **cause**: a lower-case code `family.name`. Filters and rules",
        "match a whole family by prefix (`cause=koji` matches `koji.timeout`). When a report",
        "gives no blame, the cause's default blame below is used (UNKNOWN for a cause missing",
        "from the catalogue). A well-formed code that is not listed here is accepted and kept",
        "as sent, with a warning in the answer; a deployment can add causes without a migration",
        "through the `causes_file` setting (a TOML file in the same format as the shipped one).",
        "",
        "A cause marked *symptom* only says how a run ended (no status file, an executor's time",
        "limit), not what went wrong: the log may still show the failure underneath, and the",
        "[log classification](classification.md) never answers a symptom (`symptom = true` in",
        "the catalogue file).",
        "",
        "| cause | default blame | retryable | description |",
        "|---|---|---|---|",
    ]
    for cause in catalogue.values():
        retry = "yes" if cause.retryable else "no"
        symptom = " *Symptom.*" if cause.symptom else ""
        lines.append(f"| `{cause.code}` | {cause.blame} | {retry} | {cause.description}{symptom} |")
    return "\n".join(lines) + "\n"
