"""One rule for every file format: labels, byte-order marks, field sizes, text that is not Unicode, nesting,
special files where a data file is expected, and the warning for a one-label task.

The strongest checks are equivalences: the same rows written as JSONL and as CSV give the same examples.
"""

from __future__ import annotations

import csv
import io
import json
import os
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from taskgraph.data.csv import CsvParams, CsvSource
from taskgraph.data.examples import MAX_FIELD_CHARS, parse_label
from taskgraph.data.jsonl import JsonlParams, JsonlSource, read_jsonl
from taskgraph.errors import DataError, DataWarning

ALL_TRAIN = [1.0, 0.0, 0.0]


def jsonl_source(
    tmp_path: Path, rows: list[dict[str, Any]], num_labels: int = 3, *, bom: bool = False, **params: Any
) -> JsonlSource:
    text = "".join(json.dumps(r) + "\n" for r in rows)
    (tmp_path / "x.jsonl").write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return JsonlSource(
        JsonlParams(path="x.jsonl", split=ALL_TRAIN, **params), task="t", num_labels=num_labels, base_dir=tmp_path
    )


def csv_source(
    tmp_path: Path, rows: list[dict[str, Any]], num_labels: int = 3, *, bom: bool = False, **params: Any
) -> CsvSource:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["text", "label"])
    writer.writerows([r["text"], r["label"]] for r in rows)
    (tmp_path / "x.csv").write_bytes((b"\xef\xbb\xbf" if bom else b"") + out.getvalue().encode())
    return CsvSource(
        CsvParams(path="x.csv", split=ALL_TRAIN, **params), task="t", num_labels=num_labels, base_dir=tmp_path
    )


def outcome(load: Callable[[], Any]) -> tuple[str, Any]:
    try:
        examples = load()
    except DataError as exc:
        return "error", str(exc)
    return "ok", (examples.texts, examples.labels)


# ----------------------------------------------------------------------------- labels
# Every label a file can hold, as JSON gives it; CSV gives str() of the same value (a string as it is).
LABELS = [
    0,
    1,
    2,
    1.0,
    2.0,
    "0",
    "1",
    "2",
    "1.0",
    "2.0",
    " 1 ",
    "+1",
    "01",
    0.0,
    "0.0",
    3,
    -1,
    "-1",
    "3.0",
    1.5,
    "1.5",
    "1e0",
    "x",
    True,
    None,
    "",
    "99999999999999999999999",
    "\u0661",
    "\u00b2",
]
# 1.0, 2.0 and 0.0 are the keys 1, 2 and 0 of this dict (equal numbers hash alike): they map to the same labels.
ACCEPTED = {0: 0, 1: 1, 2: 2, "0": 0, "1": 1, "2": 2, "1.0": 1, "2.0": 2, " 1 ": 1, "+1": 1, "01": 1, "0.0": 0}


def _csv_text(value: Any) -> str:
    return "" if value is None else ("true" if value is True else str(value))


@pytest.mark.parametrize("label", LABELS, ids=repr)
def test_one_label_rule_for_jsonl_and_csv(tmp_path: Path, label: Any) -> None:
    """A label means the same in JSONL and CSV: a whole number written as a number or as text, in range.

    Before: JSONL took 1.0 but not "1.0", and CSV refused "0.0"."""
    rows = [{"text": "a", "label": 0}, {"text": "c", "label": 2}, {"text": "b", "label": label}]
    as_json = outcome(lambda: jsonl_source(tmp_path, rows).load("train"))
    csv_rows = [{"text": r["text"], "label": _csv_text(r["label"])} for r in rows]
    as_csv = outcome(lambda: csv_source(tmp_path, csv_rows).load("train"))
    if label in ACCEPTED and not isinstance(label, bool):
        assert as_json == ("ok", (["a", "c", "b"], [0, 2, ACCEPTED[label]]))
        assert as_csv == as_json
    else:
        assert as_json[0] == "error" and as_csv[0] == "error", (as_json, as_csv)
        assert "line 3" in as_json[1] and "line 4" in as_csv[1]  # JSONL counts rows from 1, CSV after its header


def test_label_names_win_over_numbers_and_huge_integers_say_out_of_range() -> None:
    assert parse_label("1", ["1", "0"], 2) == 0  # a listed name is a name, even when it looks like a number
    assert parse_label("1.0", ["neg", "pos"], 2) == 1
    with pytest.raises(ValueError, match=r"outside \[0, 2\)"):
        parse_label("9" * 5000, None, 2)  # never handed to int(): Python refuses 4,300+ digit strings
    with pytest.raises(ValueError, match=r"digits\)"):
        parse_label(10**4000, None, 2)  # named by its length, not printed whole


# ----------------------------------------------------------------------------- BOM, field size
ROWS = [{"text": f"row {i}", "label": i % 3} for i in range(6)]


@pytest.mark.parametrize("make", [jsonl_source, csv_source], ids=["jsonl", "csv"])
def test_a_byte_order_mark_is_allowed_in_every_data_format(tmp_path: Path, make: Callable[..., Any]) -> None:
    plain = make(tmp_path, ROWS).load("train")
    marked = make(tmp_path, ROWS, bom=True).load("train")
    assert (marked.texts, marked.labels) == (plain.texts, plain.labels)


@pytest.mark.parametrize("size, ok", [(MAX_FIELD_CHARS, True), (MAX_FIELD_CHARS + 1, False)])
def test_one_field_size_limit_for_jsonl_and_csv(tmp_path: Path, size: int, ok: bool) -> None:
    """Before: CSV stopped at 131,072 characters (its module's limit), JSONL took any length."""
    rows = [{"text": "x" * size, "label": 1}, {"text": "short", "label": 0}, {"text": "two", "label": 2}]
    results = [
        outcome(lambda: jsonl_source(tmp_path, rows).load("train")),
        outcome(lambda: csv_source(tmp_path, rows).load("train")),
    ]
    if ok:
        assert results[0] == results[1] == ("ok", (["x" * size, "short", "two"], [1, 0, 2]))
    else:
        for status, message in results:
            assert status == "error" and f"{MAX_FIELD_CHARS:,}" in message and "JSONL and CSV alike" in message


# ----------------------------------------------------------------------------- text that breaks readers
def test_a_lone_surrogate_in_a_text_is_a_data_error(tmp_path: Path) -> None:
    """Before: JSON's "\\ud800" reached the tokenizer, which raised TypeError (exit 1)."""
    (tmp_path / "x.jsonl").write_text('{"text": "ok", "label": 0}\n{"text": "a \\ud800 b", "label": 1}\n')
    src = JsonlSource(JsonlParams(path="x.jsonl", split=ALL_TRAIN), task="t", num_labels=2, base_dir=tmp_path)
    with pytest.raises(DataError, match=r"x.jsonl line 2, column 'text'.*lone surrogate '\\ud800'"):
        src.load("train")


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"text": ' + "[" * 100_000 + "]" * 100_000 + ', "label": 0}', "nested too deeply"),
        ('{"text": "a", "label": ' + "9" * 5000 + "}", "integer of more than 4,300 digits"),
        ("[" * 100_000, "nested too deeply"),
    ],
)
def test_json_that_python_cannot_build_is_a_data_error_naming_the_line(tmp_path: Path, line: str, message: str) -> None:
    """Before: RecursionError, and a ValueError about sys.set_int_max_str_digits (exit 1)."""
    path = tmp_path / "x.jsonl"
    path.write_text('{"text": "fine", "label": 0}\n' + line + "\n")
    with pytest.raises(DataError, match=f"line 2 .*{message}"):
        read_jsonl(path)


# ----------------------------------------------------------------------------- not a regular file
def _load_within(src: Any, seconds: float = 20.0) -> str:
    """The DataError message of ``src.load("train")``; fails (instead of hanging) when it blocks."""
    result: dict[str, str] = {}

    def run() -> None:
        try:
            src.load("train")
            result["message"] = "(loaded)"
        except DataError as exc:
            result["message"] = str(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "reading the data file blocked"
    return result["message"]


@pytest.mark.parametrize(
    "make, what",
    [
        (lambda p: os.mkfifo(p), "is a FIFO (named pipe)"),
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: (os.symlink(p.with_name("b"), p), os.symlink(p, p.with_name("b"))), "is a symlink loop"),
        (lambda p: os.symlink(p.with_name("gone"), p), "is a broken symlink"),
    ],
    ids=["fifo", "folder", "loop", "broken-link"],
)
@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_a_special_file_as_data_is_named_for_what_it_is(
    tmp_path: Path, make: Callable[[Path], Any], what: str, kind: str
) -> None:
    """Before: a FIFO blocked forever; a loop was "does not exist"."""
    make(tmp_path / f"x.{kind}")
    params = (JsonlParams if kind == "jsonl" else CsvParams)(path=f"x.{kind}")
    src = (JsonlSource if kind == "jsonl" else CsvSource)(params, task="t", num_labels=2, base_dir=tmp_path)
    message = _load_within(src)
    assert what in message and f"x.{kind}" in message


# ----------------------------------------------------------------------------- one label
def test_a_train_split_of_one_label_is_a_warning_not_an_error(tmp_path: Path) -> None:
    rows = [{"text": f"r{i}", "label": 1} for i in range(10)]
    src = jsonl_source(tmp_path, rows, num_labels=2)
    with pytest.warns(DataWarning, match=r"task 't': its train split holds label 1 only \(10 rows"):
        assert src.load("train").labels == [1] * 10
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jsonl_source(tmp_path, ROWS).load("train")  # every label present: no warning
