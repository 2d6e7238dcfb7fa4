"""build_source: from a validated spec task to loaded examples; spec-level checks of source params."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from taskgraph.data import build_source
from taskgraph.data.examples import Examples
from taskgraph.data.jsonl import JsonlParams, JsonlSource
from taskgraph.errors import DataError, SpecError
from taskgraph.registry import SOURCES
from taskgraph.spec import TaskSpec, spec_from_dict

TINY = {
    "model_type": "bert",
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "vocab_size": 100,
}


def spec_with(*tasks: dict[str, object]) -> dict[str, object]:
    return {"model": {"config": dict(TINY)}, "tasks": list(tasks)}


def test_builtin_kinds_are_registered() -> None:
    assert {"jsonl", "csv", "hf-disk", "planted"} <= set(SOURCES.kinds())


def test_spec_task_to_examples_relative_to_base_dir(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "rt.jsonl").write_text(
        "".join(json.dumps({"review": f"r{i}", "y": i % 2}) + "\n" for i in range(10))
    )
    spec = spec_from_dict(
        spec_with(
            {
                "name": "rt",
                "num_labels": 2,
                "data": {"source": "jsonl", "path": "data/rt.jsonl", "text": "review", "label": "y"},
            }
        )
    )
    src = build_source(spec.tasks[0], tmp_path)
    assert isinstance(src, JsonlSource) and isinstance(src.params, JsonlParams)
    train = src.load("train")
    assert isinstance(train, Examples) and train.task == "rt" and len(train) == 8
    assert "JsonlSource(task='rt'" in repr(src) and repr(train) == "Examples(task='rt', n=8, inputs=texts)"


def test_spec_rejects_unknown_source_keys_and_kinds() -> None:
    with pytest.raises(SpecError) as info:
        spec_from_dict(
            spec_with(
                {"name": "a", "num_labels": 2, "data": {"source": "jsonl", "path": "a.jsonl", "txt": "x"}},
                {"name": "b", "num_labels": 2, "data": {"source": "parquet", "path": "b.pq"}},
                {"name": "c", "num_labels": 2, "data": {"source": "planted", "task": 99}},
            )
        )
    text = str(info.value)
    assert "tasks[0].data.txt: unknown key 'txt'; did you mean 'text'?" in text
    assert "unknown data source 'parquet'" in text and "'hf-disk'" in text
    assert "task 99 does not exist" in text


def test_build_source_without_the_spec_loader() -> None:
    task = TaskSpec.model_validate({"name": "a", "num_labels": 2, "data": {"source": "jsonl", "pth": "a"}})
    with pytest.raises(DataError, match=r"task 'a': invalid jsonl data section: data\.pth"):
        build_source(task)
    task = TaskSpec.model_validate({"name": "a", "num_labels": 2, "data": {"source": "tsv"}})
    with pytest.raises(DataError, match=r"task 'a': unknown data source 'tsv'; choose from \["):
        build_source(task)
    with pytest.raises(DataError, match="task 'a' has no data section"):
        build_source(TaskSpec(name="a", num_labels=2))


def test_examples_invariants() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Examples("t", [0], texts=["a"], token_ids=[[1]])
    with pytest.raises(ValueError, match="1 inputs but 2 labels"):
        Examples("t", [0, 1], texts=["a"])
    ex = Examples("t", [2, 0, 2], token_ids=[[1, 2], [3, 4], [5, 6]])
    assert ex.is_tokenized and ex.label_counts(4) == [1, 0, 2, 0]
    assert ex.subset([2, 0]).token_ids == [[5, 6], [1, 2]]
