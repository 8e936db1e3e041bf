"""The architecture as a test: imports only point down the layers, and no two packages import each other.

    cli -> serve -> tasks, report -> training, compression, evaluation -> artifacts
        -> tokenization, data, interop -> models -> nn -> errors, files, config, weights, sharding, cpu_features

Every import counts, at module level or inside a function (a lazy import is still a dependency); only the
package's `__init__` (the public API) and `__main__` may import from anywhere. Within one layer, units may use
each other as long as no two of them end up importing each other (a cycle at package level).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "encoderlab"
LAYERS: list[set[str]] = [
    {"errors", "files", "config", "weights", "sharding", "cpu_features"},
    {"nn"},
    {"models"},
    {"tokenization", "data", "interop"},
    {"artifacts"},
    {"training", "compression", "evaluation"},
    {"tasks", "report"},
    {"serve"},
    {"cli"},
]
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}
ENTRY_POINTS = {"__init__", "__main__"}


def unit_of(module: str) -> str:
    """`encoderlab.tasks.classify` -> `tasks`; `encoderlab.errors` -> `errors`."""
    return module.split(".")[1] if module.count(".") else "__init__"


def imports(path: Path, root: Path = PACKAGE) -> set[str]:
    """The encoderlab modules `path` imports (absolute names), wherever the import statement is."""
    relative = path.relative_to(root.parent).with_suffix("")
    parts = list(relative.parts)
    package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("encoderlab")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                names = [target] if node.module else [f"{target}.{alias.name}" for alias in node.names]
                found |= set(names)
            elif node.module and node.module.startswith("encoderlab"):
                found.add(node.module)
    return {name for name in found if name != "encoderlab"}


def edges(root: Path = PACKAGE) -> dict[tuple[str, str], list[str]]:
    """(importing unit, imported unit) -> the files that make that edge."""
    out: dict[tuple[str, str], list[str]] = {}
    for path in sorted(root.rglob("*.py")):
        source = unit_of(".".join(path.relative_to(root.parent).with_suffix("").parts))
        for target in imports(path, root):
            unit = unit_of(target)
            if unit != source:
                out.setdefault((source, unit), []).append(str(path.relative_to(root)))
    return out


def upward_imports(root: Path = PACKAGE) -> list[str]:
    return sorted(f"{files[0]} ({source}) imports {target}" for (source, target), files in edges(root).items()
                  if source not in ENTRY_POINTS and target not in ENTRY_POINTS and RANK[target] > RANK[source])


def test_every_unit_has_a_layer():
    units = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
             if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists()))}
    missing = sorted(units - ENTRY_POINTS - set(RANK))
    assert not missing, f"give these a layer in LAYERS: {missing}"


def test_imports_only_point_down():
    upward = upward_imports()
    assert not upward, "imports that point up a layer:\n" + "\n".join(upward)


def test_no_cycles_between_units():
    graph: dict[str, set[str]] = {}
    for source, target in edges():
        if source not in ENTRY_POINTS and target not in ENTRY_POINTS:
            graph.setdefault(source, set()).add(target)
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt in path:
                cycles.append(" -> ".join(path[path.index(nxt):] + [nxt]))
            elif len(path) < len(RANK):
                visit(nxt, path + [nxt])

    for start in sorted(graph):
        visit(start, [start])
    assert not cycles, "packages that import each other:\n" + "\n".join(sorted(set(cycles)))


@pytest.mark.parametrize("source, target", [("models", "tasks"), ("artifacts", "training")])
def test_the_check_sees_an_upward_import_inside_a_function(tmp_path, source, target):
    """The check above can fail: an upward import planted inside a function of a package copy is found."""
    root = tmp_path / "encoderlab"
    (root / source).mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / source / "planted.py").write_text(f"def f():\n    from ..{target}.x import something\n")
    assert upward_imports(root) == [f"{source}/planted.py ({source}) imports {target}"]
