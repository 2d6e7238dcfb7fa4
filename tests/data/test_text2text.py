"""Generative tasks' spec fields and data: templates, target columns, choices, and the errors that name the row."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from taskgraph.data.base import build_source
from taskgraph.data.examples import Examples
from taskgraph.data.text2text import Text2Text
from taskgraph.errors import DataError, SpecError
from taskgraph.spec import load_spec, spec_from_dict
from taskgraph.spec.models import TaskSpec
from taskgraph.train.run_checkpoint import spec_hash

REPO = Path(__file__).resolve().parents[2]


def jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def task(**fields: Any) -> TaskSpec:
    return TaskSpec.model_validate({"name": "t", "objective": "generate", **fields})


def test_template_and_target_column(tmp_path: Path) -> None:
    path = jsonl(tmp_path / "qa.jsonl", [{"q": f"{i}+{i}", "a": str(2 * i), "n": i} for i in range(10)])
    spec = task(template="Q: {q} (#{n}) A:", data={"source": "jsonl", "path": str(path), "target": "a"})
    train = build_source(spec).load("train")
    assert train.generative and len(train) == 8
    i = int(train.targets[0]) // 2
    assert train.texts[0] == f"Q: {i}+{i} (#{i}) A:" and train.labels == [0] * 8 and spec.num_labels == 1


def test_choices_cast_labels_and_index_targets(tmp_path: Path) -> None:
    labelled = jsonl(tmp_path / "l.jsonl", [{"text": f"t{i}", "label": i % 2} for i in range(10)])
    spec = task(choices=["no", "yes"], template="Is it? {text}", data={"source": "jsonl", "path": str(labelled)})
    train = build_source(spec).load("train")
    assert spec.num_labels == 2 and train.targets == [["no", "yes"][y] for y in train.labels]
    assert all(t.startswith("Is it? t") for t in train.texts)
    targets = jsonl(tmp_path / "t.jsonl", [{"text": f"t{i}", "answer": ["no", "yes"][i % 2]} for i in range(10)])
    spec = task(choices=["no", "yes"], data={"source": "jsonl", "path": str(targets), "target": "answer"})
    train = build_source(spec).load("train")
    assert train.labels == [["no", "yes"].index(t) for t in train.targets]
    cast = Text2Text("Review: {text}", ("bad", "good")).cast(Examples("c", [1, 0], texts=["a", "b"]), "c", "here")
    assert cast.texts == ["Review: a", "Review: b"] and cast.targets == ["good", "bad"]


@pytest.mark.parametrize(
    "fields, row, message",
    [
        ({"target": "a"}, {"text": "x"}, "line 1: no target column 'a'"),
        ({}, {"text": "x", "label": 0}, "needs a target: name its column with data.target, or give the task choices"),
        (
            {"target": "a", "_choices": ["p", "q"]},
            {"text": "x", "a": "r"},
            "target 'r' is not one of the task's choices",
        ),
        ({"target": "a", "_template": "{q}"}, {"text": "x", "a": "r"}, "no column 'q' for the template's slot {q}"),
        ({"target": "a"}, {"text": "x", "a": 3}, "target column 'a' holds int 3, expected a string"),
    ],
)
def test_row_errors_name_task_file_and_row(
    tmp_path: Path, fields: dict[str, Any], row: dict[str, Any], message: str
) -> None:
    path = jsonl(tmp_path / "d.jsonl", [row] * 4)
    extra = {k[1:]: fields.pop(k) for k in list(fields) if k.startswith("_")}
    spec = task(data={"source": "jsonl", "path": str(path), **fields}, **extra)
    with pytest.raises(DataError, match="task 't': .*d.jsonl") as info:
        build_source(spec).load("train")
    assert message in str(info.value)


def test_target_column_on_a_classify_task_is_an_error(tmp_path: Path) -> None:
    path = jsonl(tmp_path / "d.jsonl", [{"text": "x", "label": 0, "a": "b"}] * 4)
    spec = TaskSpec.model_validate(
        {"name": "t", "num_labels": 2, "data": {"source": "jsonl", "path": str(path), "target": "a"}}
    )
    with pytest.raises(DataError, match="only a generative task reads"):
        build_source(spec).load("train")


def test_spec_problems_are_reported_together() -> None:
    with pytest.raises(SpecError) as info:
        spec_from_dict(
            {
                "model": {"config": {"model_type": "gpt2"}},
                "tasks": [
                    {"name": "a", "num_labels": 2, "template": "{x}", "choices": ["p", "q"]},
                    {"name": "b", "objective": "generate", "choices": ["p", "q"], "num_labels": 3},
                    {"name": "c", "objective": "generate", "template": "{x.y}"},
                    {"name": "d", "objective": "write"},
                ],
            }
        )
    text = "\n".join(info.value.problems)
    assert "tasks[0]: template, choices: for objective: generate" in text
    assert "tasks[1].num_labels: a generate task's num_labels follows its choices" in text
    assert "tasks[2].template: template slot '{x.y}'" in text
    assert "tasks[3].objective" in text


def test_classify_specs_hash_and_train_as_before_objectives_existed() -> None:
    """Hashes and a first step taken from the code before generative tasks: a resumed old run still matches."""
    assert (
        spec_hash(load_spec(REPO / "configs/quickstart.yaml"))
        == "1c5b94948d12e94ff452b157c21b97a32b1dc3818fd86f8ab505292292f5e644"
    )
    assert (
        spec_hash(load_spec(REPO / "configs/planted.yaml"))
        == "9499819c1a0db793213fd10ce29200ee8e2778ada441b7210404a045375c1aae"
    )
    from taskgraph.model import TaskGraphModel

    spec = spec_from_dict(
        {
            "model": {
                "config": dict(model_type="gpt2", n_layer=2, n_embd=32, n_head=2, vocab_size=100, n_positions=64),
                "target_modules": ["c_attn"],
                "pooling": "last",
            },
            "adapters": {"rank": 2, "skills": 2},
            "router": {"kind": "poly"},
            "tasks": [{"name": "a", "num_labels": 2}, {"name": "b", "num_labels": 3}],
            "training": {"seed": 3},
        }
    )
    assert spec_hash(spec) == "0905df57b4076d9f070afa00f5587fe82d0ca10b61f981a674d592681dbc4b40"
    torch.manual_seed(0)
    model = TaskGraphModel(spec)
    ids = torch.randint(0, 100, (4, 6), generator=torch.Generator().manual_seed(0))
    out = model(ids, torch.ones_like(ids), torch.tensor([0, 1, 1, 0]), labels=torch.tensor([1, 2, 0, 1]))
    out.loss.backward()
    # recorded before objectives existed; 1e-6, not ==: the float sums' order follows torch's thread count
    assert out.loss.item() == pytest.approx(1.026220440864563, rel=1e-6)
    grads = sum(float(p.grad.double().sum()) for p in model.adapter_parameters())
    assert grads == pytest.approx(-0.42187325398299436, rel=1e-5)


@pytest.mark.parametrize("command", ["validate", "train"])
def test_choices_the_tokenizer_cannot_tell_apart_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """An uncased tokenizer maps ``Good`` and ``good`` to the same tokens: before, the task trained with two labels no
    model could tell apart (rank classification scored both alike)."""
    import yaml

    from taskgraph.cli import main
    from tests.train.test_generative_train import mixed_spec, write_data

    write_data(tmp_path)  # a WordPiece tokenizer that lowercases
    data = mixed_spec(tmp_path)
    data["tasks"][1]["choices"] = ["bad", "Good", "good"]
    data["tasks"][1]["data"]["path"] = str(
        jsonl(tmp_path / "rt3.jsonl", [{"text": "the movie was fun", "label": i % 3} for i in range(30)])
    )
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    argv = [command, str(spec)] + (["--out", str(tmp_path / "run")] if command == "train" else [])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "task 'rt-gen': choices 'Good' and 'good' tokenize to the same tokens with tokenizer " in err, err
    assert "could never tell them apart" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()
    data["tasks"][1]["choices"] = ["bad", "good", "fun"]  # distinct after tokenization: accepted
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    assert main(["validate", str(spec)]) == 0
