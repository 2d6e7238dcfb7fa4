"""The CLI calls the public API only: every ``from taskgraph... import`` in ``taskgraph/cli/*.py`` (function bodies
and ``TYPE_CHECKING`` blocks too) names a top-level module or package of taskgraph (``taskgraph.train``, never
``taskgraph.train.launch``) and only names in that module's ``__all__``. The CLI's own modules import each other
freely."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "taskgraph" / "cli"


def offences(source: str, filename: str = "<source>") -> list[tuple[str, str, str, str]]:
    """``(file:line, module, name, why)`` for each import of ``source`` that reaches past taskgraph's public API."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "taskgraph" and len(parts) > 2 and parts[1] != "cli":
                    found.append((f"{filename}:{node.lineno}", alias.name, "", "a submodule: import its stage"))
            continue
        if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
            continue  # a relative import stays inside taskgraph.cli
        parts = node.module.split(".")
        if parts[0] != "taskgraph" or parts[1:2] == ["cli"]:
            continue
        where = f"{filename}:{node.lineno}"
        if len(parts) > 2:
            for alias in node.names:
                found.append((where, node.module, alias.name, f"a submodule: import it from taskgraph.{parts[1]}"))
            continue
        public = set(getattr(importlib.import_module(node.module), "__all__", ()))
        for alias in node.names:
            if alias.name not in public:
                found.append((where, node.module, alias.name, f"not in {node.module}.__all__"))
    return found


def cli_offences() -> list[tuple[str, str, str, str]]:
    found = []
    for path in sorted(CLI.glob("*.py")):
        found += offences(path.read_text(encoding="utf-8"), path.name)
    return found


def test_the_check_finds_each_kind_of_reach() -> None:
    source = """
from taskgraph.spec import load_spec                      # public
from taskgraph.cli.argtypes import seed                   # the CLI's own module
from taskgraph.run_folder import kept_note, _link_tree    # the second is internal

def run():
    from taskgraph.train.launch import launch             # a submodule, inside a function
    import taskgraph.model.predict                        # a submodule, plainly imported
    from taskgraph.errors import opt                      # a module without the name in __all__
"""
    assert [(m, n) for _, m, n, _ in offences(source)] == [
        ("taskgraph.run_folder", "_link_tree"),
        ("taskgraph.train.launch", "launch"),
        ("taskgraph.model.predict", ""),
        ("taskgraph.errors", "opt"),
    ]


def test_the_cli_imports_only_public_names_from_top_level_modules() -> None:
    bad = [f"{where}: {module} {name}: {why}" for where, module, name, why in cli_offences()]
    assert not bad, "the CLI reaches past the public API:\n" + "\n".join(bad)
