"""How the code is layered: the engine never imports the node library (it arrives through the plugin entry
point), and no modules import each other in a circle."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Known circles in code other issues own (the demo model's training scripts); remove when they are broken.
KNOWN_CIRCLES = ({"nodes.demo.sampling", "nodes.demo.ship", "nodes.demo.train"},)


def module_imports(packages: tuple[str, ...]) -> dict[str, set[str]]:
    """Module name -> the modules of ``packages`` it imports anywhere in its code (functions included)."""
    files = {}
    for package in packages:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            files[name] = path
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            found.update(t for t in targets if t in files and t != name)
        graph[name] = found
    return graph


def circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(group)

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_engine_never_imports_the_node_library():
    graph = module_imports(("nodegraph", "nodes"))
    offenders = {m: sorted(t for t in targets if t.split(".")[0] == "nodes")
                 for m, targets in graph.items() if m.startswith("nodegraph")}
    assert {m: t for m, t in offenders.items() if t} == {}


def test_no_modules_of_the_engine_or_the_node_library_import_each_other_in_a_circle():
    found = [c for c in circles(module_imports(("nodegraph", "nodes"))) if c not in KNOWN_CIRCLES]
    assert found == []
