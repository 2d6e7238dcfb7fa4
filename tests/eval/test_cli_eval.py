"""``taskgraph eval`` end to end on a tiny trained run (three JSONL text tasks, a 2-layer BERT)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from taskgraph.cli import main
from tests.train.conftest import spec_dict


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """A 6-step run; returns (spec file, run dir)."""
    folder = tmp_path_factory.mktemp("eval-run")
    spec = folder / "spec.yaml"
    data = spec_dict(folder, steps=6, eval_every=3, checkpoint_every=6)
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    run = folder / "run"
    assert main(["train", str(spec), "--out", str(run)]) == 0
    return spec, run


def test_eval_json_matches_predictions(trained, tmp_path, capsys, monkeypatch):
    from taskgraph.data.base import build_source
    from taskgraph.model import TaskGraphModel

    spec, run = trained
    monkeypatch.chdir(tmp_path)  # data paths must resolve through train.json's base_dir, not the cwd
    out = tmp_path / "eval.json"
    assert main(["eval", str(run), "--split", "test", "--json", str(out), "--batch-size", "7"]) == 0
    table = capsys.readouterr().out
    assert "macro-F1" in table and "mean" in table and "sentiment" in table
    result = json.loads(out.read_text())
    assert set(result) >= {"run", "split", "router", "tasks", "mean", "layers", "adapter_flops_per_token_all_open"}
    assert result["split"] == "test" and result["router"] == "poly" and result["layers"] == 4
    assert list(result["tasks"]) == ["sentiment", "color", "animal"]

    model = TaskGraphModel.from_pretrained(run / "model")
    per_layer = [2 * 4 * (32 + 32)] * 4  # query/value of 2 layers: d_in = d_out = 32, rank 4
    assert result["adapter_flops_per_token_all_open"] == sum(per_layer)
    for task in model.spec.tasks:
        scores = result["tasks"][task.name]
        examples = build_source(task, spec.parent).load("test")
        predicted = [p["label"] for p in model.predict(task.name, examples.texts)]
        manual = sum(int(p == y) for p, y in zip(predicted, examples.labels)) / len(examples.labels)
        assert scores["n"] == len(examples.labels)
        assert scores["accuracy"] == pytest.approx(manual)
        assert 0.0 <= scores["macro_f1"] <= 1.0
        assert 0.0 <= scores["active_adapter_fraction"] <= 1.0
        assert scores["adapter_flops_per_token"] <= result["adapter_flops_per_token_all_open"]
    mean = result["mean"]
    assert mean["accuracy"] == pytest.approx(sum(r["accuracy"] for r in result["tasks"].values()) / 3)
    assert mean["n"] == sum(r["n"] for r in result["tasks"].values())

    # no planted data, no families: nothing to score the learned structure against
    assert result["ground_truth"] is None and result["allocation"] is None
    assert result["relations"]["auroc"] == {
        "learned": None,
        "routing_cosine": None,
        "gradient_cosine": None,
        "random": None,
    }
    assert result["relations"]["pairs"] == 3 and result["relations"]["learned"] is None  # poly learns no R
    align = result["gradient_alignment"]
    assert align["mean_related"] is None and align["mean_unrelated"] is None
    cos = align["matrix"]
    assert align["mean"] == pytest.approx((cos[0][1] + cos[0][2] + cos[1][2]) / 3)
    assert result["timing"] is None  # poly has no gates: gated and all-open are the same computation
    assert any("timing left out: router poly has no gates" in note for note in result["notes"])
    assert "relation AUROC: n/a (no ground truth" in table and "allocation precision: n/a" in table


def test_eval_agrees_with_training_validation(trained):
    """On the val split, ``evaluate_run`` of ``best`` gives the accuracies training logged for it."""
    from taskgraph.eval import evaluate_run

    _, run = trained
    result = evaluate_run(run, split="val", which="best")
    logged = json.loads((run / "best" / "trainer.json").read_text())["acc"]
    assert {k: v["accuracy"] for k, v in result["tasks"].items()} == pytest.approx(logged)


def test_eval_errors(trained, tmp_path, capsys):
    spec, run = trained
    assert main(["eval", str(tmp_path)]) == 2  # an empty folder is not a run
    assert "neither a run folder" in capsys.readouterr().err
    assert main(["eval", str(run), "--split", "train"]) == 2  # argparse choices
    assert "invalid choice" in capsys.readouterr().err


def test_eval_data_vanished(trained, tmp_path, capsys):
    import shutil

    spec, run = trained
    copy = tmp_path / "data"
    shutil.copytree(spec.parent, copy, ignore=shutil.ignore_patterns("run"))
    shutil.copytree(run, tmp_path / "run")
    summary = json.loads((tmp_path / "run" / "train.json").read_text())
    summary["base_dir"] = str(copy)
    (tmp_path / "run" / "train.json").write_text(json.dumps(summary))
    (copy / "color.jsonl").unlink()
    assert main(["eval", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "color.jsonl" in err and "test" in err and "Traceback" not in err


def test_eval_task_filter_needs_only_its_data(trained, tmp_path):
    """With ``tasks=``, another task's missing data only leaves gradient alignment out (with a note)."""
    import shutil

    from taskgraph.errors import DataError
    from taskgraph.eval import evaluate_run

    spec, run = trained
    copy = tmp_path / "data"
    shutil.copytree(spec.parent, copy, ignore=shutil.ignore_patterns("run"))
    (copy / "color.jsonl").unlink()
    result = evaluate_run(run, base_dir=copy, tasks=["sentiment"], timing_rounds=1)
    assert list(result["tasks"]) == ["sentiment"] and result["timing"] is None  # poly: no gates to time
    assert result["gradient_alignment"] is None and result["relations"]["auroc"]["gradient_cosine"] is None
    assert len(result["notes"]) == 2 and "color.jsonl" in result["notes"][0] and "no gates" in result["notes"][1]
    full = evaluate_run(run, timing=False, alignment=False)
    assert result["tasks"]["sentiment"] == full["tasks"]["sentiment"]
    with pytest.raises(DataError, match="color.jsonl"):
        evaluate_run(run, base_dir=copy, tasks=["color"], timing=False)
