"""``taskgraph adapt`` end to end: a trained planted run and a trained text run are adapted through the CLI,
then ``taskgraph eval`` and ``taskgraph predict`` read the adapted run; bad input is exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from taskgraph.cli import main
from taskgraph.model import TaskGraphModel
from taskgraph.spec import Spec, load_spec
from taskgraph.train import train
from tests.adapt.conftest import HELD_OUT, small_planted
from tests.train.conftest import spec_dict

NEW = f"planted-{HELD_OUT}"
PLANTED = f"{{source: planted, task: {HELD_OUT}}}"


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory) -> Path:
    """40 steps of poly routing on 8 planted tasks (tasks 8 and 9 held out)."""
    run = tmp_path_factory.mktemp("planted") / "run"
    torch.set_num_threads(1)
    train(Spec.model_validate(small_planted("poly", steps=40)), run)
    return run


@pytest.fixture(scope="module")
def text_run(tmp_path_factory) -> tuple[Path, Path]:
    """A 6-step run on two text tasks (sentiment, color); the folder also holds animal.jsonl for adaptation."""
    folder = tmp_path_factory.mktemp("text")
    data = spec_dict(folder, steps=6, eval_every=6, checkpoint_every=6)
    data["tasks"] = [t for t in data["tasks"] if t["name"] != "animal"]
    spec = folder / "spec.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    torch.set_num_threads(1)
    train(load_spec(spec), folder / "run", base_dir=folder)
    return folder, folder / "run"


def test_adapt_a_held_out_planted_task_then_eval_reads_it(planted_run, tmp_path, capsys, monkeypatch):
    out = tmp_path / "adapted"
    code = main(
        [
            "adapt",
            str(planted_run),
            "--task",
            NEW,
            "--data",
            PLANTED,
            "--shots",
            "16",
            "--mode",
            "routing",
            "--out",
            str(out),
            "--steps",
            "30",
            "--lr",
            "0.05",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert f"to task '{NEW}', mode routing" in printed and "shots      16 (per label 4/4/4/4), 30 steps" in printed
    assert "trainable  16 parameters" in printed and "test       accuracy" in printed
    record = json.loads((out / "adapt.json").read_text())
    assert (record["mode"], record["router"], record["shots"], record["steps"], record["trainable"]) == (
        "routing",
        "poly",
        16,
        30,
        2 * 2 * 4,
    )  # L = 4 adapted layers x K = 4 skills
    assert (
        record["lr"] == {"router": 0.05, "adapters": 0.05, "heads": 0.05}
        and record["loss"]["last"] < record["loss"]["first"]
    )
    spec = load_spec(out / "spec.yaml")
    assert spec.task_names[-1] == NEW and spec.tasks[-1].data.own_fields()["task"] == HELD_OUT
    assert json.loads((out / "train.json").read_text())["base_dir"] == str(Path.cwd())

    monkeypatch.chdir(tmp_path)  # eval finds the data through OUT/train.json and the spec, not the cwd
    report = tmp_path / "eval.json"
    assert main(["eval", str(out), "--task", NEW, "--json", str(report)]) == 0
    scores = json.loads(report.read_text())["tasks"][NEW]
    assert scores["accuracy"] == pytest.approx(record["test"]["accuracy"])
    assert scores["n"] == record["test"]["n"] == 12  # 10% of 120 planted examples


def test_adapt_a_text_task_from_a_jsonl_file_then_predict_reads_it(text_run, tmp_path, capsys, monkeypatch):
    folder, run = text_run
    monkeypatch.chdir(folder)
    out = tmp_path / "animal"
    assert (
        main(
            [
                "adapt",
                str(run),
                "--task",
                "animal",
                "--data",
                "animal.jsonl",
                "--shots",
                "8",
                "--mode",
                "mhr-mu",
                "--out",
                str(out),
                "--steps",
                "5",
                "--family",
                "zoology",
            ]
        )
        == 0
    )
    capsys.readouterr()
    spec = load_spec(out / "spec.yaml")
    assert spec.tasks[-1].family == "zoology" and spec.tasks[-1].num_labels == 2
    assert spec.tasks[-1].data.own_fields()["path"] == str((folder / "animal.jsonl").resolve())
    assert spec.adapters.skills == 4  # 3 trained skills + the averaged skill the new task owns
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.jsonl").write_text('{"text": "the big cat"}\n{"text": "a dog was old"}\n')
    assert main(["predict", str(out), "--task", "animal", "--input", str(tmp_path / "in.jsonl")]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    expected = TaskGraphModel.from_pretrained(out / "model").predict("animal", ["the big cat", "a dog was old"])
    assert [r["label"] for r in rows] == [e["label"] for e in expected] and all(len(r["probs"]) == 2 for r in rows)
    assert main(["eval", str(out), "--task", "animal"]) == 0  # the data path resolves from anywhere


def test_overwrite(planted_run, tmp_path, capsys):
    out = tmp_path / "o"
    args = [
        "adapt",
        str(planted_run),
        "--task",
        NEW,
        "--data",
        PLANTED,
        "--shots",
        "8",
        "--mode",
        "mhr-mu",
        "--out",
        str(out),
        "--steps",
        "2",
    ]
    assert main(args) == 0
    before = (out / "adapt.json").read_text()
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err and (out / "adapt.json").read_text() == before
    assert main(args + ["--overwrite", "--seed", "3"]) == 0
    assert json.loads((out / "adapt.json").read_text())["seed"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o"]  # no staging folder left behind


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--mode", "zero-shot"], "not supported for a run trained with router 'poly'"),
        (["--mode", "routing", "--relate", "planted-0=0.5"], "--relate seeds the new node of a graph router"),
        (["--mode", "routing", "--relate", "planted-0=2"], "expected TASK=W with a weight W in [0, 1]"),
        (["--mode", "routing", "--data", "{source: planted"], "YAML syntax error"),
        (["--mode", "routing", "--data", "{source: nope}"], "unknown data source 'nope'"),
        (["--mode", "routing", "--task", "planted-0"], "task 'planted-0' already exists"),
        (["--mode", "routing", "--shots", "500"], "more examples than its train split holds (96)"),
        (["--mode", "routing", "--labels", "7"], "set num_labels"),
        (["--mode", "lora"], "invalid choice: 'lora'"),
    ],
)
def test_bad_input_is_exit_2_with_one_message(planted_run, tmp_path, capsys, extra, needle):
    args = [
        "adapt",
        str(planted_run),
        "--task",
        NEW,
        "--data",
        PLANTED,
        "--shots",
        "8",
        "--out",
        str(tmp_path / "o"),
        "--steps",
        "1",
    ]
    for i in range(0, len(extra), 2):  # later options replace earlier ones
        if extra[i] in args:
            args[args.index(extra[i]) + 1] = extra[i + 1]
        else:
            args += extra[i : i + 2]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_missing_run_is_exit_2(tmp_path, capsys):
    assert (
        main(
            [
                "adapt",
                str(tmp_path / "nope"),
                "--task",
                "x",
                "--data",
                PLANTED,
                "--shots",
                "4",
                "--mode",
                "full",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "no such folder" in capsys.readouterr().err


def test_the_cli_offers_exactly_the_api_modes():
    from taskgraph.adapt import ADAPT_MODES
    from taskgraph.cli.adapt import MODES

    assert MODES == ADAPT_MODES
