"""Resumable cells keep working across the move: output folders the harness wrote while it lived in
``taskgraph/bench`` are done for ``python -m benchmarks`` — every cell skipped, nothing trained, adapted, merged or
evaluated again, no record rewritten, and the same figures.

``fixtures/pre-move`` holds what the code before the move (the commit before it, taskgraph 0.1.0) wrote for::

    taskgraph bench quality --suite planted --tiny --seeds 1 --select-seeds 1 --routers poly,graph --lrs 1e-2 \\
        --shots 4 --steps 4 --adapt-steps 2 --out quality
    taskgraph bench merge --tiny --seeds 1 --select-seeds 1 --tasks 2 --subsets 1 --routers shared \\
        --methods task-arithmetic --out merge

— the container's marker (kind ``bench``) and every cell's *done* record (a training cell's ``eval.json`` with its spec
hash, an adaptation or oracle cell's ``cell.json``, a merge's ``<method>.json``, ``heads-only.json``); the run
folders' weights and checkpoints are left out, since a done cell never reads them. ``*-figures.json`` are the suites'
figures as that code reported them (less timing, environment and plot paths).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

import benchmarks.merging.run as merge_run
import benchmarks.quality.cells as quality_cells
import taskgraph.adapt
import taskgraph.eval
import taskgraph.sweep.resumable as resumable
from benchmarks.cli import main

FIXTURE = Path(__file__).parent / "fixtures" / "pre-move"
QUALITY = "quality --suite planted --tiny --seeds 1 --select-seeds 1 --routers poly,graph --lrs 1e-2 --shots 4 "
QUALITY += "--steps 4 --adapt-steps 2"
MERGE = "merge --tiny --seeds 1 --select-seeds 1 --tasks 2 --subsets 1 --routers shared --methods task-arithmetic"
VOLATILE = ("timing", "environment", "plots")


def _refuse(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("a cell written before the move ran again")


@pytest.fixture
def nothing_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resumable, "train", _refuse)
    monkeypatch.setattr(quality_cells, "evaluate_cell", _refuse)
    monkeypatch.setattr(taskgraph.adapt, "adapt_run", _refuse)
    monkeypatch.setattr(taskgraph.eval, "oracle_relearn", _refuse)
    monkeypatch.setattr(merge_run, "MergeSession", _refuse)


def _records(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _figures(result: dict[str, Any]) -> dict[str, Any]:
    """The figures less what each invocation measures anew (its timing, machine, plot paths, wall time)."""
    text = json.dumps({k: v for k, v in result.items() if k not in VOLATILE}, sort_keys=True)
    return json.loads(re.sub(r"\d+\.\d min wall this invocation", "- min wall this invocation", text))


@pytest.mark.parametrize(
    "suite, argv, cells",
    [
        ("quality", QUALITY, 2 + 6 + 1),
        ("merge", MERGE, 4 + 2 + 1),
    ],  # quality: train, adapt, oracle; merge: runs, merges, together
)
def test_a_folder_written_before_the_move_is_done(
    tmp_path: Path, nothing_runs: None, suite: str, argv: str, cells: int
):
    out = shutil.copytree(FIXTURE / suite, tmp_path / suite)
    before = _records(out)
    assert json.loads(before[".taskgraph-run.json"])["kind"] == "bench"

    assert main([*argv.split(), "--out", str(out), "--json", str(tmp_path / "result.json")]) == 0

    result = json.loads((tmp_path / "result.json").read_text())
    figures = result["suites"]["planted"] if suite == "quality" else result
    timing = figures["timing"]
    assert sum(part.get("ran", 0) for name, part in timing.items() if name != "total") == 0
    assert sum(part.get("skipped", 0) for name, part in timing.items() if name != "total") == cells
    assert _figures(figures) == _figures(json.loads((FIXTURE / f"{suite}-figures.json").read_text()))
    after = _records(out)
    assert {k: after[k] for k in before} == before  # every record and the container's marker as they were
