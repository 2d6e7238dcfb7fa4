"""The shots sampler (stratified, seeded) and the --data argument (flow mapping, .yaml, .jsonl / .csv)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from taskgraph.adapt import (
    infer_num_labels,
    parse_data_arg,
    resolve_block,
    stratified_shots,
)
from taskgraph.adapt.shots import label_counts
from taskgraph.errors import DataError
from taskgraph.spec import Spec
from tests.adapt.conftest import small_planted

LABELS = [0] * 50 + [1] * 30 + [2] * 3  # label 2 is rare


@pytest.mark.parametrize("shots, counts", [(3, [1, 1, 1]), (10, [4, 3, 3]), (12, [5, 4, 3]), (20, [9, 8, 3])])
def test_shots_are_as_balanced_as_the_data_allows(shots, counts):
    rows = stratified_shots(LABELS, shots, 3, seed=0)
    assert len(rows) == len(set(rows)) == shots and rows == sorted(rows)
    got = label_counts(LABELS, rows, 3)
    assert (
        sorted(got[:2], reverse=True) == counts[:2] and got[2] == counts[2]
    )  # which big label gets the extra is seeded


def test_shots_are_seeded():
    a, b, c = (stratified_shots(LABELS, 10, 3, seed=s) for s in (0, 0, 1))
    assert a == b and a != c


def test_shots_errors():
    with pytest.raises(DataError, match="more examples than its train split holds \\(83\\)"):
        stratified_shots(LABELS, 84, 3, seed=0)
    with pytest.raises(DataError, match="fewer than the 3 labels"):
        stratified_shots(LABELS, 2, 3, seed=0)


def test_data_argument_forms(tmp_path: Path):
    block, base = parse_data_arg("{source: planted, task: 9, seed: 0}", tmp_path)
    assert block == {"source": "planted", "task": 9, "seed": 0} and base == tmp_path
    (tmp_path / "new.jsonl").write_text(json.dumps({"text": "a b", "label": 1}) + "\n")
    assert parse_data_arg("new.jsonl", tmp_path)[0] == {
        "source": "jsonl",
        "path": str((tmp_path / "new.jsonl").resolve()),
    }
    sub = tmp_path / "cfg"
    sub.mkdir()
    (sub / "d.yaml").write_text("data: {source: csv, path: rows.csv, text: sentence}\n")
    assert parse_data_arg(str(sub / "d.yaml"), tmp_path) == (
        {"source": "csv", "path": "rows.csv", "text": "sentence"},
        sub,
    )


@pytest.mark.parametrize(
    "text, needle",
    [
        ("{source: planted", "YAML syntax error"),
        ("[1, 2]", "expected a data block with a 'source'"),
        ("missing.jsonl", "does not exist"),
        ("plain words", "expected a data block"),
    ],
)
def test_bad_data_arguments(tmp_path, text, needle):
    with pytest.raises(DataError, match=needle):
        parse_data_arg(text, tmp_path)


def test_resolve_block_fills_the_planted_universe_and_makes_paths_absolute(tmp_path):
    spec = Spec.model_validate(small_planted())
    block = resolve_block({"source": "planted", "task": 9}, tmp_path, spec)
    assert block == {
        "source": "planted",
        **{k: v for k, v in spec.tasks[0].data.own_fields().items() if k != "task"},
        "task": 9,
    }
    assert (
        resolve_block({"source": "planted", "task": 9, "examples_per_task": 50}, tmp_path, spec)["examples_per_task"]
        == 50
    )
    jsonl = resolve_block({"source": "jsonl", "train": "a.jsonl", "test": "/abs/t.jsonl"}, tmp_path, spec)
    assert jsonl["train"] == str((tmp_path / "a.jsonl").resolve()) and jsonl["test"] == "/abs/t.jsonl"
    with pytest.raises(DataError, match="unknown data source 'nope'"):
        resolve_block({"source": "nope"}, tmp_path, spec)
    with pytest.raises(DataError, match="invalid planted parameters"):
        resolve_block({"source": "planted", "task": 99}, tmp_path, spec)


def test_label_count_inference(tmp_path):
    spec = Spec.model_validate(small_planted())
    planted = resolve_block({"source": "planted", "task": 9}, tmp_path, spec)
    from taskgraph.data.planted import PlantedParams, planted_universe

    universe = planted_universe(
        PlantedParams.model_validate({k: v for k, v in planted.items() if k != "source"}).universe_config()
    )
    assert infer_num_labels("t", planted, tmp_path) == universe.num_labels(9)
    rows = [{"text": f"w{i}", "label": i % 4} for i in range(40)]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert infer_num_labels("t", {"source": "jsonl", "path": str(tmp_path / "d.jsonl")}, tmp_path) == 4
    named = {"source": "jsonl", "path": str(tmp_path / "d.jsonl"), "labels": ["a", "b", "c", "d", "e"]}
    assert infer_num_labels("t", named, tmp_path) == 5
    (tmp_path / "one.jsonl").write_text("".join(json.dumps({"text": f"w{i}", "label": 0}) + "\n" for i in range(20)))
    with pytest.raises(DataError, match="give --labels N"):
        infer_num_labels("t", {"source": "jsonl", "path": str(tmp_path / "one.jsonl")}, tmp_path)
