"""training.report_to: [tensorboard]: event files written beside log.jsonl and read back with TensorBoard's reader;
a clear exit 2 when TensorBoard is missing; the reported best counts the final evaluation."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from taskgraph.cli import main
from taskgraph.spec import load_spec
from taskgraph.train import train
from taskgraph.train.evaluate import EvalResult
from taskgraph.train.result import best_with_final as _best_with_final
from tests.train.conftest import spec_dict

event_accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator", reason="the tensorboard extra is not installed"
)
TASKS = ["sentiment", "color", "animal"]


def read_events(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag of a TensorBoard log folder as ``[(step, value)]``, via TensorBoard's own reader."""
    reader = event_accumulator.EventAccumulator(str(folder), size_guidance={event_accumulator.SCALARS: 0})
    reader.Reload()
    return {tag: [(e.step, e.value) for e in reader.Scalars(tag)] for tag in reader.Tags()["scalars"]}


def log_lines(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def write_spec(folder: Path, name: str = "spec.yaml", router: str = "poly", **training) -> Path:
    data = spec_dict(folder, report_to=["tensorboard"], **training)
    data["router"] = {"kind": router}
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_events_match_the_log(tmp_path):
    spec = write_spec(tmp_path, steps=6, eval_every=3, checkpoint_every=6, router="graph")
    train(load_spec(spec), tmp_path / "run", base_dir=tmp_path)
    events = read_events(tmp_path / "run" / "tensorboard")
    log = log_lines(tmp_path / "run")
    steps = [r for r in log if r["split"] == "train"]
    vals = [r for r in log if r["split"] == "val"]
    assert [s for s, _ in events["loss/total"]] == list(range(1, 7))
    assert [v for _, v in events["loss/total"]] == pytest.approx([r["loss"] for r in steps], rel=1e-6)
    assert [v for _, v in events["loss/task"]] == pytest.approx([r["task_loss"] for r in steps], rel=1e-6)
    assert [v for _, v in events["lr/adapters"]] == pytest.approx([r["lr_adapters"] for r in steps], rel=1e-6)
    assert {"lr/router", "lr/heads", "loss/router"} <= set(events)
    assert [s for s, _ in events["val/mean_accuracy"]] == [3, 6]
    assert [v for _, v in events["val/mean_accuracy"]] == pytest.approx([r["mean_acc"] for r in vals], rel=1e-6)
    for task in TASKS:
        assert [v for _, v in events[f"val_accuracy/{task}"]] == pytest.approx([r["acc"][task] for r in vals])
    for tag in ("routing/entropy", "routing/gate_fraction", "relations/density"):
        assert [s for s, _ in events[tag]] == [3, 6] and all(0.0 <= v <= 1.0 for _, v in events[tag]), tag
    assert all(v == 1.0 for _, v in events["routing/gate_fraction"])  # no compute budget: every gate open


def test_off_by_default_and_no_relations_for_static_routers(tmp_path):
    plain = tmp_path / "plain.yaml"
    plain.write_text(yaml.safe_dump(spec_dict(tmp_path, steps=2, eval_every=2), sort_keys=False))
    train(load_spec(plain), tmp_path / "a", base_dir=tmp_path)
    assert not (tmp_path / "a" / "tensorboard").exists()
    train(load_spec(write_spec(tmp_path, steps=2, eval_every=2)), tmp_path / "b", base_dir=tmp_path)
    events = read_events(tmp_path / "b" / "tensorboard")
    assert "relations/density" not in events and "routing/entropy" in events  # poly learns no relations


def test_a_resumed_run_keeps_one_event_per_step(tmp_path):
    spec = write_spec(tmp_path, steps=6, eval_every=2, checkpoint_every=2)
    assert main(["train", str(spec), "--out", str(tmp_path / "run"), "--max-steps", "3"]) == 0  # checkpoint at 3
    assert main(["train", str(spec), "--out", str(tmp_path / "run"), "--resume"]) == 0
    events = read_events(tmp_path / "run" / "tensorboard")
    assert [s for s, _ in events["loss/total"]] == list(range(1, 7))
    log = [r["loss"] for r in log_lines(tmp_path / "run") if r["split"] == "train"]
    assert [v for _, v in events["loss/total"]] == pytest.approx(log, rel=1e-6)


def test_asked_for_and_missing_is_exit_2_before_anything_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    spec = write_spec(tmp_path, steps=2)
    assert main(["train", str(spec), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "training.report_to: [tensorboard] needs the tensorboard package" in err
    assert 'pip install "taskgraph[tensorboard]"' in err and "Traceback" not in err
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def test_an_unknown_report_is_a_spec_error(tmp_path, capsys):
    data = spec_dict(tmp_path, report_to=["wandb"])
    spec = tmp_path / "bad.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    assert main(["validate", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "training.report_to" in err and "tensorboard" in err


def _val(acc: float) -> EvalResult:
    return EvalResult({"a": acc}, acc, 1.0, 10)


@pytest.mark.parametrize(
    "best, final, want",
    [
        ((250, 0.3355), (300, 0.4355), (300, 0.4355, "model")),  # the run: the final evaluation was better
        ((250, 0.5), (300, 0.4), (250, 0.5, "best")),
        ((300, 0.5), (300, 0.5), (300, 0.5, "best")),  # the final step was a scheduled validation
        ((250, 0.5), (300, 0.5), (250, 0.5, "best")),  # a tie keeps the earlier one
        ((None, None), (3, 0.2), (3, 0.2, "model")),  # stopped before the first scheduled validation
    ],
)
def test_the_best_counts_the_final_evaluation(best, final, want):
    assert _best_with_final(best[0], best[1], (final[0], _val(final[1]))) == want


def test_the_cli_summary_names_the_final_model_when_it_is_the_best(tmp_path, capsys, monkeypatch):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(spec_dict(tmp_path, steps=20, eval_every=4, checkpoint_every=10), sort_keys=False))
    assert main(["train", str(spec), "--out", str(tmp_path / "run"), "--max-steps", "6"]) == 0
    out = capsys.readouterr().out
    log = log_lines(tmp_path / "run")
    vals = {r["step"]: r["mean_acc"] for r in log if r["split"] == "val"}
    assert sorted(vals) == [4, 6]  # the scheduled one, and the final one off the schedule
    summary = json.loads((tmp_path / "run" / "train.json").read_text())
    best_step = 6 if vals[6] > vals[4] else 4
    assert summary["best_val"] == {"step": best_step, "mean_acc": vals[best_step]}
    assert f"(best {vals[best_step]:.4f} at step {best_step}" in out
    assert (", the final model)" in out) == (best_step == 6)
