"""The package's layout holds: no import cycles (function-level imports included), models never reach the
simulator, and stage packages import each other in one direction only (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mri2pet_cli"
# Stage packages, lowest first: each may import only from those before it (and the shared top-level modules).
STAGE_ORDER = (
    "space",
    "models",
    "reporting",
    "preprocessing",
    "simulation",
    "evaluation",
    "training",
    "site",
    "inference",
)
SHARED = ("errors", "names", "console", "io", "batch", "shards", "completion")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, known: set[str]) -> set[str]:
    """Every mri2pet_cli module ``path`` imports, anywhere in the file; ``from package import submodule``
    counts as the submodule."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source not in known:
                continue
            subs = {f"{source}.{a.name}" for a in node.names} & known
            found |= subs or {source}
            if len(subs) < len(node.names):
                found.add(source)
    return found - {name}


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: imports_of(path, set(files)) for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def stage_of(module: str) -> str:
    return module.split(".")[1] if module.count(".") else ""


def test_the_cycle_finder_finds_a_cycle_and_a_function_level_import(tmp_path):
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    source = tmp_path / "mri2pet_cli" / "x.py"
    source.parent.mkdir()
    source.write_text("def f():\n    from .y import thing\n    from mri2pet_cli import z\n")
    global PACKAGE
    saved, PACKAGE = PACKAGE, tmp_path / "mri2pet_cli"
    try:
        assert imports_of(source, {"mri2pet_cli.y", "mri2pet_cli", "mri2pet_cli.z"}) == {
            "mri2pet_cli.y",
            "mri2pet_cli.z",
        }
    finally:
        PACKAGE = saved


def test_no_import_cycles_function_level_imports_included():
    assert find_cycle(import_graph()) is None


def test_models_never_reach_the_simulator():
    graph = import_graph()
    for module in (m for m in graph if stage_of(m) == "models"):
        leaks = sorted(m for m in reachable(graph, module) if stage_of(m) == "simulation")
        assert not leaks, f"{module} reaches {leaks}"


@pytest.mark.parametrize("stage", STAGE_ORDER)
def test_a_stage_imports_only_the_stages_below_it(stage):
    allowed = set(STAGE_ORDER[: STAGE_ORDER.index(stage) + 1]) | set(SHARED) | {""}
    graph = import_graph()
    wrong = sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        if stage_of(module) == stage
        for target in targets
        if stage_of(target) not in allowed
    )
    assert not wrong, "\n".join(wrong)


def test_shared_modules_import_no_stage():
    graph = import_graph()
    wrong = sorted(
        f"{m} -> {t}" for m in graph if stage_of(m) in SHARED for t in graph[m] if stage_of(t) not in SHARED + ("",)
    )
    assert not wrong, "\n".join(wrong)
