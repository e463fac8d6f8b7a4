"""The import graph of citytwin: no cycles, and viewer/ reached from scenarios/ only via cli/.

The package sources are parsed with ``ast`` (nothing is imported): every ``import`` and
``from … import`` counts, at module level, inside functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The repo's top-level folders that install as ``citytwin.<name>`` (pyproject package-dir).
PACKAGES = ("alerting", "assets3d", "physics", "scenarios", "sensors_sim", "twin", "viewer")
#: Modules that must not import ``citytwin.viewer`` (everything of scenarios/ but its CLI).
NO_VIEWER = tuple(f"citytwin.scenarios.{p}" for p in ("spec", "run", "drill", "study", "replay"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["citytwin", *parts])


def source_modules() -> dict[str, Path]:
    """Every module of the package sources: dotted name → file."""
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def imported(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """The dotted names one import statement names (relative imports resolved)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    assert isinstance(node, ast.ImportFrom)
    base = node.module or ""
    if node.level:
        parts = module.split(".")
        keep = len(parts) - node.level + (1 if is_package else 0)
        base = ".".join(parts[:keep] + ([base] if base else []))
    return [base] + [f"{base}.{a.name}" for a in node.names]


def import_graph() -> dict[str, set[str]]:
    """Module → the citytwin modules it imports (a name resolves to the longest module)."""
    modules = source_modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            names = imported(node, mod, path.name == "__init__.py")
            if isinstance(node, ast.ImportFrom):  # `from a.b import c`: module a.b.c or a.b
                base, *members = names
                targets = [m for m in members if m in modules] or [base]
            else:
                targets = names
            for name in targets:
                while name and name not in modules:
                    name = name.rpartition(".")[0]
                if name and name != mod:
                    graph[mod].add(name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    component.append(m)
                    if m == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def cycle_path(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One concrete cycle through the component's first module: a → b → … → a."""
    members, start = set(component), component[0]
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in sorted(graph[node] & members):
            if child == start:
                return [*paths[node], start]
            if child not in paths:
                paths[child] = [*paths[node], child]
                queue.append(child)
    return component


def test_the_graph_sees_module_and_function_level_imports():
    graph = import_graph()
    assert "citytwin.viewer.html" in graph["citytwin.viewer.report"]          # module level
    assert "citytwin.scenarios.cli.study" in graph["citytwin.scenarios.cli.main"]  # in a function


def test_no_import_cycles():
    graph = import_graph()
    found = [" → ".join(cycle_path(graph, c)) for c in cycles(graph)]
    assert not found, "import cycles:\n  " + "\n  ".join(found)


def test_only_the_cli_of_scenarios_imports_viewer():
    bad = sorted(f"{m} → {t}" for m, targets in import_graph().items()
                 if m.startswith(NO_VIEWER) for t in targets if t.startswith("citytwin.viewer"))
    assert not bad, "scenarios/ outside cli/ imports viewer/:\n  " + "\n  ".join(bad)


def test_cycle_finder_reports_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    [component] = cycles(graph)
    assert component == ["a", "b", "c"]
    assert cycle_path(graph, component) == ["a", "b", "c", "a"]
