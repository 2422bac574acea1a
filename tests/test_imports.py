"""The architecture's import rules, read from the source with ``ast`` (nothing is imported).

Every ``import`` counts, including those inside functions, so an import loop cannot hide
behind a function-local or bottom-of-file import.
"""
from __future__ import annotations

import ast
from pathlib import Path

import npdl

ROOT = Path(npdl.__file__).parent


def _modules() -> dict[str, Path]:
    """Dotted name -> source file, for every module of the npdl package (a package is its __init__)."""
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = ("npdl",) + path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _owner(name: str) -> str:
    """The npdl module that ``name`` (a module, or a name inside one) lives in."""
    while name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _imports(module: str) -> list[tuple[ast.stmt, str]]:
    """(statement, imported npdl module) for every import anywhere in ``module``'s source."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node, _owner(a.name)) for a in node.names if a.name.split(".")[0] == "npdl"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            if base.split(".")[0] != "npdl":
                continue
            # ``from npdl.core import tensor`` imports the module npdl.core.tensor
            found += [(node, f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else _owner(base))
                      for a in node.names]
    return found


def _graph() -> dict[str, set[str]]:
    return {m: {dep for _, dep in _imports(m)} - {m} for m in MODULES}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path [a, b, ..., a], or None; iterative DFS."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    for start in sorted(graph):
        if start in state:
            continue
        path, its = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while path:
            nxt = next(its[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                its.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                its.append(iter(sorted(graph[nxt])))
    return None


def test_the_module_list_is_complete():
    for name in ("npdl", "npdl.core.tensor", "npdl.core.ops.elementwise", "npdl.functional", "npdl.cli.app"):
        assert name in MODULES


def test_cycle_finder_finds_a_loop():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_anywhere_in_npdl():
    graph = _graph()
    assert graph["npdl.core.methods"] >= {"npdl.core.tensor", "npdl.core.ops.elementwise"}  # edges are seen
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_core_imports_nothing_else_of_npdl():
    outside = sorted((m, dep) for m in MODULES if m.startswith("npdl.core")
                     for _, dep in _imports(m) if not dep.startswith("npdl.core"))
    assert outside == []


def test_core_imports_sit_at_the_top_of_each_module():
    """The engine needs no function-local or bottom-of-file import: each comes before any def or class."""
    late = []
    for m, path in MODULES.items():
        if not m.startswith("npdl.core"):
            continue
        body = ast.parse(path.read_text(encoding="utf-8")).body
        top_level = {n.lineno for n in body if isinstance(n, (ast.Import, ast.ImportFrom))}
        first_def = min((n.lineno for n in body if isinstance(n, (ast.FunctionDef, ast.ClassDef))), default=None)
        for node, _ in _imports(m):
            if node.lineno not in top_level or (first_def is not None and node.lineno > first_def):
                late.append(f"{m}:{node.lineno}")
    assert late == []
