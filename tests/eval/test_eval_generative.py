"""``taskgraph eval`` on generative runs: a planted generative run (token ids) and a mixed text run (free text,
choices, classification) on tiny GPT-2s built from configs; the scores equal what other code paths compute."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from taskgraph.cli import main
from taskgraph.data.base import build_source
from taskgraph.data.planted_gen import planted_gen_spec
from taskgraph.eval import evaluate_run
from taskgraph.metrics.text_overlap import text_scores
from taskgraph.model import TaskGraphModel
from taskgraph.model.generation import generate
from taskgraph.train.batches import load_task_data
from taskgraph.train.evaluate import evaluate
from tests.train.test_generative_train import mixed_spec, write_data


def small_planted_gen() -> dict:
    return planted_gen_spec(
        router="private",
        tasks=3,
        skills=3,
        examples_per_task=40,
        hidden_size=16,
        num_heads=2,
        seq_len=8,
        vocab_size=24,
        steps=30,
        batch_size=16,
    )


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("planted-gen")
    (folder / "spec.yaml").write_text(yaml.safe_dump(small_planted_gen(), sort_keys=False))
    assert main(["train", str(folder / "spec.yaml"), "--out", str(folder / "run")]) == 0
    return folder / "run"


def test_planted_generative_eval_scores_greedy_generation(planted_run: Path, capsys: pytest.CaptureFixture) -> None:
    out = planted_run.parent / "eval.json"
    assert main(["eval", str(planted_run), "--json", str(out), "--no-timing"]) == 0
    table = capsys.readouterr().out
    assert "exact" in table and "token-F1" in table and "ROUGE-L" in table
    result = json.loads(out.read_text())
    model = TaskGraphModel.from_pretrained(planted_run / "model")
    data = load_task_data(model.spec, ".", tokenizer=None, pad_id=0, lm=model.lm_info(), splits=("test",))["test"]
    forced = evaluate(model, data, pad_id=0)  # exact match read from one teacher-forced pass
    for task in data:
        scores = result["tasks"][task.name]
        assert set(scores) >= {"exact_match", "token_f1", "rouge_l"} and "accuracy" not in scores
        assert scores["exact_match"] == pytest.approx(forced.acc[task.name])  # generation writes what it forced
        assert scores["exact_match"] <= scores["token_f1"] <= 1 and scores["exact_match"] <= scores["rouge_l"] <= 1
    assert 0 < result["mean"]["exact_match"] < 1 and "accuracy" not in result["mean"]  # no task has an accuracy
    assert result["ground_truth"] == "planted" and result["allocation"]["precision"] is not None
    assert result["gradient_alignment"] is not None  # target NLL gradients of every task


def test_mixed_text_run_scores_each_task_by_its_objective(tmp_path: Path) -> None:
    write_data(tmp_path)
    spec = mixed_spec(tmp_path)
    spec["training"].update(steps=6, eval_every=6, checkpoint_every=6)
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    assert main(["train", str(tmp_path / "spec.yaml"), "--out", str(tmp_path / "run")]) == 0
    result = evaluate_run(tmp_path / "run", split="val", batch_size=4, timing=False)
    model = TaskGraphModel.from_pretrained(tmp_path / "run" / "model")
    data = load_task_data(
        model.spec, tmp_path, tokenizer=model.tokenizer, pad_id=0, lm=model.lm_info(), splits=("val",)
    )["val"]
    forced = evaluate(model, data, pad_id=0)
    assert set(result["tasks"]["rt"]) >= {"accuracy", "macro_f1"} and "exact_match" not in result["tasks"]["rt"]
    assert result["tasks"]["rt-gen"]["accuracy"] == pytest.approx(forced.acc["rt-gen"])  # rank classification
    assert "exact_match" not in result["tasks"]["rt-gen"]
    examples = build_source(model.spec.tasks[0], tmp_path).load("val")
    written = [c.text for c in generate(model, "sum", examples.texts)]
    manual = text_scores(written, examples.targets)  # the gold text as the data gives it
    assert {k: result["tasks"]["sum"][k] for k in manual} == pytest.approx(manual)
    assert result["mean"]["accuracy"] == pytest.approx(
        (result["tasks"]["rt"]["accuracy"] + result["tasks"]["rt-gen"]["accuracy"]) / 2
    )
    assert result["mean"]["exact_match"] == result["tasks"]["sum"]["exact_match"]
