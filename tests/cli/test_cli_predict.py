"""taskgraph predict RUN --task NAME --input FILE.jsonl: labels + probabilities; bad input is exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import BertTokenizerFast

from taskgraph.cli import main
from taskgraph.model import TaskGraphModel, predict
from taskgraph.spec import Spec
from tests.conftest import minimal_spec

WORDS = "the movie was good bad very dull plot not fun".split()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("predict")
    (root / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS) + "\n")
    tokenizer = BertTokenizerFast.from_pretrained(str(root), local_files_only=True)
    model = TaskGraphModel(Spec.model_validate(minimal_spec()), tokenizer=tokenizer)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    model.save_pretrained(root / "run" / "model")
    return root / "run"


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_predict_to_file_matches_the_api(run_dir, tmp_path):
    texts = ["the movie was good", "very dull plot", "not fun"]
    src = write_jsonl(tmp_path / "in.jsonl", [{"id": i, "text": t} for i, t in enumerate(texts)])
    out = tmp_path / "out.jsonl"
    assert main(["predict", str(run_dir), "--task", "b", "--input", str(src), "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    expected = predict(TaskGraphModel.from_pretrained(run_dir / "model"), "b", texts)
    assert [r["id"] for r in rows] == [0, 1, 2]
    assert [r["label"] for r in rows] == [e["label"] for e in expected]
    for row, exp in zip(rows, expected):
        assert len(row["probs"]) == 3 and row["probs"] == pytest.approx(exp["probs"], abs=1e-6)
        assert sum(row["probs"]) == pytest.approx(1.0, abs=1e-5)


def test_predict_to_stdout_and_model_dir(run_dir, tmp_path, capsys):
    src = write_jsonl(tmp_path / "in.jsonl", [{"sentence": "good"}])
    assert (
        main(["predict", str(run_dir / "model"), "--task", "a", "--input", str(src), "--text-field", "sentence"]) == 0
    )
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["sentence"] == "good" and len(row["probs"]) == 2


@pytest.mark.parametrize(
    "make, needle",
    [
        (
            lambda tmp: ["--task", "zz", "--input", str(write_jsonl(tmp / "i.jsonl", [{"text": "x"}]))],
            "unknown task 'zz'",
        ),
        (lambda tmp: ["--task", "a", "--input", str(tmp / "missing.jsonl")], "missing.jsonl' does not exist"),
        (
            lambda tmp: ["--task", "a", "--input", str(write_jsonl(tmp / "i.jsonl", [{"txt": "x"}]))],
            "line 1: needs a string field 'text'",
        ),
        (
            lambda tmp: ["--task", "a", "--input", str((tmp / "b.jsonl").write_text("{oops\n") and tmp / "b.jsonl")],
            "not valid JSON",
        ),
        (
            lambda tmp: ["--task", "a", "--input", str((tmp / "e.jsonl").write_text("\n") and tmp / "e.jsonl")],
            "no records",
        ),
        (
            lambda tmp: [
                "--task",
                "a",
                "--device",
                "cuda:7",
                "--input",
                str(write_jsonl(tmp / "i.jsonl", [{"text": "x"}])),
            ],
            "cuda",
        ),
    ],
)
def test_bad_input_exit_2(run_dir, tmp_path, capsys, make, needle):
    assert main(["predict", str(run_dir), *make(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_not_a_run_exit_2(tmp_path, capsys):
    src = write_jsonl(tmp_path / "i.jsonl", [{"text": "x"}])
    assert main(["predict", str(tmp_path), "--task", "a", "--input", str(src)]) == 2
    assert "is neither a run folder" in capsys.readouterr().err


def test_corrupted_checkpoint_exit_2(run_dir, tmp_path, capsys):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(run_dir, broken)
    weights = broken / "model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    src = write_jsonl(tmp_path / "i.jsonl", [{"text": "x"}])
    assert main(["predict", str(broken), "--task", "a", "--input", str(src)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err


def test_mixed_tasks_from_a_field_equal_one_task_at_a_time(run_dir, tmp_path, capsys):
    """--task-field: records of several tasks in shared batches give what each task alone gives."""
    texts = ["the movie was good", "very dull plot", "not fun", "good", "plot", "the fun movie"]
    tasks = ["b", "a", "b", "a", "a", "b"]
    src = write_jsonl(tmp_path / "in.jsonl", [{"text": t, "task": k} for t, k in zip(texts, tasks)])
    out = tmp_path / "out.jsonl"
    argv = [
        "predict",
        str(run_dir),
        "--task-field",
        "task",
        "--input",
        str(src),
        "--out",
        str(out),
        "--batch-size",
        "4",
    ]
    assert main(argv) == 0
    assert "6 predictions for 2 task(s) in mixed batches" in capsys.readouterr().err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    model = TaskGraphModel.from_pretrained(run_dir / "model")
    for name in ("a", "b"):
        mine = [i for i, k in enumerate(tasks) if k == name]
        alone = predict(model, name, [texts[i] for i in mine])
        for i, exp in zip(mine, alone):
            assert rows[i]["task"] == name and rows[i]["label"] == exp["label"]
            assert rows[i]["probs"] == pytest.approx(exp["probs"], abs=1e-6)
    assert [len(r["probs"]) for r in rows] == [3, 2, 3, 2, 2, 3]  # each record its own task's labels
    again = predict(model, tasks, texts, batch_size=2)  # the Python API, other batches
    assert [r["label"] for r in again] == [r["label"] for r in rows]
    for a, r in zip(again, rows):
        assert a["probs"] == pytest.approx(r["probs"], abs=1e-6)


@pytest.mark.parametrize(
    "rows, needle",
    [
        (
            [{"text": "x", "task": "a"}, {"text": "y", "task": "zz"}],
            "line 2: field 'task' (--task-field) must name a task of the model, found 'zz'",
        ),
        ([{"text": "x"}], "line 1: field 'task' (--task-field) must name a task of the model, it has only ['text']"),
        ([{"text": "x", "task": 3}], "found 3"),
    ],
)
def test_a_bad_task_field_is_exit_2_naming_the_line(run_dir, tmp_path, capsys, rows, needle):
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    assert main(["predict", str(run_dir), "--task-field", "task", "--input", str(src)]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_one_task_per_text_needs_as_many_tasks_as_texts(run_dir):
    from taskgraph.errors import ModelError

    model = TaskGraphModel.from_pretrained(run_dir / "model")
    with pytest.raises(ModelError, match="one task per text"):
        predict(model, ["a", "b"], ["good"])
    with pytest.raises(ModelError, match="unknown task 'zz'"):
        predict(model, ["a", "zz"], ["good", "bad"])
