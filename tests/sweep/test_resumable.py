"""The resumable cell shared by sweeps and benches: a run folder's state from its files alone, records read
leniently, and a run continued from where it stands (training replaced by a recorder: nothing trains here)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

import taskgraph.sweep.resumable as resumable
import taskgraph.sweep.run as sweep_run
from taskgraph.spec import spec_from_dict
from taskgraph.sweep.grid import Cell, Grid
from taskgraph.sweep.resumable import FINISHED, FRESH, RESUME, continue_run, read_record, run_state
from tests.sweep.conftest import tiny_spec_dict


def test_run_state_follows_the_files(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert run_state(run) == FRESH  # absent
    run.mkdir()
    (run / "log.jsonl").write_text("")
    assert run_state(run) == FRESH  # died before its first checkpoint
    (run / "checkpoints" / "step-000002").mkdir(parents=True)
    (run / "checkpoints" / "step-x").mkdir()  # not a complete step folder
    assert run_state(run) == RESUME
    (run / "train.json").write_text(json.dumps({"completed": False}))  # stopped by --max-steps
    (run / "model").mkdir()
    assert run_state(run) == RESUME
    (run / "train.json").write_text(json.dumps({"completed": True}))
    assert run_state(run) == FINISHED
    (run / "model").rmdir()
    assert run_state(run) == RESUME  # no final model: not finished


def test_read_record_is_none_unless_a_json_object_in_a_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "eval.json"
    assert read_record(path) is None
    for torn in ("{not json", "[1, 2]", "", "\xff"):
        path.write_text(torn, encoding="latin-1")
        assert read_record(path) is None, torn
    path.unlink()
    os.mkfifo(path)
    assert read_record(path) is None  # not opened: a FIFO would block
    path.unlink()
    path.write_text(json.dumps({"split": "val"}))
    assert read_record(path) == {"split": "val"}


def _recorder(calls: list[dict[str, Any]], run_exists: list[bool]) -> Any:
    def train(spec: Any, run: Path, **kwargs: Any) -> Any:
        calls.append(kwargs)
        run_exists.append(run.exists())
        return "result"

    return train


def test_continue_run_resumes_or_starts_afresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    existed: list[bool] = []
    monkeypatch.setattr(resumable, "train", _recorder(calls, existed))
    spec = spec_from_dict(tiny_spec_dict())
    run = tmp_path / "run"
    (run / "checkpoints" / "step-000002").mkdir(parents=True)
    assert continue_run(spec, run, RESUME, base_dir=tmp_path, device="cpu") == "result"
    assert calls[-1] == {"base_dir": tmp_path, "resume": True, "device": "cpu"} and existed[-1]
    continue_run(spec, run, FRESH, base_dir=tmp_path, device="cpu")
    assert calls[-1]["resume"] is False and not existed[-1]  # the dead start was removed first
    with pytest.raises(ValueError, match="a finished run is evaluated, not trained"):
        continue_run(spec, run, FINISHED, base_dir=tmp_path, device="cpu")


def test_a_sweep_cell_written_before_is_skipped_or_only_evaluated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = spec_from_dict(tiny_spec_dict())
    cell = Cell(
        point=(("router.temperature", 0.5),), raw=("0.5",), seed=0, slug="router.temperature=0.5_seed=0", spec=spec
    )
    folder = tmp_path / "cells" / cell.slug
    (folder / "run" / "model").mkdir(parents=True)
    (folder / "run" / "train.json").write_text(json.dumps({"completed": True, "steps": 4}))
    (folder / "cell.json").write_text(json.dumps(sweep_run.cell_record(cell), indent=1) + "\n")
    (folder / "eval.json").write_text(json.dumps({"split": "val", "mean": {"accuracy": 0.5}}, indent=1) + "\n")
    monkeypatch.setattr(resumable, "train", lambda *a, **k: pytest.fail("a finished run was trained again"))
    evaluated: list[str] = []
    monkeypatch.setattr(sweep_run, "evaluate_run", lambda run, split, **k: evaluated.append(split) or {"split": split})

    sweep_run.check_cells(tmp_path, Grid(tmp_path / "spec.yaml", spec, (), (0,), None, (cell,)))  # same spec
    outcome = sweep_run.run_cell(cell, folder, base_dir=tmp_path, device="cpu", split="val")
    assert outcome.status == "skipped" and outcome.evaluation["mean"] == {"accuracy": 0.5} and evaluated == []
    outcome = sweep_run.run_cell(cell, folder, base_dir=tmp_path, device="cpu", split="test")
    assert outcome.status == "evaluated" and evaluated == ["test"]
