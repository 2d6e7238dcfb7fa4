"""write_run_plots: every plot of a hand-built run folder, from its log and its saved model."""

from __future__ import annotations

import json
import shutil

import matplotlib
import numpy as np
import pytest
import torch

from taskgraph.errors import CheckpointError
from taskgraph.report import Relation, read_log, relation_matrix, write_run_plots
from taskgraph.report.plots import DPI, LINE_FIGSIZE, heatmap_figsize
from tests.report.conftest import LAYERS, TASKS, FixedRouter, count_colour, log_rows, make_model, pixels

PLOTS = ["loss.png", "val_accuracy.png", "relations.png", *[f"routing-l{i}.png" for i in range(LAYERS)]]


def viridis(value: float) -> tuple[float, ...]:
    return matplotlib.colormaps["viridis"](value)[:3]


@pytest.fixture
def run(run_dir, tmp_path):
    """A private copy of the module's run folder."""
    return shutil.copytree(run_dir, tmp_path / "RUN")


def test_writes_every_plot_into_run_plots(run):
    paths = write_run_plots(run)
    assert paths == [run / "plots" / name for name in PLOTS]
    assert sorted(p.name for p in (run / "plots").iterdir()) == sorted(PLOTS)  # nothing else, no temp files
    images = {p.name: pixels(p.read_bytes()) for p in paths}
    line = (round(LINE_FIGSIZE[1] * DPI), round(LINE_FIGSIZE[0] * DPI), 4)
    assert images["loss.png"].shape == images["val_accuracy.png"].shape == line
    assert images["relations.png"].shape[:2] == (
        round(heatmap_figsize(3, 3)[1] * DPI),
        round(heatmap_figsize(3, 3)[0] * DPI),
    )
    assert images["routing-l0.png"].shape[:2] == (
        round(heatmap_figsize(3, 4)[1] * DPI),
        round(heatmap_figsize(3, 4)[0] * DPI),
    )
    for name, image in images.items():
        assert (image[..., :3].min(axis=-1) < 0.95).mean() > 0.03, name  # drawn on, not blank
    assert count_colour(images["relations.png"], viridis(0.8)) > 2 * 1500  # the declared a–b 0.8, twice
    assert not (run / "plots" / "gates.png").exists()  # a static router's gates are all 1: no plot that says nothing


def test_same_run_same_bytes(run, tmp_path):
    first = [p.read_bytes() for p in write_run_plots(run)]
    other = shutil.copytree(run, tmp_path / "again", ignore=shutil.ignore_patterns("plots"))
    assert [p.read_bytes() for p in write_run_plots(other)] == first


def test_model_in_memory_and_what_the_log_has(tmp_path):
    """The training loop passes its model (no RUN/model needed); a log with no validation gives no accuracy plot."""
    gates = torch.tensor([[1.0, 0.0, 1.0, 0.0], [1.0] * 4, [0.0] * 4])  # [T, L]: 6 of 12 closed
    model = make_model()
    model.router = FixedRouter(
        gates, torch.full((3, LAYERS, 1, 2), 0.5), torch.tensor([[0], [2]]), torch.tensor([0.25])
    )
    run = tmp_path / "RUN"
    run.mkdir()
    (run / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log_rows(30) if r["split"] == "train"))
    paths = write_run_plots(run, model=model)
    assert [p.name for p in paths] == [
        "loss.png",
        "relations.png",
        *[f"routing-l{i}.png" for i in range(LAYERS)],
        "gates.png",
    ]
    image = pixels((run / "plots" / "gates.png").read_bytes())
    assert count_colour(image, viridis(0.0)) == pytest.approx(count_colour(image, viridis(1.0)), rel=0.1)
    relations = pixels((run / "plots" / "relations.png").read_bytes())
    assert count_colour(relations, viridis(0.25)) > 2 * 1500  # the learned a–c weight
    assert count_colour(relations, viridis(0.8)) < 100  # the declared a–b is not a candidate edge here


def test_a_router_without_relations_and_none_declared_draws_no_relation_map(tmp_path):
    model = make_model()
    model.spec.relations.declared = []
    run = tmp_path / "RUN"
    run.mkdir()
    names = [p.name for p in write_run_plots(run, model=model)]
    assert names == [f"routing-l{i}.png" for i in range(LAYERS)]  # no log, no relations, no gates: routing only


def test_no_log_still_plots_the_model(run):
    (run / "log.jsonl").unlink()
    assert [p.name for p in write_run_plots(run)] == PLOTS[2:]


def test_missing_run_or_model_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="no such run folder"):
        write_run_plots(tmp_path / "nope")
    (tmp_path / "RUN").mkdir()
    with pytest.raises(CheckpointError, match="neither a run folder"):
        write_run_plots(tmp_path / "RUN")
    assert not (tmp_path / "RUN" / "plots").exists()


def test_read_log_skips_a_last_line_cut_short(tmp_path):
    path = tmp_path / "log.jsonl"
    rows = log_rows(3)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n" + '{"step": 4, "split": "tr')
    assert read_log(path) == rows
    path.write_text(json.dumps(rows[0]) + "\n" + '{"step": 4, "split"\n' + json.dumps(rows[1]) + "\n")
    with pytest.raises(CheckpointError, match=r"log.jsonl:2: not a JSON line"):
        read_log(path)
    path.write_text("[1, 2]\n")
    with pytest.raises(CheckpointError, match=r"log.jsonl:1: a log line is a JSON object, got list"):
        read_log(path)
    path.write_bytes(b"\xff\xfe\n")
    with pytest.raises(CheckpointError, match="cannot read the run's log"):
        read_log(path)


def test_a_resumed_log_plots_each_step_once(run, tmp_path):
    """A resumed run logs the steps after its last checkpoint again: the last row of a step wins."""
    rows = read_log(run / "log.jsonl")
    redone = [dict(r, loss=99.0) for r in rows if r["split"] == "train" and r["step"] > 50]
    final = [dict(r, loss=0.01) for r in redone]
    (run / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows + redone + final))
    clean = shutil.copytree(run, tmp_path / "clean", ignore=shutil.ignore_patterns("plots"))
    once = [dict(r, loss=0.01) if r["split"] == "train" and r["step"] > 50 else r for r in rows]
    (clean / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in once))
    assert write_run_plots(run)[0].read_bytes() == write_run_plots(clean)[0].read_bytes()


def test_relation_matrix_numbers():
    matrix, declared = relation_matrix(TASKS, [Relation("a", "b", 0.8, True, 0.8), Relation("b", "c", 0.1, False)])
    np.testing.assert_array_equal(matrix, [[np.nan, 0.8, np.nan], [0.8, np.nan, 0.1], [np.nan, 0.1, np.nan]])
    np.testing.assert_array_equal(declared, [[0, 1, 0], [1, 0, 0], [0, 0, 0]])
