"""The README's and docs' examples run as written, in order, as a new user runs them.

Each file's ```sh and ```python blocks become one shell session against a real server on the
embedded SQLite database: shell blocks as they are (with the real `curl`), Python blocks
through the venv's interpreter. The only change made to them is the server's address, since
the test server listens on a port of its own. A block that cannot run (a placeholder host, a
benchmark, a fragment of a Buildbot master) says so in the docs with an HTML comment just
before it, `<!-- not run: why -->`; those, and only those, are skipped.

A comment line in a shell block that is a JSON object (`# {"message": "..."}`) is the answer
the docs promise: it must appear in what the block printed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from execdb.config import Settings
from tests.live import LiveServer, prepare

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DOCUMENTED_URL = "http://127.0.0.1:5003"
NOT_RUN = re.compile(r"<!--\s*not run:\s*(?P<why>.+?)\s*-->")
FENCE = re.compile(r"^```(?P<lang>\w*)\s*$")
MARKER = "@@example"
END = "END_OF_PYTHON_EXAMPLE"

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="the examples use curl")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    lang: str
    text: str
    skipped: str | None

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """The file's shell and Python blocks in order, each with why it is not run, if it is not."""
    found: list[Block] = []
    lines = path.read_text().splitlines()
    n = 0
    while n < len(lines):
        fence = FENCE.match(lines[n])
        if not fence:
            n += 1
            continue
        start = n
        n += 1
        while n < len(lines) and not lines[n].startswith("```"):
            n += 1
        lang = fence["lang"]
        if lang in ("sh", "python"):
            before = next((lines[i] for i in range(start - 1, -1, -1) if lines[i].strip()), "")
            note = NOT_RUN.search(before)
            text = "\n".join(lines[start + 1 : n])
            found.append(Block(path, start + 1, lang, text, note["why"] if note else None))
        n += 1
    return found


def session(runnable: list[Block], url: str) -> str:
    """One bash script running the blocks in turn, each announced on stdout and stderr."""
    parts = ["set -e"]
    for number, block in enumerate(runnable):
        text = block.text.replace(DOCUMENTED_URL, url)
        parts.append(f'printf "\\n{MARKER} {number}\\n"; printf "\\n{MARKER} {number}\\n" >&2')
        if block.lang == "sh":
            parts.append(text)
        else:
            parts.append(f"\"$EXAMPLE_PYTHON\" - <<'{END}'\n{text}\n{END}")
    return "\n".join(parts) + "\n"


def outputs(text: str) -> dict[int, str]:
    """What each block printed, by its number."""
    found: dict[int, str] = {}
    for part in text.split(f"\n{MARKER} ")[1:]:
        number, _, printed = part.partition("\n")
        found[int(number)] = printed
    return found


def json_objects(text: str) -> list[object]:
    """The JSON objects in what a block printed (curl ends none with a newline)."""
    decoder = json.JSONDecoder()
    found, at = [], text.find("{")
    while at != -1:
        try:
            value, end = decoder.raw_decode(text, at)
        except ValueError:
            end = at + 1
        else:
            found.append(value)
        at = text.find("{", end)
    return found


def promised_answers(block: Block) -> list[dict[str, object]]:
    promised = []
    for line in block.text.splitlines():
        comment = line.strip().removeprefix("#").strip()
        if line.strip().startswith("#") and comment.startswith("{"):
            try:
                answer = json.loads(comment)
            except ValueError:
                continue
            if isinstance(answer, dict):
                promised.append(answer)
    return promised


@pytest.fixture
def docs_server(tmp_path: Path) -> tuple[LiveServer, Path]:
    """A server on the embedded database of a data directory, as `execdb serve` runs it."""
    data_dir = tmp_path / "data"
    settings = Settings(data_dir=data_dir, access_log=False, worker_in_serve=False)
    server = LiveServer(settings, prepare(settings)).start()
    yield server, data_dir
    server.stop()
    server.services.db.close()


def run_examples(
    path: Path, server: LiveServer, data_dir: Path, tmp_path: Path
) -> tuple[list[Block], dict[int, str], dict[int, str]]:
    runnable = [b for b in blocks(path) if b.skipped is None]
    workdir = tmp_path / "checkout"
    workdir.mkdir()
    # The README's commands are run from a checkout with its .venv.
    (workdir / ".venv").symlink_to(Path(sys.executable).parents[1])
    bin_dir = Path(sys.executable).parent
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("EXECDB_") and k != "XDG_DATA_HOME"
    }
    env |= {
        "HOME": str(tmp_path),
        "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
        "EXECDB_DATA_DIR": str(data_dir),
        "EXAMPLE_PYTHON": sys.executable,
    }
    done = subprocess.run(
        ["bash", "-c", session(runnable, server.url)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out, err = outputs(done.stdout), outputs(done.stderr)
    if done.returncode != 0:
        failed = runnable[max(out, default=0)]
        pytest.fail(
            f"the example at {failed.where} failed (exit {done.returncode}):\n"
            f"{failed.text}\n--- stdout\n{out.get(max(out, default=0), '')}\n"
            f"--- stderr\n{err.get(max(err, default=0), '')}"
        )
    for number, block in enumerate(runnable):
        for answer in promised_answers(block):
            printed = json_objects(out[number])
            assert answer in printed, f"{block.where} promises {answer}, got {out[number]}"
    return runnable, out, err


def test_every_document_marks_the_examples_it_cannot_run() -> None:
    """A marked block says why; the walk-through of the README is not marked away."""
    for path in DOCUMENTS:
        for block in blocks(path):
            assert block.skipped is None or len(block.skipped) > 5, block.where
    readme = blocks(ROOT / "README.md")
    walk_through = [b for b in readme if "$API" in b.text or "from execdb.client" in b.text]
    assert len(walk_through) >= 4
    assert all(b.skipped is None for b in walk_through)


def test_the_readme_runs_as_written(docs_server: tuple[LiveServer, Path], tmp_path: Path) -> None:
    server, data_dir = docs_server
    runnable, _, err = run_examples(ROOT / "README.md", server, data_dir, tmp_path)
    assert any(b.lang == "python" for b in runnable)
    with server.client() as client:
        jobs = client.get("/api/v1/jobs", params={"limit": 100}).json()["data"]
        histories = [client.get(f"/api/v1/jobs/{j['uuid']}/events").json()["data"] for j in jobs]
    # The curl walk-through's job and the Python example's, each crashed by koji.
    assert len(jobs) == 2, jobs
    assert {(j["state"], j["cause"]) for j in jobs} == {("CRASHED", "koji.timeout")}
    assert all(e["outcome"] == "accepted" for history in histories for e in history)
    # The token was made in the server's database, and the command said which one.
    token_block = next(n for n, b in enumerate(runnable) if "token create" in b.text)
    assert str(data_dir / "execdb.sqlite") in err[token_block]


@pytest.mark.parametrize(
    "path",
    [p for p in DOCUMENTS[1:] if any(b.skipped is None for b in blocks(p))],
    ids=lambda p: p.name,
)
def test_the_docs_examples_run_as_written(
    path: Path, docs_server: tuple[LiveServer, Path], tmp_path: Path
) -> None:
    server, data_dir = docs_server
    run_examples(path, server, data_dir, tmp_path)
