"""CSV source: header columns, quoting, TSV, string labels, and its error paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskgraph.data.csv import CsvParams, CsvSource
from taskgraph.errors import DataError

ALL_TRAIN = [1.0, 0.0, 0.0]


def source(tmp_path: Path, num_labels: int = 2, **params: object) -> CsvSource:
    return CsvSource(CsvParams(**params), task="news", num_labels=num_labels, base_dir=tmp_path)


def error(src: CsvSource, split: str = "train") -> str:
    with pytest.raises(DataError) as info:
        src.load(split)
    return str(info.value)


def test_reads_header_quoting_and_integer_strings(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text('id,text,label\n1,"hello, world",1\n2,"two\nlines",0\n\n3,plain,1\n')
    ex = source(tmp_path, path="x.csv", split=ALL_TRAIN).load("train")
    assert ex.texts == ["hello, world", "two\nlines", "plain"] and ex.labels == [1, 0, 1]


def test_tsv_label_names_and_bom(tmp_path: Path) -> None:
    (tmp_path / "x.tsv").write_bytes("\ufeffsentence\tsentiment\nnice\tpos\nawful\tneg\n".encode())
    src = source(
        tmp_path,
        path="x.tsv",
        delimiter="\t",
        text="sentence",
        label="sentiment",
        labels=["neg", "pos"],
        split=ALL_TRAIN,
    )
    assert src.load("train").labels == [1, 0]


def test_seeded_split_of_one_file(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("text,label\n" + "".join(f"t{i},{i % 3}\n" for i in range(30)))
    src = source(tmp_path, 3, path="x.csv")
    sizes = [len(src.load(n)) for n in ("train", "val", "test")]
    assert sizes == [24, 3, 3]


def test_missing_column_lists_header(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("review,label\ngood,1\n")
    msg = error(source(tmp_path, path="x.csv"))
    assert "task 'news'" in msg and "x.csv line 2" in msg and "no column 'text'" in msg
    assert "['label', 'review']" in msg


def test_field_count_mismatch_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("text,label\ngood,1\nbad,0,extra\n")
    msg = error(source(tmp_path, path="x.csv"))
    assert "line 3 has 3 fields but the header has 2" in msg


def test_bad_labels_name_the_line(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("text,label\ngood,1\nbad,7\n")
    msg = error(source(tmp_path, path="x.csv"))
    assert "x.csv line 3" in msg and "label '7' is outside [0, 2)" in msg
    (tmp_path / "y.csv").write_text("text,label\ngood,positive\n")
    msg = error(source(tmp_path, path="y.csv"))
    assert "line 2" in msg and "'positive' is not an integer" in msg


def test_missing_file_and_directory(tmp_path: Path) -> None:
    assert "does not exist" in error(source(tmp_path, path="none.csv"))
    (tmp_path / "dir.csv").mkdir()
    assert "is a directory, not a file" in error(source(tmp_path, path="dir.csv"))


def test_not_utf8_and_header_only(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_bytes(b"text,label\ngood,1\n\xff\xfe,0\n")
    assert "line 3 is not UTF-8" in error(source(tmp_path, path="x.csv"))
    (tmp_path / "h.csv").write_text("text,label\n")
    msg = error(source(tmp_path, path="h.csv"))
    assert "the train split is empty" in msg and "0 rows" in msg
