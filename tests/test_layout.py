"""The code's layout as ../shared/DESIGN.md fixes it: packages by job, no import cycle, nothing
imports the CLI, compiler never imports runtime, and every import hidden in a function says why.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_PACKAGES = {"cli", "training", "data", "parallel", "sweep", "storage"}
RUNTIME_TOP_MODULES = {"__init__.py", "__main__.py", "errors.py", "tasks.py"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {
    _module_name(p): p
    for package in ("compiler", "runtime")
    for p in sorted((ROOT / package).rglob("*.py"))
}


def _imports(path: Path, *, top_only: bool) -> list[tuple[int, str]]:
    """Return (line, module) of each import of one of our modules in `path`."""
    name = _module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_only else ast.walk(tree)
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [module]
            targets += [f"{module}.{a.name}" for a in node.names]
        else:
            continue
        found += [(node.lineno, t) for t in targets if t in MODULES and t != name]
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Return the strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

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
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return cycles


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [
        ["a", "b", "c"]
    ]


def test_no_import_cycle_at_import_time():
    graph = {m: {t for _, t in _imports(p, top_only=True)} for m, p in MODULES.items()}
    assert _cycles(graph) == []


def test_runtime_has_no_import_cycle_even_through_lazy_imports():
    graph = {
        m: {t for _, t in _imports(p, top_only=False) if t.startswith("runtime")}
        for m, p in MODULES.items()
        if m.startswith("runtime")
    }
    assert _cycles(graph) == []


def test_nothing_outside_the_cli_imports_it():
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {target}"
        for name, path in MODULES.items()
        if not name.startswith("runtime.cli") and name != "runtime.__main__"
        for line, target in _imports(path, top_only=False)
        if target.startswith("runtime.cli")
    ]
    assert offenders == []


def test_the_compiler_never_imports_the_runtime():
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {target}"
        for name, path in MODULES.items()
        if name.startswith("compiler")
        for line, target in _imports(path, top_only=False)
        if target.startswith("runtime")
    ]
    assert offenders == []


def test_runtime_is_grouped_by_job():
    folder = ROOT / "runtime"
    packages = {p.name for p in folder.iterdir() if (p / "__init__.py").is_file()}
    modules = {p.name for p in folder.glob("*.py")}
    assert packages == RUNTIME_PACKAGES
    assert modules == RUNTIME_TOP_MODULES


def _comment_above(lines: list[str], index: int) -> bool:
    """Return whether a comment line heads the group of imports that line `index` is in."""
    for line in reversed(lines[:index]):
        text = line.strip()
        if text.startswith("#"):
            return True
        if not text or text.startswith(("from ", "import ", ")")) or text.endswith(","):
            continue  # another import of the same group (or a wrapped one)
        return False
    return False


@pytest.mark.parametrize(
    "path", [p for p in MODULES.values()], ids=lambda p: str(p.relative_to(ROOT))
)
def test_every_import_inside_a_function_says_why(path):
    lines = path.read_text(encoding="utf-8").splitlines()
    silent = []
    for node in ast.walk(ast.parse("\n".join(lines))):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, (ast.Import, ast.ImportFrom)):
                own = lines[inner.lineno - 1]
                if "#" not in own and not _comment_above(lines, inner.lineno - 1):
                    silent.append(f"{inner.lineno}: {own.strip()}")
    assert silent == [], (
        "an import inside a function needs a comment saying why it is not at the top "
        "(it keeps torch out of a command, breaks a cycle, ...)"
    )
