"""The import graph of metrics/, model/ and studies/: no cycles, no upward imports.

Function-local imports count: a lazy import that closes a cycle is still a module in the
wrong place (DESIGN.md, 'Dependencies point one way').
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("metrics", "model", "studies", "workbench")
# What each package may import from the project (workbench -> studies -> (metrics, model)).
ALLOWED = {
    "metrics": {"metrics"},
    "model": {"model"},
    "studies": {"studies", "metrics", "model"},
    "workbench": set(PACKAGES),
}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def _imports(name: str, path: Path) -> list[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            targets += [base] + [f"{base}.{alias.name}" for alias in node.names]
    return targets


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports (top-level and function-local)."""
    modules = _modules()

    def resolve(target: str) -> str | None:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        return target or None

    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for target in _imports(name, path):
            hit = resolve(target)
            # a package's own __init__ importing its submodules is not an edge back
            if hit and hit != name and not name.startswith(hit + "."):
                graph[name].add(hit)
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm; the components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles_in_the_domain_packages() -> None:
    graph = import_graph()
    domain = {
        name: {t for t in targets if not t.startswith("workbench")}
        for name, targets in graph.items()
        if not name.startswith("workbench")
    }
    assert strongly_connected(domain) == []


def test_dependencies_point_one_way() -> None:
    upward = [
        f"{name} -> {target}"
        for name, targets in import_graph().items()
        for target in targets
        if target.split(".")[0] not in ALLOWED[name.split(".")[0]]
    ]
    assert upward == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The check itself can fail: a two-module and a three-module cycle are both found."""
    graph = {"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"e"}, "e": {"c"}, "f": {"a"}}
    assert sorted(strongly_connected(graph)) == [["a", "b"], ["c", "d", "e"]]
