"""The code stays lint- and type-clean, simple enough to read, and free of import cycles.

Each check names what to fix: the ruff or mypy findings, the most complex functions, the
modules of a cycle, the server modules that grew too long.
"""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from radon.complexity import cc_visit
from radon.visitors import Function

from support import REPO

# Folder of each product package and its import name.
PACKAGES = {"server": "facestream.server", "engines": "facestream.engines", "client": "facestream.client"}
MAX_COMPLEXITY = 15
MAX_SERVER_MODULE_LINES = 300


def product_files(folder: str | None = None) -> Iterator[Path]:
    for name in [folder] if folder else PACKAGES:
        yield from sorted(p for p in (REPO / name).rglob("*.py") if "__pycache__" not in p.parts)


def test_ruff_is_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise",
                             str(REPO)], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, ("ruff findings (fix the code; `ruff check --fix` handles some):\n"
                                    f"{result.stdout}{result.stderr}")


def test_mypy_is_clean(tmp_path: Path):
    # The editable install's import hook hides facestream.* from mypy: check a tree of links that
    # lays the folders out as the installed package.
    tree = tmp_path / "src" / "facestream"
    tree.mkdir(parents=True)
    for folder in (*PACKAGES, "benchmarks"):
        (tree / folder).symlink_to(REPO / folder, target_is_directory=True)
    (tree / "proto").symlink_to(REPO / "proto" / "facestream" / "v1", target_is_directory=True)
    packages = [arg for name in PACKAGES.values() for arg in ("-p", name)]
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml"),
         "--cache-dir", str(tmp_path / "mypy-cache"), *packages],
        cwd=tmp_path, env={**os.environ, "MYPYPATH": str(tree.parent)}, capture_output=True, text=True)
    findings = result.stdout.replace(f"src{os.sep}facestream{os.sep}", "")  # paths as in the repository
    assert result.returncode == 0, f"mypy findings:\n{findings}{result.stderr}"


def _functions(blocks: list[Function]) -> Iterator[Function]:
    for block in blocks:
        yield block
        yield from _functions(block.closures)


def test_no_function_is_too_complex():
    found = []
    for path in product_files():
        blocks = [b for b in cc_visit(path.read_text()) if isinstance(b, Function)]
        found += [(f.complexity, f"{path.relative_to(REPO)}:{f.lineno} {f.fullname}") for f in _functions(blocks)]
    worst = sorted(found, reverse=True)
    over = [f"{where} (complexity {cc})" for cc, where in worst if cc > MAX_COMPLEXITY]
    assert not over, (f"split these functions until each has cyclomatic complexity <= {MAX_COMPLEXITY}:\n"
                      + "\n".join(over))


def _module_name(path: Path) -> tuple[str, bool]:
    """facestream.* name of a product file, and whether it is a package's __init__."""
    rel = path.relative_to(REPO)
    parts = [PACKAGES[rel.parts[0]], *rel.with_suffix("").parts[1:]]
    is_package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_package else parts), is_package


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_imports(nodes: Iterable[ast.AST]) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement at any depth, except those under `if TYPE_CHECKING:`."""
    for node in nodes:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _runtime_imports(node.orelse)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        else:
            yield from _runtime_imports(ast.iter_child_nodes(node))


def import_graph() -> dict[str, set[str]]:
    """Module -> the product modules it imports.

    `from x import y` counts as importing x.y when that is a module, else x. The implicit import
    of a package's __init__ before its submodules is not an edge: only what the code names is.
    """
    files = {_module_name(p): p for p in product_files()}
    modules = {name for name, _ in files}
    graph: dict[str, set[str]] = {}
    for (name, is_package), path in files.items():
        package = name if is_package else name.rpartition(".")[0]
        targets = []
        for node in _runtime_imports([ast.parse(path.read_text())]):
            if isinstance(node, ast.Import):
                targets += [a.name for a in node.names]
                continue
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            targets += [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        graph[name] = set()
        for target in targets:
            while target not in modules and "." in target:
                target = target.rpartition(".")[0]
            if target in modules and target != name:
                graph[name].add(target)
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            nxt = next((w for w in edges if w not in index or w in on_stack), None)
            if nxt is not None:
                if nxt in index:
                    low[node] = min(low[node], index[nxt])
                else:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def test_strongly_connected_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert strongly_connected(graph) == [["a", "b", "c"]]


def test_no_import_cycles():
    graph = import_graph()
    assert "facestream.client.api" in graph["facestream.client"], "the import graph lost the package imports"
    cycles = strongly_connected(graph)
    described = ["; ".join(f"{m} imports {', '.join(sorted(graph[m] & set(c)))}" for m in c) for c in cycles]
    assert not cycles, ("these modules import each other; move what they share into a module both import:\n"
                        + "\n".join(described))


def test_server_modules_stay_short():
    long = [(n, p.relative_to(REPO)) for p in product_files("server")
            if (n := len(p.read_text().splitlines())) > MAX_SERVER_MODULE_LINES]
    assert not long, (f"split these server modules (at most {MAX_SERVER_MODULE_LINES} lines each):\n"
                      + "\n".join(f"{path}: {n} lines" for n, path in sorted(long, reverse=True)))
