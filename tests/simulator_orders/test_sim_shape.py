"""The simulator package reads top-down: no import circles, no reach back into the server."""

from __future__ import annotations

import ast
from pathlib import Path

import ibkr_mcp.simulator as pkg

ROOT = Path(pkg.__file__).parent
PREFIX = "ibkr_mcp.simulator"
#: Known back-references into the server: none left (the drills, control channel and state file
#: see it through ``drill_host.py``, as the handlers do through ``host.py``).
KNOWN_BACK_EDGES: set[tuple[str, str]] = set()


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join([PREFIX, *parts])


def _graph() -> dict[str, set[str]]:
    """Every intra-package import, TYPE_CHECKING ones included (they are reading order too)."""
    modules = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for target in targets:
                if target in modules and target != name and target != PREFIX:
                    graph[name].add(target)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def test_no_import_circles_in_the_simulator() -> None:
    graph = _graph()
    for src, dst in KNOWN_BACK_EDGES:
        graph.get(src, set()).discard(dst)
    assert f"{PREFIX}.server" in graph and f"{PREFIX}.session" in graph
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_handlers_never_import_the_server_or_the_session() -> None:
    graph = _graph()
    handlers = [m for m in graph if m.startswith(f"{PREFIX}.handlers.")]
    assert len(handlers) >= 4
    for mod in handlers:
        assert not graph[mod] & {f"{PREFIX}.server", f"{PREFIX}.session"}, mod


def test_the_simulator_imports_nothing_of_the_servers_domain() -> None:
    for path in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("ibkr_mcp.") or node.module.startswith(PREFIX), (
                    f"{path.name} imports {node.module}"
                )


def test_files_stay_small() -> None:
    for path in ROOT.rglob("*.py"):
        assert len(path.read_text().splitlines()) <= 520, path.name
