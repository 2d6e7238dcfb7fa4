"""The plot functions: valid PNGs of the expected size whose colours follow the numbers, same bytes twice."""

from __future__ import annotations

import math
import sys

import matplotlib
import numpy as np
import pytest
import torch

from taskgraph.atomic import WriteError
from taskgraph.report.plots import (
    DPI,
    GREY,
    LINE_FIGSIZE,
    MAX_SIDE_BY_SIDE_HEADS,
    heatmap_figsize,
    latest_rows,
    plot_gates,
    plot_loss,
    plot_relations,
    plot_routing,
    plot_val_accuracy,
    routing_paths,
    running_mean,
    smoothing_window,
)
from tests.report.conftest import count_colour, log_rows, pixels

LINE_SHAPE = (int(LINE_FIGSIZE[1] * DPI), int(LINE_FIGSIZE[0] * DPI), 4)


def viridis(value: float) -> tuple[float, ...]:
    return matplotlib.colormaps["viridis"](value)[:3]


def shape_of(size: tuple[float, float]) -> tuple[int, int, int]:
    return (round(size[1] * DPI), round(size[0] * DPI), 4)


def non_white(image: np.ndarray) -> float:
    return float((image[..., :3].min(axis=-1) < 0.95).mean())


# ----------------------------------------------------------------------------- pure helpers
def test_running_mean_numbers():
    got = running_mean([1.0, 2.0, 3.0, math.nan, 5.0, 7.0], 2)
    np.testing.assert_allclose(got, [1.0, 1.5, 2.5, 3.0, 5.0, 6.0])
    np.testing.assert_allclose(running_mean([4.0, 2.0], 1), [4.0, 2.0])
    assert np.isnan(running_mean([math.nan, math.nan], 3)).all()
    with pytest.raises(ValueError, match="window"):
        running_mean([1.0], 0)


def test_smoothing_window():
    assert [smoothing_window(n) for n in (0, 39, 40, 100, 999, 5000)] == [1, 1, 2, 5, 49, 50]


def test_latest_rows_keeps_the_last_row_of_a_repeated_step():
    rows = [
        {"step": 2, "split": "train", "loss": 9.0},
        {"step": 1, "split": "train", "loss": 1.0},
        {"step": 2, "split": "val", "loss": 5.0},
        {"step": 2, "split": "train", "loss": 2.0},
        {"step": True, "split": "train"},
        {"split": "train"},
    ]
    assert latest_rows(rows, "train") == [
        {"step": 1, "split": "train", "loss": 1.0},
        {"step": 2, "split": "train", "loss": 2.0},
    ]
    assert [r["loss"] for r in latest_rows(rows, "val")] == [5.0]


def test_heatmap_figsize_grows_and_is_bounded():
    assert heatmap_figsize(3, 4) == (5.48, 3.5)  # 2.6 + 1.2 + 4 × 0.42; 1.9 + 1.6
    w, h = heatmap_figsize(24, 8)
    assert (w, h) == (7.16, 10.06)
    assert heatmap_figsize(24, 8, panels=2)[0] > w
    assert heatmap_figsize(1000, 1000) == (30.0, 20.0)


# ----------------------------------------------------------------------------- curves
def test_loss_plot_size_curves_and_points(tmp_path):
    out = plot_loss(log_rows(60), tmp_path / "loss.png")
    image = pixels(out.read_bytes())
    assert out == tmp_path / "loss.png" and image.shape == LINE_SHAPE
    assert count_colour(image, "#08519c", 0.08) > 400  # the total loss curve (smoothed, 1.8 px wide)
    assert count_colour(image, "#e6550d", 0.2) > 300  # the regulariser (over its faint raw line)
    assert count_colour(image, "#31a354", 0.08) > 3 * 40  # three validation-loss points


def test_loss_plot_ignores_missing_values_and_empty_logs(tmp_path):
    rows = log_rows(10)
    rows[3]["loss"] = None
    rows[5]["loss"] = float("nan")
    for row in rows:
        row.pop("reg_loss", None)
    image = pixels(plot_loss(rows, tmp_path / "gaps.png").read_bytes())
    assert count_colour(image, "#08519c", 0.08) > 100 and count_colour(image, "#e6550d", 0.2) == 0
    empty = pixels(plot_loss([], tmp_path / "empty.png").read_bytes())
    assert empty.shape == LINE_SHAPE and 0.0 < non_white(empty) < 0.02  # the title and "no training steps logged"


def test_val_accuracy_one_line_per_task_and_a_bold_mean(tmp_path):
    image = pixels(plot_val_accuracy(log_rows(100, every=10), tmp_path / "acc.png").read_bytes())
    assert image.shape == LINE_SHAPE
    tab10 = matplotlib.colormaps["tab10"]
    for i in range(3):  # tasks a, b, c in the order logged
        assert count_colour(image, tab10(i)[:3], 0.05) > 200, i
    assert count_colour(image, tab10(3)[:3], 0.05) == 0  # no fourth task
    assert count_colour(image, (0.0, 0.0, 0.0), 0.05) > 1500  # the mean: 2.6 px, 10 steps across the plot
    empty = pixels(plot_val_accuracy([{"step": 1, "split": "train"}], tmp_path / "none.png").read_bytes())
    assert non_white(empty) < 0.02


def test_many_tasks_share_one_legend_entry(tmp_path):
    tasks = [f"t{i}" for i in range(30)]
    rows = [
        {"step": s, "split": "val", "acc": {t: (i + s) % 7 / 7 for i, t in enumerate(tasks)}, "mean_acc": 0.5}
        for s in range(5)
    ]
    image = pixels(plot_val_accuracy(rows, tmp_path / "acc.png").read_bytes())
    assert image.shape == LINE_SHAPE and non_white(image) > 0.05


# ----------------------------------------------------------------------------- heatmaps
def test_relation_heatmap_colours_follow_the_weights(tmp_path):
    matrix = np.array([[np.nan, 0.8, np.nan], [0.8, np.nan, 0.0], [np.nan, 0.0, np.nan]])
    declared = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=bool)
    out = plot_relations(["a", "b", "c"], matrix, tmp_path / "r.png", declared=declared)
    image = pixels(out.read_bytes())
    assert image.shape == shape_of(heatmap_figsize(3, 3))
    bright, dark, grey = (count_colour(image, c) for c in (viridis(0.8), viridis(0.0), GREY))
    assert bright > 2 * 1500 and dark > 2 * 1500 and grey > 5 * 1500  # 2, 2 and 5 cells of ~2,000 px
    assert abs(bright - dark) < 0.1 * bright  # as many 0.8 cells as 0.0 cells


def test_routing_one_file_per_layer_with_the_weights_colours(tmp_path):
    weights = torch.zeros(3, 2, 1, 4)  # [T, L, H, K]
    weights[:, :, 0, 0] = 1.0  # layer 0 and 1: every task uses skill 0 only ...
    weights[2, 1, 0] = torch.tensor([0.0, 0.5, 0.5, 0.0])  # ... but task c splits layer 1 over skills 1, 2
    paths = plot_routing(["a", "b", "c"], weights, tmp_path / "plots", layer_names=["x.query", "x.value"])
    assert (
        paths
        == routing_paths(tmp_path / "plots", 2)
        == [tmp_path / "plots" / "routing-l0.png", tmp_path / "plots" / "routing-l1.png"]
    )
    l0, l1 = (pixels(p.read_bytes()) for p in paths)
    assert l0.shape == l1.shape == shape_of(heatmap_figsize(3, 4))
    cell = count_colour(l0, viridis(1.0)) / 3  # three cells of weight 1 in layer 0
    assert cell > 1000
    assert count_colour(l1, viridis(1.0)) == pytest.approx(2 * cell, rel=0.05)
    assert count_colour(l1, viridis(0.5)) == pytest.approx(2 * cell, rel=0.05)
    assert count_colour(l0, viridis(0.5)) < 100  # the colour bar's middle only


def test_routing_heads_side_by_side_then_averaged(tmp_path):
    few = torch.full((2, 1, MAX_SIDE_BY_SIDE_HEADS, 3), 1 / 3)
    (path,) = plot_routing(["a", "b"], few, tmp_path / "few")
    assert pixels(path.read_bytes()).shape == shape_of(heatmap_figsize(2, 3, MAX_SIDE_BY_SIDE_HEADS))
    many = torch.zeros(2, 1, MAX_SIDE_BY_SIDE_HEADS + 2, 3)
    many[..., 0] = 1.0
    many[:, :, 0] = torch.tensor([0.0, 0.0, 1.0])  # one head of six disagrees: skill 0 weighs 5/6 on average
    (path,) = plot_routing(["a", "b"], many, tmp_path / "many")
    image = pixels(path.read_bytes())
    assert image.shape == shape_of(heatmap_figsize(2, 3, 1))
    assert count_colour(image, viridis(5 / 6)) > 2 * 1000 and count_colour(image, viridis(1 / 6)) > 2 * 1000
    assert count_colour(image, viridis(1.0)) < 200  # no cell at 1 (the colour bar's top only)


def test_routing_file_names_sort_by_layer(tmp_path):
    names = [p.name for p in routing_paths(tmp_path, 12)]
    assert names[0] == "routing-l00.png" and names == sorted(names) and len(set(names)) == 12


def test_gates_heatmap(tmp_path):
    gates = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]])  # [T, L]: task a skips layer 1
    out = plot_gates(["a", "b"], gates, tmp_path / "g.png", layer_names=["e.0.query", "e.0.value", "e.1.query"])
    image = pixels(out.read_bytes())
    assert image.shape == shape_of(heatmap_figsize(2, 3))
    assert count_colour(image, viridis(1.0)) == pytest.approx(5 * count_colour(image, viridis(0.0)), rel=0.1)


def test_same_inputs_same_bytes(tmp_path):
    rows = log_rows(50)
    weights = torch.softmax(torch.randn(3, 2, 2, 4, generator=torch.Generator().manual_seed(0)), dim=-1)
    first = [
        plot_loss(rows, tmp_path / "1" / "l.png"),
        plot_val_accuracy(rows, tmp_path / "1" / "v.png"),
        plot_gates(["a", "b", "c"], torch.ones(3, 2), tmp_path / "1" / "g.png"),
        plot_relations(["a", "b", "c"], np.eye(3), tmp_path / "1" / "r.png"),
        *plot_routing(["a", "b", "c"], weights, tmp_path / "1"),
    ]
    second = [
        plot_loss(rows, tmp_path / "2" / "l.png"),
        plot_val_accuracy(rows, tmp_path / "2" / "v.png"),
        plot_gates(["a", "b", "c"], torch.ones(3, 2), tmp_path / "2" / "g.png"),
        plot_relations(["a", "b", "c"], np.eye(3), tmp_path / "2" / "r.png"),
        *plot_routing(["a", "b", "c"], weights, tmp_path / "2"),
    ]
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    assert sorted(p.name for p in (tmp_path / "1").iterdir()) == [
        "g.png",
        "l.png",
        "r.png",
        "routing-l0.png",
        "routing-l1.png",
        "v.png",
    ]  # no temp files


def test_plain_text_labels_and_no_tasks(tmp_path):
    names = ["a$b$c$", "x_{1}"]  # mathtext would fail on the first
    assert pixels(plot_gates(names, torch.ones(2, 1), tmp_path / "g.png").read_bytes()).shape[2] == 4
    assert pixels(plot_relations([], np.zeros((0, 0)), tmp_path / "r.png").read_bytes()).shape[2] == 4
    (path,) = plot_routing([], torch.zeros(0, 1, 1, 2), tmp_path)
    assert pixels(path.read_bytes()).shape[2] == 4


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda d: plot_relations(["a"], np.zeros((1, 2)), d / "x.png"), "square"),
        (lambda d: plot_relations(["a", "b"], np.zeros(2), d / "x.png"), "2 dimensions"),
        (lambda d: plot_relations(["a"], np.zeros((2, 2)), d / "x.png"), "2 task rows but 1 task names"),
        (lambda d: plot_routing(["a"], torch.zeros(1, 2, 3), d), "4 dimensions"),
        (lambda d: plot_routing(["a"], torch.zeros(1, 2, 1, 3), d, layer_names=["q"]), "1 layer names for 2 layers"),
        (lambda d: plot_gates(["a", "b"], torch.zeros(3, 2), d / "x.png"), "3 task rows but 2 task names"),
    ],
)
def test_shape_errors_say_what(tmp_path, call, message):
    with pytest.raises(ValueError, match=message):
        call(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_unwritable_out_leaves_nothing(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(WriteError):
        plot_gates(["a"], torch.ones(1, 1), blocker / "g.png")
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_no_pyplot_and_no_backend_change(tmp_path, monkeypatch):
    """With pyplot made unimportable, every plot still draws, and the backend setting stays as it was."""
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)  # `import matplotlib.pyplot` now fails
    monkeypatch.delattr(matplotlib, "pyplot", raising=False)
    backend = matplotlib.rcParams._get_backend_or_none()
    plot_loss(log_rows(10), tmp_path / "l.png")
    plot_val_accuracy(log_rows(10), tmp_path / "v.png")
    plot_relations(["a"], np.zeros((1, 1)), tmp_path / "r.png")
    plot_routing(["a"], torch.ones(1, 1, 2, 1), tmp_path)
    plot_gates(["a"], torch.ones(1, 2), tmp_path / "g.png")
    assert matplotlib.rcParams._get_backend_or_none() == backend
    assert len(list(tmp_path.iterdir())) == 5
