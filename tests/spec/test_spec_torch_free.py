"""Checking a spec loads no torch: the built-in router kinds and their parameter models are declared in a
torch-free module, and each kind's module is imported only when a model is built."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_loading_and_checking_every_shipped_spec_imports_no_torch() -> None:
    code = (
        "import sys, glob\n"
        "from taskgraph.spec import load_spec\n"
        "from taskgraph.cli import main\n"
        "for path in sorted(glob.glob('configs/**/*.yaml', recursive=True)):\n"
        "    load_spec(path)\n"
        "assert main(['validate', '--spec-only', 'configs/planted.yaml']) == 0\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'torch_geometric') if m in sys.modules)\n"
        "print('loaded:', heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("loaded: []"), done.stdout


def test_every_declared_router_is_registered_by_the_class_it_names() -> None:
    import importlib

    from taskgraph.registry import ROUTERS

    declared = ROUTERS.declared()
    assert set(declared) == {"shared", "private", "poly", "mhr", "mhr-mu", "graph"}
    importlib.import_module("taskgraph.routing")  # every built-in registers itself
    for kind, target in declared.items():
        entry = ROUTERS.get(kind)
        module, _, name = target.partition(":")
        assert entry.obj is getattr(importlib.import_module(module), name)
        assert entry.params is ROUTERS.params_of(kind)
