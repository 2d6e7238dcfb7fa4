"""Property-based checks of the command line's file inputs: whatever a data file, a predict input or a
run folder holds, ``taskgraph`` exits 0 or 2, never prints a traceback, writes nothing outside its ``--out`` and,
when it fails, leaves the run it read exactly as it was.

Generated inputs, per kind (``max_examples``; derandomized, so CI sees the same cases every time):

* JSONL data files (50) and CSV data files (35), read by ``validate`` (train's own checks: read and encode);
* predict inputs (40);
* run folders: one file of a copy of a real tiny run edited (a field set to another JSON value, deleted, the file
  truncated, replaced by bytes, a folder, a FIFO or a symlink loop) and read by ``eval``, ``export`` or ``predict``
  (50) or by ``train --resume`` (10: a resume that works trains and draws its plots, seconds each);
* checkpoint manifests (read-only fuzz of ``model/manifest.json``, read by ``eval`` and ``export``: 25).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.hostile import Outcome, TinyRun, cli_within, copy_run, train_tiny_run, tree

FUZZ = settings(
    deadline=None,
    database=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


PRISTINE: dict[str, bytes | str] = {}  # the trained run as it was, to check it is never changed


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    run = train_tiny_run(tmp_path_factory.mktemp("fuzz"))
    PRISTINE.update(tree(run.run))
    return run


def check(outcome: Outcome, argv: list[str]) -> None:
    event(f"exit {outcome.code}")  # --hypothesis-show-statistics shows how many cases were refused
    assert outcome.code in (0, 2), f"exit {outcome.code} for {argv}:\n{outcome.err}"
    assert not outcome.traceback, outcome.err


# ----------------------------------------------------------------------------- values
SURROGATES = st.sampled_from(["\ud800", "\udfff", "a\udc80b"])
TEXT = st.one_of(st.text(max_size=30), SURROGATES, st.just(""), st.just("x" * 140_000))
NUMBER = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, 2, -1, 2**64, 10**30]),
)
SCALAR = st.one_of(st.none(), st.booleans(), NUMBER, TEXT)
JSON = st.recursive(
    SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
LABEL = st.one_of(
    st.sampled_from([0, 1, 2, 1.0, "0", "1", "1.0", "2.0", " 1 ", "+1", "1.5", "pos", "", "9" * 30]), SCALAR
)
SPECIAL_LINES = st.sampled_from(
    [
        "[" * 100_000,
        '{"text": ' + "[" * 5000 + "]" * 5000 + ', "label": 0}',
        '{"text": "a", "label": ' + "9" * 5000 + "}",
        '{"text": "a \\ud800", "label": 0}',
        "NaN",
        "\x00\x01",
        '{"text": "a", "label": 1}{"x": 1}',
        "{}",
        "[]",
        " ",
    ]
)


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True)  # \\uXXXX escapes: lone surrogates survive into the file


@st.composite
def jsonl_file(draw: st.DrawFn) -> bytes:
    rows = [{"text": f"good dog {i}", "label": i % 2} for i in range(draw(st.integers(0, 12)))]
    lines = [dumps(r) for r in rows]
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["row", "value", "special", "bytes"]))
        if kind == "row":
            line = dumps(
                {draw(st.sampled_from(["text", "label", "x"])): draw(TEXT), "label": draw(LABEL), "text": draw(TEXT)}
            )
        elif kind == "value":
            line = dumps(draw(JSON))
        elif kind == "special":
            line = draw(SPECIAL_LINES)
        else:
            line = draw(st.binary(max_size=20)).decode("latin-1")
        lines.insert(draw(st.integers(0, len(lines))), line)
    data = "\n".join(lines).encode("utf-8", "surrogatepass")
    return (b"\xef\xbb\xbf" if draw(st.booleans()) else b"") + data


@st.composite
def csv_file(draw: st.DrawFn) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    writer.writerow(draw(st.sampled_from([["text", "label"], ["label", "text", "x"], ["text"], ["text", "text"]])))
    for i in range(draw(st.integers(0, 12))):
        writer.writerow([f"good dog {i}", i % 2])
    for _ in range(draw(st.integers(0, 4))):
        row = draw(
            st.lists(st.one_of(st.text(max_size=12), st.sampled_from(["0.0", "1", "2.0", "x" * 140_000])), max_size=4)
        )
        writer.writerow(row)
    text = out.getvalue()
    if draw(st.booleans()):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(['"', "\x00", "\r", ',"a"b,', "\ud800"])) + text[at:]
    return (b"\xef\xbb\xbf" if draw(st.booleans()) else b"") + text.encode("utf-8", "surrogatepass")


def _spec_with_data(tiny: TinyRun, folder: Path, kind: str) -> Path:
    """The tiny spec with task ``sentiment`` reading ``folder/data.<kind>`` (the others as trained)."""
    spec = yaml.safe_load(tiny.spec.read_text())
    for task in spec["tasks"]:
        task["data"]["path"] = str(tiny.folder / task["data"]["path"])
    spec["tasks"][0]["data"] = {"source": kind, "path": f"data.{kind}"}
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return folder / "spec.yaml"


def _validate_data(tiny: TinyRun, kind: str, content: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        spec = _spec_with_data(tiny, folder, kind)
        (folder / f"data.{kind}").write_bytes(content)
        before = tree(folder)
        argv = ["validate", str(spec)]
        check(cli_within(argv), argv)
        assert tree(folder) == before  # validate writes nothing


@settings(FUZZ, max_examples=50)
@given(content=jsonl_file())
def test_any_jsonl_data_file_is_exit_0_or_2(tiny: TinyRun, content: bytes) -> None:
    _validate_data(tiny, "jsonl", content)


@settings(FUZZ, max_examples=35)
@given(content=csv_file())
def test_any_csv_data_file_is_exit_0_or_2(tiny: TinyRun, content: bytes) -> None:
    _validate_data(tiny, "csv", content)


@settings(FUZZ, max_examples=40)
@given(content=jsonl_file(), field=st.sampled_from(["text", "label"]))
def test_any_predict_input_is_exit_0_or_2_and_writes_only_its_out(tiny: TinyRun, content: bytes, field: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "in.jsonl").write_bytes(content)
        before = tree(folder)
        argv = [
            "predict",
            str(tiny.run),
            "--task",
            "color",
            "--input",
            str(folder / "in.jsonl"),
            "--text-field",
            field,
            "--out",
            str(folder / "out.jsonl"),
        ]
        outcome = cli_within(argv)
        check(outcome, argv)
        after = tree(folder)
        written = after.pop("out.jsonl", None)
        assert after == before
        if outcome.code == 0:
            assert written is not None and len(written.splitlines()) == sum(  # type: ignore[union-attr]
                1 for line in content.splitlines() if line.strip() and line.strip() != b"\xef\xbb\xbf"
            )
        else:
            assert written is None


# ----------------------------------------------------------------------------- run folders
RUN_FILES = [
    "checkpoints/step-000002/trainer.json",
    "train.json",
    "log.jsonl",
    "model/manifest.json",
    "model/tokenizer/tokenizer.json",
    "model/tokenizer/tokenizer_config.json",
    ".taskgraph-run.json",
    "best/trainer.json",
    "spec.yaml",
]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a JSON document (the root included)."""
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value[:4]):
            out += _paths(item, prefix + (i,))
    return out


@st.composite
def run_edit(draw: st.DrawFn, files: list[str]) -> tuple[str, str, Any]:
    """(file, mutation, argument): what to do to one file of a run copy."""
    name = draw(st.sampled_from(files))
    kind = draw(st.sampled_from(["set", "set", "set", "delete", "truncate", "bytes", "folder", "fifo", "loop"]))
    if kind in ("set", "delete"):
        return name, kind, (draw(st.integers(0, 10**6)), draw(st.one_of(JSON, SPECIAL_VALUES)))
    if kind == "truncate":
        return name, kind, draw(st.floats(0, 1))
    if kind == "bytes":
        return name, kind, draw(st.binary(max_size=64))
    return name, kind, None


SPECIAL_VALUES = st.sampled_from(
    [-1, 0, 2**63, 10**400, math.inf, -math.inf, math.nan, "", "x" * 1000, [], {}, [[[[[]]]]], "../../../../etc", "/"]
)


def apply_edit(run: Path, edit: tuple[str, str, Any]) -> None:
    name, kind, arg = edit
    path = run / name
    if kind in ("set", "delete"):
        text = path.read_text(encoding="utf-8")
        if name.endswith(".jsonl"):  # one line of the log
            lines = text.splitlines()
            index = arg[0] % len(lines)
            lines[index] = _edit_document(lines[index], kind, arg)
            path.write_text("\n".join(lines) + "\n")
        elif name.endswith(".yaml"):
            path.write_text(text + f"\nextra: {json.dumps(arg[1])}\n" if kind == "set" else text[: len(text) // 2])
        else:
            path.write_text(_edit_document(text, kind, arg))
    elif kind == "truncate":
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * arg)])
    elif kind == "bytes":
        path.write_bytes(arg)
    else:
        path.unlink()
        if kind == "folder":
            path.mkdir()
        elif kind == "fifo":
            os.mkfifo(path)
        else:
            os.symlink(path.with_name(path.name + ".b"), path)
            os.symlink(path, path.with_name(path.name + ".b"))


def _edit_document(text: str, kind: str, arg: tuple[int, Any]) -> str:
    if text.startswith("NaN"):
        return text
    document = json.loads(text)
    paths = _paths(document)
    where = paths[arg[0] % len(paths)]
    if not where:
        return json.dumps(arg[1]) if kind == "set" else ""
    parent = document
    for part in where[:-1]:
        parent = parent[part]
    if kind == "set":
        parent[where[-1]] = arg[1]
    elif isinstance(parent, dict):
        del parent[where[-1]]
    else:
        parent.pop(where[-1])
    return json.dumps(document)


def _read_only(tiny: TinyRun, edit: tuple[str, str, Any], command: str) -> None:
    """Edit a copy of the run, run a command that only reads it; the copy is unchanged, nothing else written."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        run = copy_run(tiny.run, folder / "run")
        apply_edit(run, edit)
        before = tree(folder)
        out = folder / "out"
        argv = {
            "eval": ["eval", str(run), "--no-timing", "--no-alignment", "--task", "sentiment", "--json", str(out)],
            "export": ["export", str(run), "--format", "json", "--out", str(out)],
            "predict": [
                "predict",
                str(run),
                "--task",
                "color",
                "--input",
                str(tiny.folder / "color.jsonl"),
                "--out",
                str(out),
            ],
        }[command]
        outcome = cli_within(argv)
        check(outcome, argv)
        after = tree(folder)
        written = after.pop("out", None)
        assert after == before, f"{argv} changed {sorted(set(after.items()) ^ set(before.items()))[:3]}"
        assert (written is not None) == (outcome.code == 0)


@settings(FUZZ, max_examples=50)
@given(
    edit=run_edit([f for f in RUN_FILES if f != "model/manifest.json"]),
    command=st.sampled_from(["eval", "export", "predict"]),
)
def test_an_edited_run_is_read_with_exit_0_or_2_and_left_as_it_was(
    tiny: TinyRun, edit: tuple[str, str, Any], command: str
) -> None:
    _read_only(tiny, edit, command)


@settings(FUZZ, max_examples=25)
@given(edit=run_edit(["model/manifest.json"]), command=st.sampled_from(["eval", "export"]))
def test_an_edited_manifest_is_read_with_exit_0_or_2(tiny: TinyRun, edit: tuple[str, str, Any], command: str) -> None:
    _read_only(tiny, edit, command)


@settings(FUZZ, max_examples=10)
@given(
    edit=run_edit(
        [
            "checkpoints/step-000002/trainer.json",
            "log.jsonl",
            "train.json",
            ".taskgraph-run.json",
            "checkpoints/step-000002/manifest.json",
        ]
    )
)
def test_resuming_an_edited_run_is_exit_0_or_2_and_a_failure_changes_nothing(
    tiny: TinyRun, edit: tuple[str, str, Any]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        run = copy_run(tiny.run, folder / "run")
        apply_edit(run, edit)
        before = tree(folder)
        argv = ["train", str(tiny.spec), "--out", str(run), "--resume", "--max-steps", "3"]
        outcome = cli_within(argv)
        check(outcome, argv)
        if outcome.code == 2:
            assert tree(folder) == before
        else:
            assert json.loads((run / "train.json").read_text())["steps"] == 3
            assert sorted(p.name for p in folder.iterdir()) == ["run"]


def test_the_trained_run_itself_was_never_changed(tiny: TinyRun) -> None:
    """Every property test worked on copies (this runs last in the module)."""
    assert PRISTINE and tree(tiny.run) == PRISTINE
