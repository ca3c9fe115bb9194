"""The import graph of pixseek's packages: no cycle between modules, and every import points down
the layers (`web -> indexer -> search`, `web -> search`, `migrations -> search.catalog`).

The graph is read statically with `ast`, so it holds every import a module can execute: the ones at
module level and the ones inside functions (a function-local import that dodges a cycle at import
time is still a cycle between the two modules). Imports under `if TYPE_CHECKING:` never run, so
they are left out of the cycle check; they still count for the layers, because a lower layer that
names a higher one's types depends on it all the same.

An import resolves to the most specific module it names: `from search.models import registry`
is an edge to `search.models.registry`, `from search.models import Encoder` one to the package
`search.models` (its `__init__`). Parent packages that Python runs on the way are not edges.
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

PACKAGES = ("search", "indexer", "web", "migrations")

# Which first-party packages (or subpackages) each package may import, besides itself.
ALLOWED_FIRST_PARTY: Mapping[str, tuple[str, ...]] = {
    "search": (),
    "indexer": ("search",),
    "web": ("indexer", "search"),
    "migrations": ("search.catalog",),
}

# Third-party packages a layer must not import: the engine and the indexer know nothing of HTTP.
FORBIDDEN_THIRD_PARTY: Mapping[str, tuple[str, ...]] = {
    "search": ("fastapi", "starlette", "uvicorn"),
    "indexer": ("fastapi", "starlette", "uvicorn"),
}


@dataclass(frozen=True)
class Import:
    """One import statement's edge: `importer` imports `target` at `line`."""

    importer: str
    target: str
    line: int
    type_only: bool


def _package_root(package: str) -> Path:
    """Where the installed package lives (find_spec of a top-level name imports nothing)."""
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.submodule_search_locations, f"{package} is not installed"
    return Path(next(iter(spec.submodule_search_locations)))


@cache
def module_files() -> dict[str, Path]:
    """Every module of the four packages, by dotted name (a package by its `__init__.py`)."""
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        root = _package_root(package)
        for path in sorted(root.rglob("*.py")):
            parts = (package, *path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def _resolve(name: str, known: Iterable[str]) -> str:
    """The most specific known module `name` lies in, or `name` itself (a third-party one)."""
    known_set = set(known)
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known_set:
            return candidate
    return name


def _from_base(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a `from ... import` reads from, relative levels resolved."""
    if node.level == 0:
        return node.module or ""
    package = importer if is_package else importer.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def _is_type_checking(test: ast.expr) -> bool:
    """`if TYPE_CHECKING:` or `if typing.TYPE_CHECKING:`."""
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _walk(node: ast.AST, type_only: bool = False) -> Iterator[tuple[ast.AST, bool]]:
    """Every node under `node`, with whether it sits in the body of an `if TYPE_CHECKING:`."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            yield child.test, type_only
            for statement in child.body:
                yield statement, True
                yield from _walk(statement, True)
            for statement in child.orelse:
                yield statement, type_only
                yield from _walk(statement, type_only)
            continue
        yield child, type_only
        yield from _walk(child, type_only)


def imports_of(importer: str, source: str, is_package: bool, known: Iterable[str]) -> list[Import]:
    """The edges of one module's source: module-level, function-level and type-only imports."""
    known_set = set(known)
    edges: list[Import] = []
    for node, type_only in _walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [_resolve(alias.name, known_set) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _from_base(importer, is_package, node)
            targets = [
                f"{base}.{alias.name}"
                if f"{base}.{alias.name}" in known_set
                else _resolve(base, known_set)
                for alias in node.names
            ]
        else:
            continue
        edges.extend(Import(importer, target, node.lineno, type_only) for target in targets)
    return edges


@cache
def import_graph() -> tuple[Import, ...]:
    """All the edges out of every module of the four packages."""
    modules = module_files()
    edges: list[Import] = []
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        edges.extend(imports_of(name, path.read_text(encoding="utf-8"), is_package, modules))
    return tuple(edges)


def _reachable(graph: Mapping[str, set[str]], start: str) -> set[str]:
    """Every module `start` reaches through one or more imports."""
    seen: set[str] = set()
    frontier = [start]
    while frontier:
        node = frontier.pop()
        for successor in graph.get(node, set()) - seen:
            seen.add(successor)
            frontier.append(successor)
    return seen


def _strongly_connected(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The groups of modules that each reach one another (a few hundred modules: brute force)."""
    reach = {node: _reachable(graph, node) for node in graph}
    components: list[list[str]] = []
    placed: set[str] = set()
    for node in sorted(graph):
        if node in placed or node not in reach[node]:
            continue
        component = sorted(other for other in reach[node] if node in reach.get(other, set()))
        placed.update(component)
        if len(component) > 1:
            components.append(component)
    return components


def _one_cycle(graph: Mapping[str, set[str]], component: list[str]) -> list[str]:
    """A shortest cycle through the component's first module, as the list of modules on it."""
    members = set(component)
    start = component[0]
    paths: dict[str, list[str]] = {start: [start]}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for successor in sorted(graph.get(node, set()) & members):
                if successor == start:
                    return [*paths[node], start]
                if successor not in paths:
                    paths[successor] = [*paths[node], successor]
                    following.append(successor)
        frontier = following
    raise AssertionError(f"no cycle through {start} in {component}")


def find_cycles(edges: Iterable[Import]) -> list[list[str]]:
    """One cycle per tangle of modules that import each other (type-only imports left out)."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        if not edge.type_only and edge.target != edge.importer:
            graph.setdefault(edge.importer, set()).add(edge.target)
    first_party = set(module_files())
    graph = {node: targets & first_party for node, targets in graph.items()}
    return [_one_cycle(graph, component) for component in _strongly_connected(graph)]


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def layer_violations(edges: Iterable[Import], package: str) -> list[str]:
    """The imports out of `package` that point against the layers, as readable lines."""
    allowed = (package, *ALLOWED_FIRST_PARTY[package])
    forbidden = FORBIDDEN_THIRD_PARTY.get(package, ())
    problems: list[str] = []
    for edge in edges:
        if not _within(edge.importer, package):
            continue
        top = edge.target.partition(".")[0]
        if top in PACKAGES and not any(_within(edge.target, ok) for ok in allowed):
            problems.append(f"{edge.importer}:{edge.line} imports {edge.target}")
        elif top in forbidden:
            problems.append(f"{edge.importer}:{edge.line} imports {edge.target} (HTTP is web's)")
    return sorted(set(problems))


def test_the_graph_covers_every_package() -> None:
    modules = module_files()
    for package in PACKAGES:
        assert package in modules, f"{package}/__init__.py was not found"
    edges = import_graph()
    importers = {edge.importer.partition(".")[0] for edge in edges}
    assert importers >= {"search", "indexer", "web"}


def test_imports_resolve_to_the_most_specific_module() -> None:
    known = ["pkg", "pkg.sub", "pkg.sub.leaf", "pkg.other"]
    source = (
        "import os\n"
        "from . import leaf\n"
        "from .leaf import Thing\n"
        "from .. import other\n"
        "from pkg.sub import name_in_init\n"
        "import pkg.sub.leaf.attribute\n"
    )
    edges = imports_of("pkg.sub.mod", source, is_package=False, known=known)
    assert [edge.target for edge in edges] == [
        "os",
        "pkg.sub.leaf",
        "pkg.sub.leaf",
        "pkg.other",
        "pkg.sub",
        "pkg.sub.leaf",
    ]
    in_init = imports_of("pkg.sub", "from . import leaf\n", is_package=True, known=known)
    assert [edge.target for edge in in_init] == ["pkg.sub.leaf"]


def test_function_level_imports_count_and_type_checking_ones_are_marked() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from b import Typed\n"
        "else:\n"
        "    import c\n"
        "def late():\n"
        "    import d\n"
    )
    edges = imports_of("a", source, is_package=False, known=["a", "b", "c", "d"])
    assert {(edge.target, edge.type_only) for edge in edges} == {
        ("typing", False),
        ("b", True),
        ("c", False),
        ("d", False),
    }


def test_cycle_finder_finds_a_cycle_and_ignores_type_only_edges() -> None:
    known = module_files()
    first, second, third = sorted(known)[:3]
    edges = [
        Import(first, second, 1, type_only=False),
        Import(second, third, 1, type_only=False),
        Import(third, first, 1, type_only=False),
    ]
    assert find_cycles(edges) == [[first, second, third, first]]
    type_only_back = [*edges[:2], Import(third, first, 1, type_only=True)]
    assert find_cycles(type_only_back) == []


def test_no_import_cycles() -> None:
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles between modules:\n" + "\n".join(
        " -> ".join(cycle) for cycle in cycles
    )


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_follow_the_layers(package: str) -> None:
    problems = layer_violations(import_graph(), package)
    allowed = ", ".join(ALLOWED_FIRST_PARTY[package]) or "nothing"
    assert not problems, f"{package} may import only {allowed} of ours:\n" + "\n".join(problems)
