"""The shape of the code (issue 38): no module of the package, benchmarks or tests over 400 lines, and
no import circle among the package's modules, found statically from their import statements, function-level
imports included (an import inside a function is still a dependency, only a later one)."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 400  # the project's standard: one idea per module
CHECKED_FOLDERS = ("perceptual_utils", "benchmarks", "tests")


def long_modules(root: Path, folders=CHECKED_FOLDERS, limit: int = MAX_LINES) -> list[str]:
    """``"path: N lines"`` of every ``.py`` file under ``root/folder`` longer than ``limit`` lines."""
    found = []
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            n = len(path.read_text(encoding="utf-8").splitlines())
            if n > limit:
                found.append(f"{path.relative_to(root).as_posix()}: {n} lines")
    return found


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """``{module: modules of ``package`` it imports}``, from every import statement anywhere in its file.

    ``from .a import b`` depends on the module ``a.b`` when there is one, else on ``a`` (a name defined
    there or re-exported by its ``__init__``)."""
    files = {module_name(p, root): p for p in sorted((root / package).rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".")
                    base = base if is_package else base[:-1]
                    base = base[:len(base) - (node.level - 1)]
                    origin = ".".join(base + ([node.module] if node.module else []))
                else:
                    origin = node.module or ""
                targets = [f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in files else origin
                           for alias in node.names]
            else:
                continue
            for target in targets:
                while target and target not in files:  # "package.module.attr": the deepest module named
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges.add(target)
        graph[name] = edges
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (``[a, b, ..., a]``) per strongly connected group of modules that import each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm (the package is small: recursion is fine)
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_cycle_through(group, graph) for group in groups]


def _cycle_through(group: list[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest path from the group's first module back to itself, inside the group (breadth first)."""
    start, members = group[0], set(group)
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v] & members):
            if w == start:
                return paths[v] + [start]
            if w not in paths:
                paths[w] = paths[v] + [w]
                queue.append(w)
    raise AssertionError(f"no cycle through {start}")  # unreachable for a strongly connected group


def test_no_module_is_over_400_lines():
    too_long = long_modules(ROOT)
    assert not too_long, "split by idea: " + "; ".join(too_long)


def test_the_package_has_no_import_cycle():
    graph = import_graph(ROOT, "perceptual_utils")
    assert "perceptual_utils.shipped_models" in graph["perceptual_utils.style.stylize"]  # the graph sees imports
    cycles = import_cycles(graph)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_checks_find_what_they_look_for(tmp_path):
    """A long file and a circle closed by an import inside a function are found."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from .low import helper\n")
    (pkg / "sub" / "low.py").write_text("def helper():\n    from ..high import top  # the circle\n    return top\n")
    (pkg / "high.py").write_text("from .sub import helper\n\ntop = 1\n" + "# filler\n" * 400)
    (pkg / "alone.py").write_text("import os\nfrom . import high\n")
    assert long_modules(tmp_path, folders=("pkg",)) == ["pkg/high.py: 403 lines"]
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.sub.low"] == {"pkg.high"} and graph["pkg.alone"] == {"pkg.high"}
    assert import_cycles(graph) == [["pkg.high", "pkg.sub", "pkg.sub.low", "pkg.high"]]
    (pkg / "sub" / "low.py").write_text("def helper():\n    return 1\n")
    assert import_cycles(import_graph(tmp_path, "pkg")) == []
