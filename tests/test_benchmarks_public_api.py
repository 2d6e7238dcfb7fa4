"""``benchmarks/`` is built on taskgraph's public API only: every import of taskgraph from a file under it (function
bodies included) names a public package and public names.

Public: a name in ``taskgraph.__all__`` imported from ``taskgraph``, or a name in the ``__all__`` of a taskgraph
package or top-level module imported from that module (``from taskgraph.data import planted_spec``). Refused: any
deeper module (``from taskgraph.data.planted import ...``, ``import taskgraph.data.planted``), a module without an
``__all__``, a name not in it, and ``import taskgraph.X`` of such a module.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _public(module: str) -> set[str] | None:
    """The ``__all__`` of ``module`` (``taskgraph`` or ``taskgraph.X``); None when it is deeper or has none."""
    if module != "taskgraph" and module.count(".") != 1:
        return None
    names = getattr(importlib.import_module(module), "__all__", None)
    return set(names) if names is not None else None


def violations(path: Path) -> list[str]:
    """Every import of a non-public taskgraph name in the Python file ``path``, as ``file:line: what``."""
    where = path.relative_to(ROOT)
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and node.module
            and node.module.split(".")[0] == "taskgraph"
        ):
            public = _public(node.module)
            if public is None:
                found.append(f"{where}:{node.lineno}: from {node.module} import ... (not a public taskgraph module)")
                continue
            hidden = [a.name for a in node.names if a.name not in public]
            if hidden:
                found.append(f"{where}:{node.lineno}: from {node.module} import {', '.join(hidden)} (not in __all__)")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "taskgraph" and _public(alias.name) is None:
                    found.append(f"{where}:{node.lineno}: import {alias.name} (not a public taskgraph module)")
    return found


def test_benchmarks_import_only_public_taskgraph_names() -> None:
    files = sorted((ROOT / "benchmarks").rglob("*.py"))
    assert len(files) > 20  # the harness is there
    found = [v for path in files for v in violations(path)]
    assert not found, "benchmarks/ imports taskgraph internals:\n" + "\n".join(found)


def test_the_check_sees_function_level_and_deep_imports(tmp_path: Path) -> None:
    probe = ROOT / "benchmarks" / "_probe_for_the_test.py"
    probe.write_text(
        "import taskgraph.data.planted\n"
        "from taskgraph import load_spec\n"
        "from taskgraph.data import planted_spec\n"
        "def f():\n"
        "    from taskgraph.data.planted import planted_universe\n"
        "    from taskgraph.spec import Spec, spec_hash_of_nothing\n"
        "    from taskgraph.run_records import main\n"
    )
    try:
        found = violations(probe)
    finally:
        probe.unlink()
    assert [v.split(": ", 1)[1] for v in found] == [
        "import taskgraph.data.planted (not a public taskgraph module)",
        "from taskgraph.data.planted import ... (not a public taskgraph module)",
        "from taskgraph.spec import spec_hash_of_nothing (not in __all__)",
        "from taskgraph.run_records import ... (not a public taskgraph module)",
    ]


def test_the_wheel_ships_taskgraph_and_not_the_harness() -> None:
    import pytest
    from setuptools import find_packages

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    find = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"][
        "find"
    ]
    packages = find_packages(str(ROOT), include=find["include"], exclude=find.get("exclude", ()))
    assert "taskgraph" in packages and "taskgraph.bench" in packages  # the user's benches ship
    assert not [p for p in packages if not p.startswith("taskgraph")], packages  # benchmarks/, tests/ do not
