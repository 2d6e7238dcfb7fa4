"""Bad input through the command line is exit 2 with one paragraph naming the file and what is wrong, never a
traceback, a hang or a changed run. One tiny text run is trained per module;
every test edits a copy of it.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from taskgraph.errors import CheckpointError
from taskgraph.report.run_plots import read_log
from tests.hostile import Outcome, TinyRun, cli, cli_within, copy_run, train_tiny_run, tree

DEEP = "[" * 100_000 + "]" * 100_000


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    return train_tiny_run(tmp_path_factory.mktemp("hostile"))


def refused(outcome: Outcome, *fragments: str) -> str:
    assert outcome.code == 2 and not outcome.traceback, outcome.err
    for fragment in fragments:
        assert fragment in outcome.err, outcome.err
    return outcome.err


def _edit_json(path: Path, key: str, value: Any) -> None:
    record = json.loads(path.read_text())
    record[key] = value
    path.write_text(json.dumps(record))


# ----------------------------------------------------------------------------- item 11: edited run files
TRAINER_EDITS = [
    ("log_bytes", -5, "log_bytes: Input should be greater than or equal to 0 (got -5)"),
    ("step", "2", "step: Input should be a valid integer (got '2')"),
    ("best", {"step": 2, "mean_acc": "high"}, "best.mean_acc: Input should be a valid number"),
    ("elapsed_s", float("inf"), "elapsed_s: Value error, must be a finite number"),
    ("examples", True, "examples: Input should be a valid integer (got True)"),
    ("data", [1], "data: Input should be a valid dictionary"),
    ("sampler", 5, "sampler: Input should be a valid dictionary (got 5)"),
]


@pytest.mark.parametrize("key, value, message", TRAINER_EDITS, ids=[k for k, _, _ in TRAINER_EDITS])
def test_an_edited_trainer_record_is_named_on_resume_and_changes_nothing(
    tiny: TinyRun, tmp_path: Path, key: str, value: Any, message: str
) -> None:
    """Before: a negative log_bytes crashed truncate() (OSError), a string mean_acc crashed a comparison
    (TypeError), a bool or a NaN went through."""
    run = copy_run(tiny.run, tmp_path / "run")
    _edit_json(run / "checkpoints" / "step-000002" / "trainer.json", key, value)
    before = tree(run)
    refused(cli(["train", str(tiny.spec), "--out", str(run), "--resume"]), f"trainer.json: {message}")
    assert tree(run) == before


def _line_one_null(run: Path) -> None:
    log = run / "log.jsonl"
    log.write_text("null\n" + log.read_text().split("\n", 1)[1])


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda run: ((run / "log.jsonl").unlink(), (run / "log.jsonl").mkdir()),
            "log.jsonl' is a directory, not a file",
        ),
        (_line_one_null, "log.jsonl:1: a log line is a JSON object, got NoneType"),
        (
            lambda run: ((run / "train.json").unlink(), (run / "train.json").mkdir()),
            "train.json' is a directory, not a file; a resumed run writes a regular file there",
        ),
    ],
    ids=["log-folder", "log-null-line", "summary-folder"],
)
def test_resume_checks_what_it_keeps_and_rewrites_before_training(
    tiny: TinyRun, tmp_path: Path, edit: Callable[[Path], Any], message: str
) -> None:
    """Before: a folder log was IsADirectoryError (exit 1); a `null` log line or a folder train.json was found
    only after the resumed training had rewritten the run (exit 2, the run changed)."""
    run = copy_run(tiny.run, tmp_path / "run")
    edit(run)
    before = tree(run)
    refused(cli(["train", str(tiny.spec), "--out", str(run), "--resume", "--max-steps", "3"]), message)
    assert tree(run) == before


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda p: _edit_json(p, "base_dir", 5), "train.json: base_dir: Input should be a valid string (got 5)"),
        (lambda p: _edit_json(p, "final_val", {"mean_acc": 7}), "train.json: final_val.mean_acc: Input should be less"),
        (lambda p: p.write_text(DEEP), "train.json is nested too deeply"),
        (lambda p: p.write_text(p.read_text()[:40]), "train.json is not valid JSON"),
        (lambda p: (p.unlink(), p.mkdir()), "train.json' is a directory, not a file"),
        (lambda p: (p.unlink(), os.mkfifo(p)), "train.json' is a FIFO (named pipe), not a regular file"),
    ],
    ids=["base_dir-int", "accuracy-7", "deep", "truncated", "folder", "fifo"],
)
def test_an_edited_run_summary_is_named_by_eval(
    tiny: TinyRun, tmp_path: Path, edit: Callable[[Path], Any], message: str
) -> None:
    """Before: any unreadable train.json was skipped in silence and the data looked up in the cwd."""
    run = copy_run(tiny.run, tmp_path / "run")
    edit(run / "train.json")
    before = tree(run)
    refused(cli_within(["eval", str(run), "--no-timing", "--no-alignment"]), message)
    assert tree(run) == before


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda p: p.write_text('{"version": "1.0", "model": {"type": "WordPiece"}}'), "cannot load a tokenizer"),
        (lambda p: p.write_text("[1, 2]"), "cannot load a tokenizer"),
        (lambda p: (p.unlink(), os.mkfifo(p)), "tokenizer.json is a FIFO (named pipe)"),
        (lambda p: (p.unlink(), p.mkdir()), "tokenizer.json is a directory"),
    ],
    ids=["wrong-shape", "a-list", "fifo", "folder"],
)
@pytest.mark.parametrize("command", ["eval", "predict"])
def test_a_corrupt_tokenizer_is_a_model_error(
    tiny: TinyRun, tmp_path: Path, edit: Callable[[Path], Any], message: str, command: str
) -> None:
    """Before: KeyError('added_tokens') from transformers (exit 1); a FIFO blocked."""
    run = copy_run(tiny.run, tmp_path / "run")
    edit(run / "model" / "tokenizer" / "tokenizer.json")
    argv = (
        ["eval", str(run), "--no-timing", "--no-alignment"]
        if command == "eval"
        else [
            "predict",
            str(run),
            "--task",
            "color",
            "--input",
            str(tiny.folder / "color.jsonl"),
            "--out",
            str(tmp_path / "p.jsonl"),
        ]
    )
    refused(cli_within(argv), message)
    assert not (tmp_path / "p.jsonl").exists()


@pytest.mark.parametrize(
    "line, message",
    [
        (DEEP, r"log.jsonl:2: not a JSON line \(the line is nested too deeply"),
        ('{"step": "3", "split": "train"}', r"log.jsonl:2: step: Input should be a valid integer"),
        (
            '{"step": 3, "split": "val", "mean_acc": 2.5}',
            r"log.jsonl:2: mean_acc: Input should be less than or equal to 1",
        ),
    ],
)
def test_log_lines_are_checked_by_their_schema(tmp_path: Path, line: str, message: str) -> None:
    """Before: a deep line was a RecursionError; a wrong type reached the plots."""
    log = tmp_path / "log.jsonl"
    log.write_text('{"step": 1, "split": "train", "loss": 0.5}\n' + line + "\n")
    with pytest.raises(CheckpointError, match=message):
        read_log(log)


# ----------------------------------------------------------------------------- item 9: bounds, nesting, text
@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["export", "SPEC", "--format", "json", "--out", "OUT/g.json", "--layers", "1000000000"],
            "--layers: must be at most 1,000 (adapted layers to draw), got 1,000,000,000",
        ),
        (
            ["sweep", "SPEC", "--param", "router.temperature=1", "--out", "OUT/s", "--seeds", "1000000"],
            "--seeds: must be at most 100",
        ),
        (
            [
                "adapt",
                "RUN",
                "--task",
                "n",
                "--data",
                "x.jsonl",
                "--shots",
                "4",
                "--mode",
                "full",
                "--out",
                "OUT/a",
                "--seed",
                str(2**64),
            ],
            "--seed: must be at most 4,294,967,295",
        ),
        (["merge", "RUN", "--method", "dare", "--out", "OUT/m", "--seed", "-1"], "--seed: must be at least 0"),
        (["bench", "speed", "--seed", str(2**70)], "--seed: must be at most 4,294,967,295"),
        (["bench", "speed", "--tasks", "1000000"], "--tasks: must be at most 100,000 (tasks a benchmark builds)"),
        (["bench", "speed", "--batch", "100000"], "--batch: must be at most 4,096"),
        (["bench", "scale", "--tasks", "10", "2000000"], "--tasks: must be at most 100,000"),
        (["eval", "RUN", "--timing-rounds", "100000"], "--timing-rounds: must be at most 10,000"),
        (
            ["train", "SPEC", "--out", "OUT/t", "--set", f"training.seed={2**70}"],
            "training.seed: Input should be less than or equal to 4294967295",
        ),
    ],
)
def test_counts_and_seeds_are_bounded_with_the_limit_named(
    tiny: TinyRun, tmp_path: Path, argv: list[str], message: str
) -> None:
    """Before: --layers 1e9 and --seeds 1e6 ran until killed; a seed above 2**64 overflowed (exit 1)."""
    subs = {"SPEC": str(tiny.spec), "RUN": str(tiny.run)}
    argv = [subs.get(a, a.replace("OUT", str(tmp_path))) for a in argv]
    refused(cli(argv), message)
    assert list(tmp_path.iterdir()) == []


def test_a_sweep_grid_is_bounded(tiny: TinyRun, tmp_path: Path) -> None:
    values = ",".join(str(1 + i / 1000) for i in range(101))
    lrs = ",".join(str(1e-3 * (1 + i)) for i in range(100))
    refused(
        cli(
            [
                "sweep",
                str(tiny.spec),
                "--param",
                f"router.temperature={values}",
                "--param",
                f"training.lr.adapters={lrs}",
                "--out",
                str(tmp_path / "s"),
            ]
        ),
        "the grid has 10,100 cells",
        "a sweep runs at most 10,000",
    )


@pytest.mark.parametrize(
    "text, message",
    [
        (DEEP, "line 2 is nested too deeply"),
        ('{"text": "a \\ud800"}', "line 2, field 'text': the text holds a lone surrogate"),
        ('{"text": "a", "n": ' + "9" * 5000 + "}", "line 2 holds an integer of more than 4,300 digits"),
    ],
)
def test_predict_input_that_python_cannot_read_is_exit_2(
    tiny: TinyRun, tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "in.jsonl").write_text('{"text": "good"}\n' + text + "\n")
    refused(
        cli(
            [
                "predict",
                str(tiny.run),
                "--task",
                "sentiment",
                "--input",
                str(tmp_path / "in.jsonl"),
                "--out",
                str(tmp_path / "p.jsonl"),
            ]
        ),
        message,
    )
    assert not (tmp_path / "p.jsonl").exists()


def test_adapt_data_that_python_cannot_read_is_exit_2(tiny: TinyRun, tmp_path: Path) -> None:
    (tmp_path / "new.jsonl").write_text('{"text": "good", "label": 0}\n{"text": ' + DEEP + ', "label": 1}\n')
    refused(
        cli(
            [
                "adapt",
                str(tiny.run),
                "--task",
                "new",
                "--data",
                str(tmp_path / "new.jsonl"),
                "--shots",
                "2",
                "--mode",
                "full",
                "--out",
                str(tmp_path / "a"),
                "--labels",
                "2",
            ]
        ),
        "line 2 is nested too deeply",
    )
    assert not (tmp_path / "a").exists()


# ----------------------------------------------------------------------------- item 12: paths
def test_a_catalog_cache_under_a_regular_file_is_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: NotADirectoryError from mkdir (exit 1)."""
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("TASKGRAPH_CACHE", str(tmp_path / "file" / "cache"))
    refused(
        cli(["data", "fetch", "vader-tweets"]),
        f"{str(tmp_path / 'file')!r} is a regular file, where a folder is needed; point TASKGRAPH_CACHE at a folder",
    )
    assert (tmp_path / "file").read_text() == "x"


@pytest.mark.parametrize(
    "argv",
    [
        ["sweep", "SPEC", "--param", "router.temperature=1", "--out", "FILE/s"],
        ["adapt", "RUN", "--task", "n", "--data", "DATA", "--shots", "2", "--mode", "full", "--out", "FILE/a"],
        ["eval", "RUN", "--no-timing", "--no-alignment", "--json", "FILE/e.json"],
    ],
    ids=["sweep", "adapt", "eval-json"],
)
def test_an_out_under_a_regular_file_is_exit_2(tiny: TinyRun, tmp_path: Path, argv: list[str]) -> None:
    """Before the run-folder checks: NotADirectoryError (exit 1) from the first mkdir."""
    (tmp_path / "file").write_text("x")
    subs = {"SPEC": str(tiny.spec), "RUN": str(tiny.run), "DATA": str(tiny.folder / "animal.jsonl")}
    err = refused(cli([subs.get(a, a.replace("FILE", str(tmp_path / "file"))) for a in argv]))
    assert "regular file, not a folder" in err or "a folder on its path is a file" in err
    assert (tmp_path / "file").read_text() == "x"


@pytest.mark.parametrize(
    "make, what",
    [
        (lambda p: os.mkfifo(p), "is a FIFO (named pipe)"),
        (lambda p: (os.symlink(p.with_name("b"), p), os.symlink(p, p.with_name("b"))), "is a symlink loop"),
        (lambda p: p.mkdir(), "is a directory"),
    ],
    ids=["fifo", "loop", "folder"],
)
def test_special_files_as_adapt_data_are_named(
    tiny: TinyRun, tmp_path: Path, make: Callable[[Path], Any], what: str
) -> None:
    """Before: "no such file" for each of them."""
    make(tmp_path / "new.jsonl")
    refused(
        cli_within(
            [
                "adapt",
                str(tiny.run),
                "--task",
                "new",
                "--data",
                str(tmp_path / "new.jsonl"),
                "--shots",
                "2",
                "--mode",
                "full",
                "--out",
                str(tmp_path / "a"),
            ]
        ),
        what,
    )


# ----------------------------------------------------------------------------- item 13: consistency
def test_a_byte_order_mark_does_not_change_predictions(tiny: TinyRun, tmp_path: Path) -> None:
    """The same input with and without a BOM gives the same output (before the predict reader was the data
    reader, a BOM was refused there and accepted in training data)."""
    rows = "".join(json.dumps({"text": t}) + "\n" for t in ("good dog", "the red cat", "awful"))
    (tmp_path / "plain.jsonl").write_text(rows)
    (tmp_path / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + rows.encode())
    for name in ("plain", "bom"):
        outcome = cli(
            [
                "predict",
                str(tiny.run),
                "--task",
                "sentiment",
                "--input",
                str(tmp_path / f"{name}.jsonl"),
                "--out",
                str(tmp_path / f"{name}.out"),
            ]
        )
        assert outcome.code == 0, outcome.err
    assert (tmp_path / "bom.out").read_bytes() == (tmp_path / "plain.out").read_bytes()


def test_a_byte_order_mark_is_allowed_in_an_adapt_data_file(tmp_path: Path) -> None:
    from taskgraph.adapt.data import parse_data_arg

    (tmp_path / "d.yaml").write_bytes(b"\xef\xbb\xbfdata: {source: jsonl, path: new.jsonl}\n")
    block, base = parse_data_arg("d.yaml", tmp_path)
    assert block == {"source": "jsonl", "path": "new.jsonl"} and base == tmp_path


def test_a_one_label_task_is_a_warning_on_the_command_line(tiny: TinyRun, tmp_path: Path) -> None:
    rows = [json.loads(line) for line in (tiny.folder / "animal.jsonl").read_text().splitlines()]
    (tmp_path / "animal.jsonl").write_text("".join(json.dumps({**r, "label": 1}) + "\n" for r in rows))
    spec = tiny.spec.read_text().replace("path: animal.jsonl", f"path: {tmp_path / 'animal.jsonl'}")
    spec = spec.replace("path: sentiment.jsonl", f"path: {tiny.folder / 'sentiment.jsonl'}").replace(
        "path: color.jsonl", f"path: {tiny.folder / 'color.jsonl'}"
    )
    (tmp_path / "spec.yaml").write_text(spec)
    outcome = cli(["train", str(tmp_path / "spec.yaml"), "--out", str(tmp_path / "run"), "--max-steps", "1"])
    assert outcome.code == 0, outcome.err
    assert outcome.err.count("warning: task 'animal': its train split holds label 1 only") == 1, outcome.err


# ----------------------------------------------------------------------------- more readers of the same class
@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: os.mkfifo(p), "is a FIFO (named pipe)"),
        (lambda p: p.write_text(DEEP), "is nested too deeply"),
    ],
    ids=["fifo", "deep"],
)
def test_a_catalog_manifest_that_cannot_be_read_is_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make: Callable[[Path], Any], message: str
) -> None:
    """TASKGRAPH_CATALOG_MANIFEST names the catalog's manifest. Before: a FIFO blocked, nesting was a RecursionError."""
    make(tmp_path / "manifest.json")
    monkeypatch.setenv("TASKGRAPH_CATALOG_MANIFEST", str(tmp_path / "manifest.json"))
    refused(cli_within(["data", "list"]), "catalog manifest", message)


def test_a_sweep_cell_record_nested_too_deeply_is_named(tiny: TinyRun, tmp_path: Path) -> None:
    """Before: RecursionError while checking the cells of an existing sweep folder (exit 1)."""
    from taskgraph.sweep.grid import build_grid
    from taskgraph.sweep.run import SweepError, check_cells

    grid = build_grid(tiny.spec, {"router.temperature": ["1"]})
    cell = tmp_path / "cells" / grid.cells[0].slug
    cell.mkdir(parents=True)
    (cell / "cell.json").write_text(DEEP)
    with pytest.raises(SweepError, match=r"cell.json: unreadable \(ValueError: is nested too deeply"):
        check_cells(tmp_path, grid)


def test_an_adapt_record_that_cannot_be_read_is_no_provenance_and_no_hang(tmp_path: Path) -> None:
    """Provenance is a label, never a failure. Before: deep nesting was a RecursionError, a FIFO blocked."""
    from taskgraph.report.provenance import task_provenance

    for name, make in (("deep", lambda p: p.write_text(DEEP)), ("fifo", lambda p: os.mkfifo(p))):
        run = tmp_path / name
        run.mkdir()
        make(run / "adapt.json")
        found: dict[str, Any] = {}
        thread = threading.Thread(
            target=lambda found=found, run=run: found.update(task_provenance(["a"], [], run)), daemon=True
        )
        thread.start()
        thread.join(30)
        assert not thread.is_alive(), f"reading a {name} adapt.json blocked"
        assert found["a"].kind == "trained"
