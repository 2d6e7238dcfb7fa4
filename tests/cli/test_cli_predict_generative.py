"""taskgraph predict on a generative run: completions of free-text tasks, the chosen choice of a choices task, and
classification, alone or in mixed batches; templates rendered from each record's fields; bad records are exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from taskgraph.cli import main
from taskgraph.model import TaskGraphModel
from taskgraph.model.generation import generate
from taskgraph.model.predict import predict
from taskgraph.model.rank_choices import rank_choices
from taskgraph.spec import spec_from_dict
from tests.model.test_generative import trained
from tests.train.test_generative_train import mixed_spec, write_data

RECORDS = [
    {"task": "sum", "a": "one", "b": "two"},
    {"task": "rt", "text": "the movie was good"},
    {"task": "rt-gen", "text": "the movie was dull"},
    {"task": "sum", "a": "three", "b": 3},
    {"task": "rt-gen", "text": "the movie was fun"},
    {"task": "sum", "a": "two", "b": "two"},
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("predict-gen")
    write_data(folder)
    spec = mixed_spec(folder)
    spec["tasks"][0]["stop"] = ["three"]
    model = trained(spec_from_dict(spec), seed=5)  # adapters, router and heads hold random values
    model.save_pretrained(folder / "run" / "model")
    return folder / "run"


def prompt(record: dict) -> str:
    return (
        f"what is {record['a']} plus {record['b']} ? answer :"
        if record["task"] == "sum"
        else f"review : {record['text']}"
    )


def test_mixed_records_equal_each_task_through_the_api(run_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    assert (
        main(
            [
                "predict",
                str(run_dir),
                "--task-field",
                "task",
                "--input",
                str(tmp_path / "in.jsonl"),
                "--out",
                str(tmp_path / "out.jsonl"),
                "--batch-size",
                "2",
            ]
        )
        == 0
    )
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [{k: r[k] for k in RECORDS[i]} for i, r in enumerate(out)] == RECORDS  # the records' own fields kept
    model = TaskGraphModel.from_pretrained(run_dir / "model")
    sums = [r for r in RECORDS if r["task"] == "sum"]
    written = generate(model, "sum", [prompt(r) for r in sums])  # one call, one task
    assert [(r["completion"], r["stopped"]) for r in out if r["task"] == "sum"] == [
        (c.text, c.stopped) for c in written
    ]
    reviews = [r for r in RECORDS if r["task"] == "rt-gen"]
    labels, scores = rank_choices(model, "rt-gen", [prompt(r) for r in reviews])
    chosen = [r for r in out if r["task"] == "rt-gen"]
    assert [r["label"] for r in chosen] == labels and [r["choice"] for r in chosen] == [
        ["bad", "good"][i] for i in labels
    ]
    assert torch.tensor([r["scores"] for r in chosen]) == pytest.approx(scores, abs=1e-5)
    (classified,) = [r for r in out if r["task"] == "rt"]
    assert classified["probs"] == pytest.approx(predict(model, "rt", ["the movie was good"])[0]["probs"], abs=1e-6)


def test_one_generative_task_to_standard_output(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "in.jsonl").write_text(json.dumps({"a": "one", "b": "one"}) + "\n")
    assert main(["predict", str(run_dir), "--task", "sum", "--input", str(tmp_path / "in.jsonl")]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    record = json.loads(line)
    assert set(record) == {"a", "b", "completion", "stopped"} and record["stopped"] in ("end", "stop", "length")


def test_a_record_without_the_templates_fields_is_exit_2(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "in.jsonl").write_text(json.dumps({"a": "one", "b": "two"}) + "\n" + json.dumps({"a": "one"}) + "\n")
    assert (
        main(
            [
                "predict",
                str(run_dir),
                "--task",
                "sum",
                "--input",
                str(tmp_path / "in.jsonl"),
                "--out",
                str(tmp_path / "out.jsonl"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "line 2" in err and "no column 'b' for the template's slot {b}" in err
    assert not (tmp_path / "out.jsonl").exists()
