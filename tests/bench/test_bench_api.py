"""``taskgraph.bench``'s public face: every name resolves to what its module defines, and importing the package
loads no torch (the CLI lists the benches without it)."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import taskgraph.bench

ROOT = Path(__file__).resolve().parents[2]


def test_every_name_resolves_to_the_object_its_module_defines() -> None:
    for name, module in taskgraph.bench.API.items():
        assert getattr(taskgraph.bench, name) is getattr(importlib.import_module(module), name), name
    assert taskgraph.bench.__all__ == list(taskgraph.bench.API) and set(taskgraph.bench.API) <= set(
        dir(taskgraph.bench)
    )


def test_an_unknown_name_lists_the_api() -> None:
    with pytest.raises(AttributeError, match="its API is .*'run_speed_bench'"):
        taskgraph.bench.nope  # noqa: B018


def test_importing_the_package_loads_no_torch() -> None:
    code = "import sys, taskgraph.bench; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr
