"""The package's import graph is layered: no two of its parts import each other.

Read from the source with `ast` (imports inside functions included, since a lazy
import is still a dependency), so the checks see every import, not only those that
happen to run.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import jgan

PACKAGE_DIR = Path(jgan.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(module: str, path: Path) -> set[str]:
    """The jgan modules (or names in them) that `module` imports, anywhere in its body."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from jgan import eval` imports the module jgan.eval: keep both spellings.
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return {n for n in names if n == "jgan" or n.startswith("jgan.")}


def _imports() -> dict[str, set[str]]:
    return {_module_name(p): _imported(_module_name(p), p)
            for p in sorted(PACKAGE_DIR.rglob("*.py"))}


def _part(name: str) -> str:
    """The part of jgan a module belongs to: its top-level subpackage or root module."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "jgan (__init__)"


def _existing_part(name: str, parts: set[str]) -> str | None:
    # `from jgan import sharding` names a module; `from jgan.x import y` may name a
    # function, so an imported name counts only where its part exists.
    part = _part(name)
    return part if part in parts else None


def _part_edges(imports: dict[str, set[str]]) -> dict[tuple[str, str], set[str]]:
    """(importing part, imported part) -> the module-level imports behind it."""
    parts = {_part(m) for m in imports}
    edges = defaultdict(set)
    for module, names in imports.items():
        for name in names:
            target = _existing_part(name, parts)
            if target is not None and target != _part(module) and name != "jgan":
                edges[_part(module), target].add(f"{module} imports {name}")
    return edges


def _cycles(edges) -> list[list[str]]:
    """The strongly connected components of more than one part (Tarjan's algorithm)."""
    graph = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def test_the_import_reader_sees_lazy_and_relative_imports(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("import os\nfrom jgan.core import game\n"
                    "def f():\n    from jgan.train.builders import build_game\n"
                    "    from . import sibling\n")
    assert _imported("jgan.eval.m", path) == {
        "jgan.core", "jgan.core.game", "jgan.train.builders",
        "jgan.train.builders.build_game", "jgan.eval", "jgan.eval.sibling"}


def test_the_cycle_finder_names_every_part_of_a_cycle():
    edges = {("eval", "train"): set(), ("train", "eval"): set(), ("train", "core"): set(),
             ("a", "b"): set(), ("b", "c"): set(), ("c", "a"): set()}
    assert sorted(_cycles(edges)) == [["a", "b", "c"], ["eval", "train"]]
    assert _cycles({("train", "eval"): set(), ("eval", "core"): set()}) == []


def test_eval_imports_nothing_of_train():
    # The trainer evaluates, so train imports eval; eval must not import train back.
    offenders = sorted(f"{module} imports {name}" for module, names in _imports().items()
                       if module.startswith("jgan.eval")
                       for name in names if name == "jgan.train" or name.startswith("jgan.train."))
    assert not offenders, "jgan.eval must not import jgan.train:\n  " + "\n  ".join(offenders)


def test_no_two_parts_of_the_package_import_each_other():
    edges = _part_edges(_imports())
    assert ("train", "eval") in edges  # the graph is read at all: the trainer evaluates
    cycles = _cycles(edges)
    report = []
    for cycle in cycles:
        report.append(f"cycle between {', '.join(cycle)}:")
        report += [f"  {line}" for a in cycle for b in cycle if (a, b) in edges
                   for line in sorted(edges[a, b])]
    assert not cycles, "\n".join(report)
