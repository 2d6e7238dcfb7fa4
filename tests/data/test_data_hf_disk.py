"""hf-disk source, with a stand-in ``datasets`` module (the real one is an optional extra)."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from taskgraph.data.hf_disk import HfDiskParams, HfDiskSource
from taskgraph.errors import DataError


class FakeDataset:
    """What the source uses of ``datasets.Dataset``: ``column_names`` and ``ds[column]``."""

    def __init__(self, columns: dict[str, list[Any]]) -> None:
        self._columns = columns
        self.column_names = list(columns)

    def __getitem__(self, column: str) -> list[Any]:
        return list(self._columns[column])


class FakeDatasetDict(dict):
    pass


def rows(n: int, start: int = 0) -> FakeDataset:
    return FakeDataset(
        {"text": [f"t{i}" for i in range(start, start + n)], "label": [i % 2 for i in range(n)], "idx": list(range(n))}
    )


@pytest.fixture
def fake_datasets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """Installs a ``datasets`` module whose load_from_disk returns ``disk[path]``."""
    disk: dict[str, Any] = {}
    module = types.ModuleType("datasets")

    def load_from_disk(path: str) -> Any:
        if path not in disk:
            raise FileNotFoundError(f"Directory {path} is neither a Dataset nor a DatasetDict directory.")
        return disk[path]

    module.load_from_disk = load_from_disk  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "datasets", module)
    return disk


def source(tmp_path: Path, **params: Any) -> HfDiskSource:
    return HfDiskSource(HfDiskParams(**params), task="imdb", num_labels=2, base_dir=tmp_path)


def error(src: HfDiskSource, split: str = "train") -> str:
    with pytest.raises(DataError) as info:
        src.load(split)
    return str(info.value)


def test_without_datasets_says_pip_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets -> ImportError
    (tmp_path / "ds").mkdir()
    msg = error(source(tmp_path, path="ds"))
    assert "task 'imdb'" in msg and "pip install datasets" in msg


def test_dataset_dict_splits_by_name_and_carved_test(fake_datasets: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "ds").mkdir()
    fake_datasets[str(tmp_path / "ds")] = FakeDatasetDict(train=rows(20), validation=rows(4, start=100))
    src = source(tmp_path, path="ds")
    assert src.load("val").texts == ["t100", "t101", "t102", "t103"]
    train, test = src.load("train"), src.load("test")
    assert (len(train), len(test)) == (18, 2)  # test carved: 0.1 / 0.9 of 20
    assert not set(train.texts) & set(test.texts) and train.labels == [int(t[1:]) % 2 for t in train.texts]


def test_named_splits_and_plain_dataset(fake_datasets: dict[str, Any], tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    fake_datasets[str(tmp_path / "a")] = FakeDatasetDict(tr=rows(10), dev2=rows(3), ev=rows(2))
    src = source(tmp_path, path="a", splits={"train": "tr", "val": "dev2", "test": "ev"})
    assert [len(src.load(s)) for s in ("train", "val", "test")] == [10, 3, 2]
    fake_datasets[str(tmp_path / "b")] = rows(10)
    assert [len(source(tmp_path, path="b").load(s)) for s in ("train", "val", "test")] == [8, 1, 1]
    assert "drop data.splits" in error(source(tmp_path, path="b", splits={"val": "x"}))


def test_errors(fake_datasets: dict[str, Any], tmp_path: Path) -> None:
    assert "does not exist" in error(source(tmp_path, path="nowhere"))
    (tmp_path / "junk").mkdir()
    assert "not a directory written by datasets' save_to_disk" in error(source(tmp_path, path="junk"))
    (tmp_path / "ds").mkdir()
    fake_datasets[str(tmp_path / "ds")] = FakeDatasetDict(train=rows(10), test=rows(2))
    msg = error(source(tmp_path, path="ds", text="sentence"))
    assert "no column 'sentence'" in msg and "['text', 'label', 'idx']" in msg
    msg = error(source(tmp_path, path="ds", splits={"val": "validation"}))
    assert "has no split 'validation'" in msg and "['test', 'train']" in msg
    fake_datasets[str(tmp_path / "ds")] = FakeDatasetDict(test=rows(2))
    assert "has no train split" in error(source(tmp_path, path="ds"))
    bad = FakeDataset({"text": ["a", "b", "c"], "label": [0, 1, 5]})
    fake_datasets[str(tmp_path / "ds")] = FakeDatasetDict(train=bad)
    msg = error(source(tmp_path, path="ds"))
    assert "[train] row 2" in msg and "label 5 is outside [0, 2)" in msg


def test_a_special_file_in_or_as_the_datasets_folder_is_named(fake_datasets: dict[str, Any], tmp_path: Path) -> None:
    """A FIFO inside would block ``load_from_disk``; a FIFO or a loop as the folder was "does not exist"."""
    (tmp_path / "ds").mkdir()
    fake_datasets[str(tmp_path / "ds")] = FakeDatasetDict(train=rows(20))
    os.mkfifo(tmp_path / "ds" / "state.json")
    assert "state.json' is a FIFO (named pipe)" in error(source(tmp_path, path="ds"))
    os.mkfifo(tmp_path / "pipe")
    assert "datasets directory" in (msg := error(source(tmp_path, path="pipe"))) and "is a FIFO" in msg
    os.symlink(tmp_path / "loop2", tmp_path / "loop1")
    os.symlink(tmp_path / "loop1", tmp_path / "loop2")
    assert "is a symlink loop" in error(source(tmp_path, path="loop1"))
