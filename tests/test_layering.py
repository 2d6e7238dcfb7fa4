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
