"""Layers lean one way (the data flow: spec → graph → routing → model → train → eval → report): a stage never imports a later one, at run time either."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# stage imported -> later stages it must not pull in
LOWER = {
    "taskgraph.spec": ("torch", "taskgraph.graph", "taskgraph.routing", "taskgraph.model", "taskgraph.train"),
    # data (sources, encoding, batches) sits below the model: the model reads batches, never the other way
    "taskgraph.data": (
        "torch",
        "taskgraph.model",
        "taskgraph.train",
        "taskgraph.eval",
        "taskgraph.adapt",
        "taskgraph.merge",
    ),
    "taskgraph.model": ("taskgraph.train", "taskgraph.eval", "taskgraph.report", "taskgraph.export", "taskgraph.bench"),
    "taskgraph.train": ("taskgraph.eval", "taskgraph.report", "taskgraph.export", "taskgraph.bench", "taskgraph.adapt"),
    "taskgraph.eval": ("taskgraph.report", "taskgraph.export", "taskgraph.bench", "taskgraph.adapt", "taskgraph.sweep"),
    "taskgraph.adapt": ("taskgraph.report", "taskgraph.export", "taskgraph.bench", "taskgraph.sweep"),
    "taskgraph.cli": ("torch", "transformers"),  # the parser alone: a command imports what it needs when it runs
}


@pytest.mark.parametrize("stage", list(LOWER))
def test_a_stage_does_not_import_a_later_one(stage: str) -> None:
    code = (
        f"import sys, {stage}\n"
        + ("from taskgraph.cli import build_parser; build_parser()\n" if stage == "taskgraph.cli" else "")
        + f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {{'torch', 'transformers'}} and m in "
        f"{list(LOWER[stage])!r} or any(m == x or m.startswith(x + '.') for x in {list(LOWER[stage])!r} "
        f"if x.startswith('taskgraph')))\n" + "print(bad)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", f"{stage} imports {done.stdout.strip()}"


# ----------------------------------------------------------------------------- every import, function bodies too
def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The taskgraph modules ``path`` imports anywhere in its body (``if TYPE_CHECKING:`` blocks aside: they never
    run), each resolved to the deepest module that exists."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name.startswith("taskgraph") and name != me:
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in (ROOT / "taskgraph").rglob("*.py")}
    return {m: imports_of(p, set(files)) for m, p in files.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circle_even_through_function_level_imports() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]  # the check can fail
    assert circles(import_graph()) == []


@pytest.mark.parametrize("stage", [s for s in LOWER if s != "taskgraph.cli"])
def test_no_module_of_a_stage_imports_a_later_stage_anywhere(stage: str) -> None:
    later = [x for x in LOWER[stage] if x.startswith("taskgraph")]
    bad = sorted(
        f"{m} -> {target}"
        for m, targets in import_graph().items()
        if m == stage or m.startswith(stage + ".")
        for target in targets
        if any(target == x or target.startswith(x + ".") for x in later)
    )
    assert not bad, bad
