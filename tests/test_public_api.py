"""The curated top-level API: every name resolves from ``taskgraph`` itself, and ``import taskgraph`` stays light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import taskgraph

ROOT = Path(__file__).resolve().parents[1]


def test_every_api_name_resolves_to_the_object_its_module_defines() -> None:
    import importlib

    for name, module in taskgraph.API.items():
        assert getattr(taskgraph, name) is getattr(importlib.import_module(module), name), name
    assert set(taskgraph.API) <= set(taskgraph.__all__) and set(taskgraph.__all__) <= set(dir(taskgraph))


def test_no_api_name_is_also_a_subpackage() -> None:
    import pkgutil

    subpackages = {m.name for m in pkgutil.iter_modules(taskgraph.__path__)}
    assert not set(taskgraph.API) & subpackages  # importing taskgraph.<name> would rebind the name to the module


def test_an_unknown_name_lists_the_api() -> None:
    try:
        taskgraph.nope  # noqa: B018
    except AttributeError as exc:
        assert "its API is" in str(exc) and "TaskGraphModel" in str(exc)
    else:
        raise AssertionError("taskgraph.nope resolved")


def test_importing_the_package_loads_no_torch() -> None:
    code = "import sys, taskgraph; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr
