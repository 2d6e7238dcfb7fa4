"""JSONL source: splits, label names, and every error path (each names task, file and line)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from taskgraph.data.examples import seeded_split, split_counts
from taskgraph.data.jsonl import JsonlParams, JsonlSource
from taskgraph.errors import DataError


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def source(tmp_path: Path, num_labels: int = 2, **params: object) -> JsonlSource:
    return JsonlSource(JsonlParams(**params), task="rt", num_labels=num_labels, base_dir=tmp_path)


ROWS = [{"text": f"review {i}", "label": i % 2} for i in range(20)]


def test_one_file_gives_a_seeded_80_10_10_split(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "rt.jsonl", ROWS)
    src = source(tmp_path, path="rt.jsonl")  # relative to base_dir
    splits = {name: src.load(name) for name in ("train", "val", "test")}
    assert [len(splits[n]) for n in ("train", "val", "test")] == [16, 2, 2]
    texts = [t for n in ("train", "val", "test") for t in splits[n].texts]
    assert sorted(texts) == sorted(r["text"] for r in ROWS)  # disjoint and complete
    assert splits["train"].task == "rt" and not splits["train"].is_tokenized
    for ex in splits.values():  # labels follow their texts
        assert all(int(t.split()[1]) % 2 == y for t, y in zip(ex.texts, ex.labels))
    again = source(tmp_path, path="rt.jsonl").load("val")
    assert again.texts == splits["val"].texts  # deterministic
    other = source(tmp_path, path="rt.jsonl", split_seed=1).load("val")
    assert other.texts != splits["val"].texts  # the split seed moves rows


def test_split_counts_and_fractions() -> None:
    assert split_counts(10, (0.8, 0.1, 0.1)) == [8, 1, 1]
    assert split_counts(2, (0.1, 0.45, 0.45)) == [0, 1, 1]  # the first split takes what is left
    assert split_counts(3, (0.0, 0.5, 0.5)) == [0, 2, 1]  # rounding past n trims the last split
    parts = seeded_split(100, (0.6, 0.2, 0.2), seed=3)
    assert [len(p) for p in parts] == [60, 20, 20]
    assert sorted(np.concatenate(parts).tolist()) == list(range(100))


def test_custom_fractions(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "rt.jsonl", ROWS)
    src = source(tmp_path, path="rt.jsonl", split=[0.5, 0.25, 0.25])
    assert [len(src.load(n)) for n in ("train", "val", "test")] == [10, 5, 5]


def test_explicit_split_files_and_carved_val(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "tr.jsonl", ROWS[:18])
    write_jsonl(tmp_path / "te.jsonl", ROWS[18:])
    src = source(tmp_path, train="tr.jsonl", test="te.jsonl")
    assert src.load("test").texts == ["review 18", "review 19"]
    train, val = src.load("train"), src.load("val")
    assert (len(train), len(val)) == (16, 2)  # val carved from train: 0.1 / 0.9 of 18 rows
    assert not set(train.texts) & set(val.texts)
    write_jsonl(tmp_path / "va.jsonl", ROWS[:3])
    full = source(tmp_path, train="tr.jsonl", val="va.jsonl", test="te.jsonl")
    assert len(full.load("train")) == 18 and len(full.load("val")) == 3


def test_label_names_map_strings_and_integer_labels_stay(tmp_path: Path) -> None:
    rows = [{"text": "a", "label": "neg"}, {"text": "b", "label": "pos"}, {"text": "c", "label": 1}]
    write_jsonl(tmp_path / "x.jsonl", rows)
    src = source(tmp_path, path="x.jsonl", labels=["neg", "pos"], split=[1.0, 0.0, 0.0])
    assert src.load("train").labels == [0, 1, 1]


def test_other_column_names_and_integral_floats(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "x.jsonl", [{"review": "good", "y": 2.0}, {"review": "bad", "y": 0}])
    src = source(tmp_path, 3, path="x.jsonl", text="review", label="y", split=[1.0, 0.0, 0.0])
    assert src.load("train").labels == [2, 0]


def error(src: JsonlSource, split: str = "train") -> str:
    with pytest.raises(DataError) as info:
        src.load(split)
    return str(info.value)


def test_missing_file_names_task_and_path(tmp_path: Path) -> None:
    msg = error(source(tmp_path, path="data/none.jsonl"))
    assert "task 'rt'" in msg and "none.jsonl" in msg and "does not exist" in msg
    assert "relative to the spec's directory" in msg


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "x.jsonl").write_text('{"text": "a", "label": 0}\n\n{"text": "b", "label": \n')
    msg = error(source(tmp_path, path="x.jsonl"))
    assert "task 'rt'" in msg and "x.jsonl" in msg and "line 3" in msg and "not valid JSON" in msg


def test_non_object_line_and_non_utf8(tmp_path: Path) -> None:
    (tmp_path / "x.jsonl").write_text('{"text": "a", "label": 0}\n[1, 2]\n')
    assert "line 2 holds a JSON list" in error(source(tmp_path, path="x.jsonl"))
    (tmp_path / "y.jsonl").write_bytes(b'{"text": "a", "label": 0}\n{"text": "\xff", "label": 0}\n')
    assert "line 2 is not UTF-8" in error(source(tmp_path, path="y.jsonl"))


def test_missing_column_lists_the_columns(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "x.jsonl", [{"text": "a", "label": 0}, {"sentence": "b", "label": 1}])
    msg = error(source(tmp_path, path="x.jsonl"))
    assert "line 2" in msg and "no column 'text'" in msg and "['label', 'sentence']" in msg


def test_label_out_of_range_names_line_and_num_labels(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "x.jsonl", [{"text": "a", "label": 0}, {"text": "b", "label": 1}, {"text": "c", "label": 2}])
    msg = error(source(tmp_path, path="x.jsonl"))
    assert "task 'rt'" in msg and "line 3" in msg and "outside [0, 2)" in msg and "num_labels: 2" in msg
    write_jsonl(tmp_path / "n.jsonl", [{"text": "a", "label": -1}])
    assert "outside [0, 2)" in error(source(tmp_path, path="n.jsonl"))


@pytest.mark.parametrize("bad", ["pos", 1.5, True, None, [1]])
def test_non_integer_labels(tmp_path: Path, bad: object) -> None:
    write_jsonl(tmp_path / "x.jsonl", [{"text": "a", "label": 0}, {"text": "b", "label": bad}])
    msg = error(source(tmp_path, path="x.jsonl"))
    assert "line 2" in msg and "is not an integer" in msg
    if bad == "pos":
        assert "labels: [negative, positive]" in msg  # says how to name labels


def test_unknown_label_name_and_names_count(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "x.jsonl", [{"text": "a", "label": "neutral"}])
    msg = error(source(tmp_path, path="x.jsonl", labels=["neg", "pos"]))
    assert "'neutral' is not one of the label names ['neg', 'pos']" in msg
    msg = error(source(tmp_path, 3, path="x.jsonl", labels=["neg", "pos"]))
    assert "names 2 labels" in msg and "num_labels: 3" in msg


def test_text_must_be_a_string(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "x.jsonl", [{"text": None, "label": 0}])
    msg = error(source(tmp_path, path="x.jsonl"))
    assert "line 1" in msg and "text column 'text' holds NoneType" in msg


def test_empty_splits(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "x.jsonl", ROWS[:3])  # 80/10/10 of 3 rows leaves val and test empty
    src = source(tmp_path, path="x.jsonl")
    assert len(src.load("train")) == 3
    msg = error(src, "val")
    assert "task 'rt'" in msg and "the val split is empty" in msg and "x.jsonl: 3 rows" in msg
    (tmp_path / "empty.jsonl").write_text("\n")
    msg = error(source(tmp_path, path="x.jsonl", test="empty.jsonl"), "test")
    assert "the test split is empty" in msg and "empty.jsonl is empty" in msg


def test_unknown_split(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "x.jsonl", ROWS)
    assert "choose from ['train', 'val', 'test']" in error(source(tmp_path, path="x.jsonl"), "dev")


def test_params_forbid_unknown_keys_and_need_one_main_file() -> None:
    with pytest.raises(ValidationError, match="extra"):
        JsonlParams(path="x.jsonl", txt="review")
    with pytest.raises(ValidationError, match="exactly one of 'path'"):
        JsonlParams(path="x.jsonl", train="y.jsonl")
    with pytest.raises(ValidationError, match="exactly one of 'path'"):
        JsonlParams()
    with pytest.raises(ValidationError, match="summing to 1"):
        JsonlParams(path="x", split=[0.5, 0.1, 0.1])
    with pytest.raises(ValidationError, match="unique"):
        JsonlParams(path="x", labels=["a", "a"])
