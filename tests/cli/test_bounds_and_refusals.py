"""Bad input is refused before any work (exit 2, one paragraph, no traceback), and a wait says what it waits for."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import torch
import yaml
from transformers import BertTokenizerFast

from taskgraph.cli import main
from taskgraph.model import TaskGraphModel
from taskgraph.spec import Spec
from tests.conftest import minimal_spec

WORDS = "the movie was good bad very dull plot not fun".split()


def refused(argv: list[str], capsys) -> str:
    """Run the CLI, assert a refusal (exit 2, no traceback), and return its stderr."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    return err


# Item 10: endless runs are bounded; a lone rank says that it waits.


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(minimal_spec()))
    return path


def test_lone_rank_zero_says_whom_it_waits_for_and_how_long(spec_file, tmp_path, monkeypatch, capsys):
    for name, value in {
        "WORLD_SIZE": "2",
        "RANK": "0",
        "LOCAL_RANK": "0",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(_free_port()),
        "TASKGRAPH_DIST_TIMEOUT": "1",
    }.items():
        monkeypatch.setenv(name, value)
    err = refused(["train", str(spec_file), "--out", str(tmp_path / "run")], capsys)
    assert "rank 0 waits up to 1 s (TASKGRAPH_DIST_TIMEOUT) for rank(s) 1 (WORLD_SIZE=2) to join" in err
    assert not torch.distributed.is_initialized()


def test_negative_world_size_is_refused(spec_file, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "-3")
    err = refused(["train", str(spec_file), "--out", str(tmp_path / "run")], capsys)
    assert "WORLD_SIZE=-3" in err and "at least 1" in err
    assert not (tmp_path / "run").exists()


# Item 11: inputs that used to be accepted silently.


@pytest.mark.parametrize(
    "argv",
    [
        ["bench", "lm", "--routers", ","],
    ],
)
def test_empty_name_lists_are_refused(argv, capsys):
    err = refused(argv, capsys)
    assert "expected names separated by commas" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["bench", "lm", "--routers", "poly,poly"],
    ],
)
def test_repeated_names_are_refused(argv, capsys):
    err = refused(argv, capsys)
    assert "given twice" in err and "'" in err


@pytest.mark.parametrize("bench", [["speed"], ["infer"], ["lm"], ["scale"]])
def test_every_bench_refuses_an_empty_json_path(bench, capsys):
    err = refused(["bench", *bench, "--json", ""], capsys)
    assert "--json" in err and "expected a file path" in err


# Item 12: predict --task-field names the task field and the row.


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("predict")
    (root / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS) + "\n")
    tokenizer = BertTokenizerFast.from_pretrained(str(root), local_files_only=True)
    model = TaskGraphModel(Spec.model_validate(minimal_spec()), tokenizer=tokenizer)
    model.save_pretrained(root / "run" / "model")
    return root / "run"


@pytest.mark.parametrize(
    "second, found",
    [
        ({"task": "zzz", "sentence": "a fine film"}, "found 'zzz'"),
        ({"sentence": "a fine film"}, "it has only ['sentence']"),
        ({"task": 3}, "found 3"),
    ],
)
def test_predict_task_field_names_the_field_and_the_row(run_dir, tmp_path, capsys, second, found):
    src = tmp_path / "in.jsonl"
    rows = [{"task": "a", "text": "the movie was good"}, second]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    err = refused(["predict", str(run_dir), "--task-field", "task", "--input", str(src)], capsys)
    assert "line 2" in err and "field 'task' (--task-field)" in err and found in err
    assert "'text'" not in err
