"""The package's import graph has no cycle: every layer can be read, tested and replaced
from the bottom up. Imports inside ``if TYPE_CHECKING:`` are annotations only and are
left out; every other import counts, a function-local one included (hiding a cycle in a
function is still a cycle)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "traefikservice_asgi"
NAME = PACKAGE.name


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that ``path`` imports at run time."""
    name = _module_name(path)
    return _imported_by(path.read_text(), name, path.name == "__init__.py", modules)


def _imported_by(source: str, name: str, is_package: bool, modules: set[str]) -> set[str]:
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source, name))
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(paths)
    return {name: _imported(path, modules) for name, path in paths.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def _without_package_inits(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Edges into a package's ``__init__`` that only re-export (``from .x import y`` in
    ``pkg/__init__.py``) make every child look circular with its parent: follow them to
    the modules they name instead."""
    inits = {name for name in graph if (PACKAGE.parent / name.replace(".", "/")).is_dir()}
    resolved: dict[str, set[str]] = {}
    for name, targets in graph.items():
        edges: set[str] = set()
        for target in targets:
            if target in inits and not name.startswith(target + "."):
                edges |= {t for t in graph[target] if t.startswith(target + ".")} or {target}
            elif target not in inits:
                edges.add(target)
        resolved[name] = edges
    return resolved


def test_the_package_has_no_import_cycle() -> None:
    assert cycles(_without_package_inits(import_graph())) == []


def test_the_cycle_finder_sees_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_type_checking_imports_are_left_out_and_function_local_ones_count() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from ..runtime import Runtime\n"
        "def f():\n"
        "    from .. import builder\n"
    )
    modules = {f"{NAME}.runtime", f"{NAME}.builder"}
    found = _imported_by(source, f"{NAME}.proxy.http", False, modules)
    assert found == {f"{NAME}.builder"}
