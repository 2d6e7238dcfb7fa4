"""A quality-bench folder written before the bench moved into ``taskgraph.bench.quality`` (and since out of the package
into ``benchmarks.quality``) and onto the sweep's resumable-cell code still resumes: its cells keep their paths and spec
hashes, and a finished one is skipped without training or evaluating anything (a whole folder: test_pre_move_folders)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import benchmarks.quality.cells as cells
import taskgraph.sweep.resumable as resumable
from benchmarks.quality.cells import DONE, TrainCell, run_train_cell, train_cell_dir, train_cell_state
from benchmarks.quality.planted_suites import TINY_UNIVERSE, planted_suite
from benchmarks.quality.suites import TINY_BUDGET, QualityError, with_overrides
from taskgraph.spec import Spec
from taskgraph.train import spec_hash

# The spec hash that ``python -m benchmarks quality --suite planted --tiny --seeds 2 --routers poly,graph
# --lrs 1e-3,1e-2 --shots 4 --steps 4 --adapt-steps 2`` recorded in planted/train/graph/lr0.01/seed0/eval.json
# before the move (tests/bench/quality/test_cli.py's run, 2026-12-04).
WRITTEN_BEFORE = "2d3feb036786e866ef66a69c16066dc0f44dc73a3faf668c5c9f0f357560738d"


def _tiny_cell_spec() -> dict[str, Any]:
    budget = with_overrides(TINY_BUDGET, steps=4, lrs=(1e-3, 1e-2), shots=(4,), adapt_steps=2)  # as --tiny does
    spec = planted_suite(budget, TINY_UNIVERSE).cell_spec("graph", 1e-2, 0)
    # the graph router's own rate was 1e-2 then (3e-3 since docs/graph-prior.md §13, so today's graph cell is another
    # spec and is refused, as it should be); the spec of that cell, field for field, must still hash the same
    spec["training"]["lr"]["router"] = 1e-2
    return spec


def _old_record(digest: str) -> dict[str, Any]:
    """``eval.json`` with the fields the bench wrote before (figures shortened)."""
    accuracy = {"split": "val", "source": "train.json final_val", "mean": {"accuracy": 0.5}, "tasks": {}}
    return {
        "router": "graph",
        "lr": 0.01,
        "seed": 0,
        "spec_hash": digest,
        "val": accuracy,
        "test": {**accuracy, "split": "test", "source": None},
        "error": None,
        "train_run_seconds": 1.0,
        "eval_seconds": 0.5,
        "trainable": {"adapters": 10, "router": 5, "heads": 3, "total": 18},
        "train_seconds": 1.0,
        "step_ms": 2.0,
    }


def _refuse(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("a finished cell was trained or evaluated again")


def test_the_cell_spec_hashes_as_it_did_before() -> None:
    assert spec_hash(Spec.model_validate(_tiny_cell_spec())) == WRITTEN_BEFORE


def test_a_cell_written_before_is_done_and_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = train_cell_dir(tmp_path, "planted", "graph", 1e-2, 0)
    assert folder == tmp_path / "planted" / "train" / "graph" / "lr0.01" / "seed0"  # the path it had
    folder.mkdir(parents=True)
    (folder / "checkpoints" / "step-000004").mkdir(parents=True)
    (folder / "model").mkdir()
    (folder / "train.json").write_text(json.dumps({"completed": True, "wall_time_s": 1.0}))
    (folder / "eval.json").write_text(json.dumps(_old_record(WRITTEN_BEFORE), indent=2) + "\n")
    monkeypatch.setattr(resumable, "train", _refuse)
    monkeypatch.setattr(cells, "evaluate_cell", _refuse)
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*")}

    assert train_cell_state(folder) == DONE
    lines: list[str] = []
    record, ran = run_train_cell(
        TrainCell("planted", "graph", 1e-2, 0, folder), _tiny_cell_spec(), Path("."), "cpu", lines.append
    )
    assert not ran and record == _old_record(WRITTEN_BEFORE) and lines == []
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*")} == before  # nothing written


def test_a_cell_of_another_spec_is_refused_untouched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = train_cell_dir(tmp_path, "planted", "graph", 1e-2, 0)
    folder.mkdir(parents=True)
    (folder / "eval.json").write_text(json.dumps(_old_record("0" * 64)))
    monkeypatch.setattr(resumable, "train", _refuse)
    with pytest.raises(QualityError, match="holds a cell trained with another spec"):
        run_train_cell(
            TrainCell("planted", "graph", 1e-2, 0, folder), _tiny_cell_spec(), Path("."), "cpu", lambda _: None
        )
    assert json.loads((folder / "eval.json").read_text())["spec_hash"] == "0" * 64
