"""The report's pure parts on made-up evaluations: statistics, which metrics show, the table's cells,
the plot axes and lines. No training here."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from taskgraph.sweep import aggregate, build_grid, markdown_table, metric_values, stat
from taskgraph.sweep.plots import axis_positions, dodge, series, write_plots
from tests.sweep.conftest import write_spec


def _evaluation(acc: float, f1: float, precision: float | None = None) -> dict[str, Any]:
    return {
        "split": "val",
        "mean": {"accuracy": acc, "macro_f1": f1},
        "allocation": None if precision is None else {"precision": precision, "random": 0.5},
        "relations": {"auroc": {"learned": None}},
    }


def test_stat_is_the_mean_and_sample_std() -> None:
    s = stat([0.5, 0.7, 0.9])
    assert (s.mean, s.std, s.n) == (pytest.approx(0.7), pytest.approx(0.2), 3)
    assert str(s) == "0.7000 ± 0.2000"
    one = stat([0.25])
    assert (one.std, str(one)) == (None, "0.2500")  # one seed: no spread to show
    assert stat([]) is None


def test_metric_values_read_missing_sections_as_none() -> None:
    assert metric_values({"mean": {"accuracy": 0.5, "macro_f1": 0.4}}) == {
        "accuracy": 0.5,
        "macro_f1": 0.4,
        "allocation_precision": None,
        "relation_auroc": None,
    }
    full = {
        "mean": {"accuracy": 1, "macro_f1": 0.5},
        "allocation": {"precision": 0.75},
        "relations": {"auroc": {"learned": 0.6, "random": 0.5}},
    }
    assert metric_values(full) == {
        "accuracy": 1.0,
        "macro_f1": 0.5,
        "allocation_precision": 0.75,
        "relation_auroc": 0.6,
    }
    assert (
        metric_values({"mean": {"accuracy": float("nan")}, "allocation": None, "relations": None})["accuracy"] is None
    )


def test_rows_table_and_plots_from_made_up_cells(tmp_path: Path) -> None:
    grid = build_grid(
        write_spec(tmp_path),
        {"training.train_examples": ["8", "null"], "router.temperature": ["0.5", "5", "50"]},
        seeds=2,
    )
    evaluations = []
    for i, cell in enumerate(grid.cells):
        acc = 0.5 + 0.1 * (cell.params["training.train_examples"] is None) + 0.01 * i
        evaluations.append(_evaluation(acc, acc / 2, precision=0.9 if i % 2 else None))  # precision: one seed
    rows = aggregate(grid, evaluations)
    assert [r.n for r in rows] == [2] * 6 and list(rows[0].metrics) == ["accuracy", "macro_f1", "allocation_precision"]
    assert rows[0].metrics["accuracy"].mean == pytest.approx(0.505) and rows[0].metrics[
        "accuracy"
    ].std == pytest.approx(math.sqrt(0.5) * 0.01)
    assert rows[0].metrics["allocation_precision"].n == 1
    table = markdown_table(grid, rows)
    assert table.splitlines()[0] == (
        "| training.train_examples | router.temperature | accuracy | macro-F1 | allocation precision | n |"
    )
    assert "| 8 | 0.5 | 0.5050 ± 0.0071 | 0.2525 ± 0.0035 | 0.9000 | 2 |" in table
    assert "| null | 50 | " in table

    lines = series(rows, grid, "accuracy", 1)  # against the temperature: one line per train_examples value
    assert [line.label for line in lines] == ["training.train_examples=8", "training.train_examples=null"]
    assert lines[1].mean.tolist() == pytest.approx([0.665, 0.685, 0.705])  # cells 6..11: 0.6 + 0.01·i, pairs averaged
    paths = write_plots(tmp_path / "out", grid, rows, split="val")
    assert len(paths) == 6 and paths[0].name == "accuracy-vs-training.train_examples.png"
    for path in paths:
        with Image.open(path) as image:
            assert image.format == "PNG"
    again = write_plots(tmp_path / "again", grid, rows, split="val")
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(paths, again))  # same inputs, same bytes
    json.dumps([r.params for r in rows])  # the rows' settings are JSON-ready


def test_axis_positions_and_dodge() -> None:
    x, labels, log = axis_positions([0.5, 1, 2])
    assert x.tolist() == [0.5, 1.0, 2.0] and labels == ["0.5", "1", "2"] and not log
    assert axis_positions([0.001, 0.1])[2]  # spans a factor of 100: logarithmic
    assert not axis_positions([0, 10, 1000])[2]  # zero cannot sit on a log axis
    x, labels, log = axis_positions([8, None, [1, 2]])
    assert x.tolist() == [0.0, 1.0, 2.0] and labels == ["8", "null", "[1, 2]"] and not log
    base = np.array([0.0, 10.0])
    assert dodge(base, 0, 1, False).tolist() == [0.0, 10.0]
    assert dodge(base, 0, 2, False).tolist() == pytest.approx([-0.3, 9.7])
    assert dodge(base, 1, 2, False).tolist() == pytest.approx([0.3, 10.3])
    assert dodge(np.array([1.0, 100.0]), 1, 2, True).tolist() == pytest.approx([100**0.03, 100 * 100**0.03])
