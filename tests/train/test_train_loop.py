"""The training loop in-process: the run directory, determinism, --max-steps + resume, learning,
and every way a run refuses to start or go on."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from taskgraph.cli import main
from taskgraph.model import TaskGraphModel
from taskgraph.spec import load_spec
from taskgraph.train import evaluate, load_task_data, read_checkpoint, spec_hash, train

TRAIN_KEYS = {"step", "split", "loss", "task_loss", "reg_loss", "lr_adapters", "examples_per_s", "time"}
VAL_KEYS = {"step", "split", "acc", "mean_acc", "loss"}
TASKS = ["sentiment", "color", "animal"]


def _log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def test_run_directory_layout_log_and_summary(reference) -> None:  # noqa: ANN001
    run = reference.run
    log = _log(run)
    train_lines = [r for r in log if r["split"] == "train"]
    val_lines = [r for r in log if r["split"] == "val"]
    assert [r["step"] for r in train_lines] == list(range(1, 25))
    assert all(set(r) == TRAIN_KEYS for r in train_lines)
    assert [r["step"] for r in val_lines] == [4, 8, 12, 16, 20, 24]
    assert all(set(r) == VAL_KEYS and list(r["acc"]) == TASKS for r in val_lines)
    assert [r["lr_adapters"] for r in train_lines[:2]] == pytest.approx([0.015, 0.03])  # warm-up of 2 steps
    assert train_lines[-1]["lr_adapters"] < 0.001  # cosine towards 0
    # the newest two checkpoints are kept, complete, and no temp folder is left
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-000020", "step-000024"]
    for name in ("model.safetensors", "manifest.json", "optimizer.safetensors", "trainer.json"):
        assert (run / "checkpoints" / "step-000024" / name).is_file()
    # best = the first validation with the highest mean accuracy
    best_val = max(val_lines, key=lambda r: (r["mean_acc"], -r["step"]))
    best = json.loads((run / "best" / "trainer.json").read_text())
    assert (best["step"], best["mean_acc"]) == (best_val["step"], best_val["mean_acc"])
    summary = json.loads((run / "train.json").read_text())
    assert summary["steps"] == 24 and summary["completed"] is True and summary["resumed_from"] is None
    assert summary["final_val"]["mean_acc"] == val_lines[-1]["mean_acc"]
    assert summary["best_val"] == {"step": best["step"], "mean_acc": best["mean_acc"]}
    assert summary["examples_per_s"] > 0 and summary["wall_time_s"] > 0
    # how it was trained: one process, no backend, the thread count and the versions that trained it
    assert (summary["processes"], summary["backend"]) == (1, None) and summary["torch_threads"] >= 1
    assert summary["versions"]["torch"] == torch.__version__ and set(summary["versions"]) == {
        "taskgraph",
        "torch",
        "transformers",
        "python",
    }
    spec = load_spec(reference.spec)
    assert spec_hash(load_spec(run / "spec.yaml")) == spec_hash(spec)


def test_the_model_learns_and_the_saved_model_evaluates_the_same(reference) -> None:  # noqa: ANN001
    val = [r for r in _log(reference.run) if r["split"] == "val"]
    assert val[-1]["loss"] < 0.7 * val[0]["loss"]
    summary = json.loads((reference.run / "train.json").read_text())
    chance = (1 / 2 + 1 / 3 + 1 / 2) / 3
    assert summary["best_val"]["mean_acc"] >= chance + 0.2
    model = TaskGraphModel.from_pretrained(reference.run / "model")
    spec = load_spec(reference.spec)
    data = load_task_data(spec, reference.spec.parent, tokenizer=model.tokenizer, pad_id=0, splits=("val",))
    again = evaluate(model, data["val"], pad_id=0)
    assert again.acc == summary["final_val"]["acc"]
    assert again.loss == pytest.approx(summary["final_val"]["loss"], rel=1e-6)


def test_same_seed_gives_bit_identical_weights_and_the_seed_matters(make_spec, tmp_path, same_weights) -> None:  # noqa: ANN001
    spec = load_spec(make_spec(steps=6, checkpoint_every=6, eval_every=6))
    base = tmp_path
    train(spec, tmp_path / "a", base_dir=base)
    train(spec, tmp_path / "b", base_dir=base)
    same_weights(tmp_path / "a" / "model", tmp_path / "b" / "model")
    other = load_spec(make_spec(name="seed1.yaml", steps=6, checkpoint_every=6, eval_every=6, seed=1))
    train(other, tmp_path / "c", base_dir=base)
    with pytest.raises(AssertionError, match="tensors differ"):
        same_weights(tmp_path / "a" / "model", tmp_path / "c" / "model")


def test_max_steps_then_resume_equals_the_uninterrupted_run(reference, tmp_path, same_weights) -> None:  # noqa: ANN001
    out = tmp_path / "run"
    assert main(["train", str(reference.spec), "--out", str(out), "--max-steps", "10"]) == 0
    assert (out / "checkpoints" / "step-000010").is_dir()  # a checkpoint where it stopped
    assert json.loads((out / "train.json").read_text())["completed"] is False
    assert main(["train", str(reference.spec), "--out", str(out), "--resume"]) == 0
    same_weights(out / "model", reference.run / "model")
    same_weights(out / "best", reference.run / "best")
    ours, ref = _log(out), _log(reference.run)
    assert [(r["step"], r["loss"]) for r in ours if r["split"] == "train"] == [
        (r["step"], r["loss"]) for r in ref if r["split"] == "train"
    ]
    assert [r for r in ours if r["split"] == "val" and r["step"] % 4 == 0] == [r for r in ref if r["split"] == "val"]
    assert json.loads((out / "train.json").read_text())["resumed_from"] == 10


def test_non_finite_loss_stops_naming_step_and_tasks(make_spec, tmp_path, capsys) -> None:  # noqa: ANN001
    spec = make_spec(checkpoint_every=1, warmup_steps=0, lr={"adapters": 1e30, "router": 1e30, "heads": 1e30})
    out = tmp_path / "run"
    assert main(["train", str(spec), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "training stopped at step 2: the loss is not finite" in err
    assert "on a batch of tasks ['" in err and "step-000001" in err
    assert not (out / "model").exists()
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step-000001"]
    assert read_checkpoint(out / "checkpoints" / "step-000001", load_spec(spec)).state.step == 1


def test_out_folder_holding_a_run_is_not_clobbered(reference, make_spec, tmp_path, capsys, snapshot) -> None:  # noqa: ANN001
    out = tmp_path / "run"
    shutil.copytree(reference.run, out)
    before = snapshot(out)
    other = make_spec(name="other.yaml", steps=5)
    assert main(["train", str(other), "--out", str(out)]) == 2
    assert "already holds a run (a different spec)" in capsys.readouterr().err
    assert main(["train", str(reference.spec), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "already holds a run (same spec)" in err and "pass --resume" in err
    assert snapshot(out) == before


def test_resume_needs_a_checkpoint(reference, tmp_path, capsys) -> None:  # noqa: ANN001
    assert main(["train", str(reference.spec), "--out", str(tmp_path / "absent"), "--resume"]) == 2
    assert "there is no run to continue" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["train", str(reference.spec), "--out", str(tmp_path / "empty"), "--resume"]) == 2
    assert "holds no complete checkpoint" in capsys.readouterr().err


@pytest.fixture(scope="module")
def stopped(reference, tmp_path_factory) -> Path:  # noqa: ANN001
    """A run of the reference spec stopped by --max-steps 4 (one checkpoint, step 4)."""
    out = tmp_path_factory.mktemp("stopped") / "run"
    assert main(["train", str(reference.spec), "--out", str(out), "--max-steps", "4"]) == 0
    return out


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


CORRUPTIONS = {
    "truncated model": (lambda c: _truncate(c / "model.safetensors"), "model.safetensors: .* bytes where the manifest"),
    "truncated optimizer": (lambda c: _truncate(c / "optimizer.safetensors"), "optimizer.safetensors: .* truncated"),
    "garbage trainer.json": (lambda c: (c / "trainer.json").write_text("{not json"), "trainer.json is not valid JSON"),
    "trainer.json of another shape": (
        lambda c: (c / "trainer.json").write_text(
            json.dumps({**json.loads((c / "trainer.json").read_text()), "rng": {"torch": 5}})
        ),
        r"trainer.json: rng.torch: .*string",
    ),
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_corrupted_checkpoint_is_exit_2_and_changes_nothing(
    stopped,
    reference,
    tmp_path,
    capsys,
    snapshot,  # noqa: ANN001
    corruption,
) -> None:
    out = tmp_path / "run"
    shutil.copytree(stopped, out)
    corrupt, message = CORRUPTIONS[corruption]
    corrupt(out / "checkpoints" / "step-000004")
    (out / "checkpoints" / ".tmp-step-000008").mkdir()  # an interrupted write: left alone by a failed resume
    before = snapshot(out)
    assert main(["train", str(reference.spec), "--out", str(out), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "step-000004" in err
    assert re.search(message, err), err
    assert snapshot(out) == before
    assert (out / "checkpoints" / ".tmp-step-000008").is_dir()


def test_checkpoint_of_another_spec_is_exit_2_naming_the_difference(
    stopped,
    reference,
    tmp_path,
    capsys,  # noqa: ANN001
    snapshot,
) -> None:
    out = tmp_path / "run"
    shutil.copytree(stopped, out)
    before = snapshot(out)
    assert (
        main(
            [
                "train",
                str(reference.spec),
                "--out",
                str(out),
                "--resume",
                "--set",
                "training.seed=7",
                "router.temperature=0.5",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "was written for another spec" in err
    assert "router.temperature" in err and "training.seed" in err
    assert snapshot(out) == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message when CUDA is absent")
def test_cuda_without_a_gpu_is_exit_2(reference, tmp_path, capsys) -> None:  # noqa: ANN001
    assert main(["train", str(reference.spec), "--out", str(tmp_path / "run"), "--device", "cuda"]) == 2
    assert "no CUDA device" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_spec_yaml_in_the_run_is_the_resolved_spec(reference) -> None:  # noqa: ANN001
    saved = yaml.safe_load((reference.run / "spec.yaml").read_text())
    assert saved["training"]["steps"] == 24 and saved["router"]["kind"] == "poly"


def test_the_quickstart_config_trains_on_planted_token_ids(tmp_path) -> None:  # noqa: ANN001
    quickstart = Path(__file__).resolve().parents[2] / "configs" / "quickstart.yaml"
    out = tmp_path / "run"
    assert main(["train", str(quickstart), "--out", str(out), "--max-steps", "3"]) == 0
    log = _log(out)
    assert [r["step"] for r in log if r["split"] == "train"] == [1, 2, 3]
    (val,) = [r for r in log if r["split"] == "val"]
    assert list(val["acc"]) == [f"planted-{t}" for t in range(6)]
    assert (out / "checkpoints" / "step-000003" / "trainer.json").is_file()
    assert json.loads((out / "train.json").read_text())["completed"] is False
