"""The shape of the code, checked: packages in layers with no import cycle between them, and
modules and functions small enough to read in one sitting (docs/architecture.md)."""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "execdb"
# Bottom to top; a package may import its own layer and those below (docs/architecture.md).
# The client is at the bottom: it imports nothing of the server, so executors can use it alone.
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    ("foundations", frozenset({"", "vocabulary", "client"})),
    (
        "plumbing",
        frozenset(
            {
                "ids",
                "errors",
                "prepared",
                "pipelined",
                "loopcalls",
                "paging",
                "db",
                "dbfaults",
                "http",
                "headers",
                "accesslog",
            }
        ),
    ),
    (
        "domains",
        frozenset(
            {"auth", "causes", "jobs", "automation", "stats", "classify", "metrics", "rules"}
        ),
    ),
    (
        "composition",
        frozenset({"config", "services", "worker", "migrations", "api", "web", "app", "cli"}),
    ),
)
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC)
        if relative.parts[0] == "migrations" and "versions" in relative.parts:
            continue
        yield ".".join(("execdb", *relative.with_suffix("").parts)), path


def _first_level(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(module: str, path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                yield f"{base}.{node.module}" if node.module else base
            elif node.module:
                yield node.module


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in _modules():
        here = _first_level(module)
        for imported in _imports(module, path):
            if imported.startswith("execdb.") and (there := _first_level(imported)) != here:
                graph[here].add(there)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle_between_first_level_packages() -> None:
    cycle = _cycle(package_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def _layer(package: str) -> int:
    for number, (_, packages) in enumerate(LAYERS):
        if package in packages:
            return number
    raise AssertionError(f"execdb.{package} is in no layer: add it to LAYERS and the docs")


def test_packages_import_only_their_own_layer_and_those_below() -> None:
    upward = [
        f"{here} ({LAYERS[_layer(here)][0]}) imports {there} ({LAYERS[_layer(there)][0]})"
        for here, imported in package_graph().items()
        for there in imported
        if _layer(there) > _layer(here)
    ]
    assert not upward, "; ".join(upward)


def test_the_client_imports_nothing_of_the_server() -> None:
    assert package_graph().get("client", set()) <= {"client"}


def test_the_cycle_check_finds_a_back_edge() -> None:
    graph = package_graph()
    graph["jobs"].add("app")  # app imports jobs: this edge would close a loop
    assert _cycle(graph) is not None


@pytest.mark.parametrize(("module", "path"), list(_modules()), ids=lambda v: str(v))
def test_modules_and_functions_stay_small(module: str, path: Path) -> None:
    source = path.read_text()
    assert source.count("\n") <= MAX_MODULE_LINES, f"{module} is over {MAX_MODULE_LINES} lines"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"{module}: functions over {MAX_FUNCTION_LINES} lines: {', '.join(long)}"
