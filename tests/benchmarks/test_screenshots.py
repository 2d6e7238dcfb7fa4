"""``python -m benchmarks.screenshots``: the view's screenshot of a run, and the record of what the picture shows that
the graph-view guide renders beside it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.browser import find_chromium
from benchmarks.screenshots import RANKS_ABOVE_CHANCE, main, picture_block, picture_facts
from taskgraph import run_graph
from tests.quality.guard import train_router


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A graph-router run on the guard's planted universe (8 tasks), 20 steps."""
    root = tmp_path_factory.mktemp("screenshots")
    train_router("graph", 0, root, steps=20)
    return root / "graph-seed0"


def test_the_facts_are_the_runs(planted_run: Path):
    facts = picture_facts(planted_run, run_graph(planted_run), ["planted-3"])
    trained = json.loads((planted_run / "train.json").read_text())
    assert (facts["router"], facts["tasks"], facts["steps"]) == ("graph", 8, 20)
    assert facts["val_mean"] == trained["final_val"]["mean_acc"]
    assert facts["relations"]["pairs"] == 8 * 7 // 2 and 0 < facts["relations"]["min"] <= facts["relations"]["max"] < 1
    assert facts["auroc"]["truth"] == "planted" and 0 <= facts["auroc"]["learned"] <= 1
    [opened] = facts["opened"]
    assert opened["task"] == "planted-3" and opened["module"].startswith("encoder.layer.0.")
    assert 1 / 6 <= opened["weight"] <= 1  # the largest of 6 skills' weights, which sum to 1


def test_the_reading_follows_the_figures():
    facts = {
        "router": "graph",
        "tasks": 20,
        "steps": 1500,
        "val_mean": 0.95,
        "relations": {"min": 0.14, "max": 0.49, "pairs": 190},
        "auroc": {"truth": "planted", "learned": 0.51, "routing_cosine": 0.77, "random": 0.50},
        "opened": [
            {"task": "planted-05", "module": "encoder.layer.0.attention.self.query", "skill": 2, "weight": 0.51}
        ],
    }
    block = picture_block({"facts": facts, "command": "python -m benchmarks.screenshots R P", "date": "D"}, "s")
    assert "R span 0.14–0.49 over 190 pairs" in block
    assert "learned R 0.51, routing cosine 0.77, random R 0.50" in block
    assert f"R does not recover the planted relations (within {RANKS_ABOVE_CHANCE:.2f} of random R)" in block
    assert "the routing ranks the planted relations above chance" in block
    assert "planted-05 puts 0.51 of `encoder.layer.0.attention.self.query`'s routing on skill 2" in block
    assert "`benchmarks/results/s.json`" in block
    no_truth = {**facts, "auroc": None, "relations": None}
    assert "AUROC" not in picture_block({"facts": no_truth, "command": "c", "date": "D"}, "s")


def test_a_missing_run_is_one_paragraph_and_exit_2(tmp_path: Path, capsys):
    assert main([str(tmp_path / "no-run"), str(tmp_path / "p.png"), "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no-run" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # no picture, no record


def test_an_unknown_task_to_open_is_one_paragraph_and_writes_nothing(planted_run: Path, tmp_path: Path, capsys):
    argv = [str(planted_run), str(tmp_path / "p.png"), "--task", "planted-99", "--results", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "no task 'planted-99'; its tasks are ['planted-0'," in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.browser
@pytest.mark.skipif(find_chromium() is None, reason="headless Chromium is not installed")
def test_a_runs_picture_and_its_record(planted_run: Path, tmp_path: Path):
    png = tmp_path / "view-tiny.png"
    assert main([str(planted_run), str(png), "--task", "planted-3", "--results", str(tmp_path)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    record = json.loads((tmp_path / "screenshot-view-tiny.json").read_text())
    assert record["facts"]["opened"][0]["task"] == "planted-3" and record["picture"] == str(png)
    assert record["command"].startswith("python -m benchmarks.screenshots ")
