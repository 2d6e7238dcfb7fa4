"""PNG figures of a training run: loss, validation accuracy, relations, routing and gates.

Each ``plot_*`` function draws one figure (``plot_routing``: one per adapted layer) on a
:class:`matplotlib.figure.Figure` with the Agg canvas — pyplot is never imported and no global
matplotlib setting changes — and writes it atomically through :mod:`taskgraph.atomic` (the file is
complete or absent). Text is drawn with ``parse_math=False``. The same inputs give the same bytes.

Inputs are plain: rows of the run's ``log.jsonl`` (dicts), task names, and arrays (numpy arrays,
torch tensors or nested lists) of relation weights ``[T, T]``, routing weights ``[T, L, H, K]``
and gates ``[T, L]``. A figure with nothing to show (no logged steps, no tasks) says so in its
middle instead of failing.

This module holds the curves; the canvas they share is :mod:`taskgraph.report.canvas` and the heatmaps
(relations, routing, gates) are :mod:`taskgraph.report.heatmaps`, whose names it re-exports.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

from taskgraph.report.canvas import DPI, ArrayLike, PathLike, as_array, new_figure, show_empty, write_png
from taskgraph.report.heatmaps import (
    GREY,
    MAX_ANNOTATED,
    MAX_SIDE_BY_SIDE_HEADS,
    MAX_TICKS,
    heatmap_figsize,
    plot_gates,
    plot_relations,
    plot_routing,
    routing_paths,
)

LINE_FIGSIZE = (9.0, 5.0)  # inches: loss and accuracy curves
MAX_LEGEND_TASKS = 12  # the accuracy plot names each task in its legend up to this many

LogRow = Mapping[str, Any]


# ----------------------------------------------------------------------------- pure helpers
def running_mean(values: ArrayLike, window: int) -> np.ndarray:
    """Trailing mean over the last ``window`` finite values at each position (NaN where there are none).

    ``out[i] = mean(values[max(0, i - window + 1) : i + 1])`` over the finite entries only.
    """
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    v = as_array(values, 1, "values")  # [N]
    ok = np.isfinite(v)  # [N]
    sums = np.concatenate([[0.0], np.cumsum(np.where(ok, v, 0.0))])  # [N + 1]
    counts = np.concatenate([[0], np.cumsum(ok)])  # [N + 1]
    end = np.arange(1, len(v) + 1)  # [N]
    start = np.maximum(0, end - window)  # [N]
    n = counts[end] - counts[start]  # [N]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (sums[end] - sums[start]) / np.maximum(n, 1), np.nan)


def smoothing_window(n_points: int) -> int:
    """The running-mean window of a curve of ``n_points``: 1 (no smoothing) below 40 points, then n/20 up to 50."""
    return 1 if n_points < 40 else min(50, n_points // 20)


def latest_rows(log_rows: Sequence[LogRow], split: str) -> list[LogRow]:
    """The rows of one ``split`` sorted by step; a step logged twice keeps its last row.

    A resumed run re-does the steps after its last checkpoint and logs them again; the later row is
    the one the final model went through.
    """
    by_step: dict[int, LogRow] = {}
    for row in log_rows:
        step = row.get("step")
        if row.get("split") == split and isinstance(step, int) and not isinstance(step, bool):
            by_step[step] = row
    return [by_step[s] for s in sorted(by_step)]


def _number(value: Any) -> float:
    """A logged value as a float; NaN for anything missing or not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    return float(value)


# ----------------------------------------------------------------------------- curves
def plot_loss(log_rows: Sequence[LogRow], out: PathLike, title: str = "training loss") -> Path:
    """Training loss, task loss and regulariser per step (and validation loss as points); writes ``out``.

    Args:
        log_rows: rows of ``log.jsonl``; ``{"split": "train", "step", "loss", "task_loss", "reg_loss"}``
            rows make the curves, ``{"split": "val", "step", "loss"}`` rows the points.
        out: the PNG file to write.
        title: the figure's title.

    A curve of 40 points or more is drawn faintly with its running mean on top
    (:func:`smoothing_window`). Missing or non-finite values leave gaps.
    """
    train, val = latest_rows(log_rows, "train"), latest_rows(log_rows, "val")
    fig = new_figure(LINE_FIGSIZE)
    ax = fig.add_subplot()
    if not train and not val:
        show_empty(ax, "no training steps logged")
    else:
        steps = np.array([r["step"] for r in train], dtype=np.float64)  # [N]
        window = smoothing_window(len(train))
        for key, color, width in (
            ("loss", "#08519c", 1.8),
            ("task_loss", "#6baed6", 1.2),
            ("reg_loss", "#e6550d", 1.2),
        ):
            values = np.array([_number(r.get(key)) for r in train])  # [N]
            if not np.isfinite(values).any():
                continue
            if window > 1:
                ax.plot(steps, values, color=color, linewidth=0.6, alpha=0.3)
                values = running_mean(values, window)
            ax.plot(
                steps,
                values,
                color=color,
                linewidth=width,
                label=key + (f" (running mean of {window})" if window > 1 else ""),
            )
        val_loss = np.array([_number(r.get("loss")) for r in val])  # [V]
        if np.isfinite(val_loss).any():
            ax.plot([r["step"] for r in val], val_loss, "o", color="#31a354", markersize=5, label="validation loss")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.grid(True, color="#dddddd", linewidth=0.6)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, frameon=False)
    ax.set_title(title, fontsize=11, parse_math=False)
    fig.tight_layout()
    return write_png(fig, out)


def plot_val_accuracy(log_rows: Sequence[LogRow], out: PathLike, title: str = "validation accuracy") -> Path:
    """Validation accuracy per task (one line each) and their mean (bold) per step; writes ``out``.

    Args:
        log_rows: rows of ``log.jsonl``; ``{"split": "val", "step", "acc": {task: float}, "mean_acc"}``
            rows are drawn, others ignored. Tasks appear in the order they are first logged.
        out: the PNG file to write.
        title: the figure's title.
    """
    val = latest_rows(log_rows, "val")
    fig = new_figure(LINE_FIGSIZE)
    ax = fig.add_subplot()
    tasks: list[str] = []
    for row in val:
        acc = row.get("acc")
        for name in acc if isinstance(acc, Mapping) else ():
            if name not in tasks:
                tasks.append(str(name))
    if not val:
        show_empty(ax, "no validation logged")
    else:
        steps = [r["step"] for r in val]
        palette = matplotlib.colormaps["tab20" if len(tasks) > 10 else "tab10"]
        named = len(tasks) <= MAX_LEGEND_TASKS
        for i, name in enumerate(tasks):
            acc = [_number(r["acc"].get(name)) if isinstance(r.get("acc"), Mapping) else math.nan for r in val]
            label = name if named else (f"tasks ({len(tasks)})" if i == 0 else None)
            ax.plot(
                steps,
                acc,
                marker="." if len(val) < 40 else None,
                linewidth=1.2 if named else 0.7,
                color=palette(i % palette.N),
                alpha=1.0 if named else 0.6,
                label=label,
            )
        mean = np.array([_number(r.get("mean_acc")) for r in val])  # [V]
        if np.isfinite(mean).any():
            ax.plot(steps, mean, color="black", linewidth=2.6, label="mean")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("step")
        ax.set_ylabel("accuracy")
        ax.grid(True, color="#dddddd", linewidth=0.6)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.set_title(title, fontsize=11, parse_math=False)
    fig.tight_layout()
    return write_png(fig, out)


__all__ = [  # the re-exported names: importers of taskgraph.report.plots read them here
    "DPI",
    "GREY",
    "LINE_FIGSIZE",
    "MAX_ANNOTATED",
    "MAX_LEGEND_TASKS",
    "MAX_SIDE_BY_SIDE_HEADS",
    "MAX_TICKS",
    "ArrayLike",
    "LogRow",
    "PathLike",
    "as_array",
    "heatmap_figsize",
    "latest_rows",
    "plot_gates",
    "plot_loss",
    "plot_relations",
    "plot_routing",
    "plot_val_accuracy",
    "routing_paths",
    "running_mean",
    "smoothing_window",
]
