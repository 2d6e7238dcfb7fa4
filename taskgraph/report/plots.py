"""PNG figures of a training run: loss, validation accuracy, relations, routing and gates.

Each ``plot_*`` function draws one figure (``plot_routing``: one per adapted layer) on a
:class:`matplotlib.figure.Figure` with the Agg canvas — pyplot is never imported and no global
matplotlib setting changes — and writes it atomically through :mod:`taskgraph.atomic` (the file is
complete or absent). Text is drawn with ``parse_math=False``. The same inputs give the same bytes.

Inputs are plain: rows of the run's ``log.jsonl`` (dicts), task names, and arrays (numpy arrays,
torch tensors or nested lists) of relation weights ``[T, T]``, routing weights ``[T, L, H, K]``
and gates ``[T, L]``. A figure with nothing to show (no logged steps, no tasks) says so in its
middle instead of failing.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from taskgraph.atomic import write_bytes

DPI = 100
LINE_FIGSIZE = (9.0, 5.0)  # inches: loss and accuracy curves
MAX_TICKS = 60  # heatmap axes name their rows / columns up to this many
MAX_ANNOTATED = 16  # heatmap cells show their value when rows and columns are both at most this many
MAX_SIDE_BY_SIDE_HEADS = 4  # routing heatmaps draw up to this many heads side by side, else their mean
MAX_LEGEND_TASKS = 12  # the accuracy plot names each task in its legend up to this many
GREY = "#e6e6e6"  # heatmap cells with no value (NaN): the diagonal, pairs with no relation

ArrayLike = np.ndarray | torch.Tensor | Sequence[Any]
LogRow = Mapping[str, Any]
PathLike = str | os.PathLike[str]


# ----------------------------------------------------------------------------- pure helpers
def as_array(values: ArrayLike, ndim: int, what: str) -> np.ndarray:
    """``values`` as a float64 numpy array of ``ndim`` dimensions; ValueError naming ``what`` otherwise."""
    if isinstance(values, torch.Tensor):
        values = values.detach().to("cpu", torch.float64).numpy()
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != ndim:
        raise ValueError(f"{what} must have {ndim} dimensions, got shape {tuple(array.shape)}")
    return array


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


def heatmap_figsize(rows: int, cols: int, panels: int = 1) -> tuple[float, float]:
    """Figure size (inches) of ``panels`` heatmaps of ``rows`` × ``cols`` side by side with one colour bar."""
    width = 2.6 + 1.2 + panels * max(1.6, 0.42 * cols)
    height = 1.9 + max(1.6, 0.34 * rows)
    return (round(min(max(width, 5.0), 30.0), 2), round(min(max(height, 3.5), 20.0), 2))


def _png_bytes(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _figure(size: tuple[float, float], layout: str | None = None) -> Figure:
    fig = Figure(figsize=size, dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _empty(ax: Axes, message: str) -> None:
    ax.set_axis_off()
    ax.text(
        0.5,
        0.5,
        message,
        ha="center",
        va="center",
        fontsize=13,
        color="#555555",
        transform=ax.transAxes,
        parse_math=False,
    )


def _heatmap(
    ax: Axes, matrix: np.ndarray, rows: Sequence[str], cols: Sequence[str], marks: np.ndarray | None = None
) -> Any:
    """Draw ``matrix [R, C]`` on ``ax`` on a 0–1 scale (NaN in grey), naming rows / columns, annotating small ones."""
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad=GREY)
    image = ax.imshow(
        np.ma.masked_invalid(matrix), cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest"
    )
    n_rows, n_cols = matrix.shape
    if n_cols <= MAX_TICKS:
        ax.set_xticks(
            range(n_cols),
            labels=list(cols),
            rotation=45 if n_cols > 6 else 0,
            ha="right" if n_cols > 6 else "center",
            fontsize=8,
            parse_math=False,
        )
    else:
        ax.set_xticks([])
    if n_rows <= MAX_TICKS:
        ax.set_yticks(range(n_rows), labels=list(rows), fontsize=8, parse_math=False)
    else:
        ax.set_yticks([])
    if n_rows <= MAX_ANNOTATED and n_cols <= MAX_ANNOTATED:
        for i, j in zip(*np.nonzero(np.isfinite(matrix)), strict=True):
            value = float(matrix[i, j])
            mark = "*" if marks is not None and marks[i, j] else ""
            ax.text(
                j,
                i,
                f"{value:.2f}{mark}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if value < 0.6 else "black",
                parse_math=False,
            )
    return image


def _write(fig: Figure, out: PathLike) -> Path:
    return write_bytes(out, _png_bytes(fig))


def _check_names(task_names: Sequence[str], count: int, what: str) -> list[str]:
    names = [str(n) for n in task_names]
    if len(names) != count:
        raise ValueError(f"{what} has {count} task rows but {len(names)} task names were given")
    return names


def _layer_label(layer: int, layer_names: Sequence[str] | None) -> str:
    return f"adapted module {layer}" if layer_names is None else f"adapted module {layer}: {layer_names[layer]}"


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
    fig = _figure(LINE_FIGSIZE)
    ax = fig.add_subplot()
    if not train and not val:
        _empty(ax, "no training steps logged")
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
    return _write(fig, out)


def plot_val_accuracy(log_rows: Sequence[LogRow], out: PathLike, title: str = "validation accuracy") -> Path:
    """Validation accuracy per task (one line each) and their mean (bold) per step; writes ``out``.

    Args:
        log_rows: rows of ``log.jsonl``; ``{"split": "val", "step", "acc": {task: float}, "mean_acc"}``
            rows are drawn, others ignored. Tasks appear in the order they are first logged.
        out: the PNG file to write.
        title: the figure's title.
    """
    val = latest_rows(log_rows, "val")
    fig = _figure(LINE_FIGSIZE)
    ax = fig.add_subplot()
    tasks: list[str] = []
    for row in val:
        acc = row.get("acc")
        for name in acc if isinstance(acc, Mapping) else ():
            if name not in tasks:
                tasks.append(str(name))
    if not val:
        _empty(ax, "no validation logged")
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
    return _write(fig, out)


# ----------------------------------------------------------------------------- heatmaps
def plot_relations(
    task_names: Sequence[str],
    matrix: ArrayLike,
    out: PathLike,
    declared: ArrayLike | None = None,
    title: str = "task relations",
) -> Path:
    """Heatmap of the task × task relation weights (scale 0–1; grey: NaN, i.e. no edge or the diagonal).

    Args:
        task_names: the T task names, in the matrix's order.
        matrix: ``[T, T]`` relation weights in [0, 1], NaN where two tasks have no relation.
        out: the PNG file to write.
        declared: optional ``[T, T]`` booleans; declared cells are marked ``*`` when values are shown.
        title: the figure's title.
    """
    weights = as_array(matrix, 2, "the relation matrix")  # [T, T]
    if weights.shape[0] != weights.shape[1]:
        raise ValueError(f"the relation matrix must be square [T, T], got shape {tuple(weights.shape)}")
    names = _check_names(task_names, weights.shape[0], "the relation matrix")
    marks = None if declared is None else as_array(declared, 2, "declared").astype(bool)  # [T, T]
    if marks is not None and marks.shape != weights.shape:
        raise ValueError(f"declared has shape {tuple(marks.shape)}, the matrix {tuple(weights.shape)}")
    n = len(names)
    fig = _figure(heatmap_figsize(n, n))
    ax = fig.add_subplot()
    if n == 0:
        _empty(ax, "no tasks")
    else:
        image = _heatmap(ax, weights, names, names, marks)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="relation weight")
        if marks is not None and marks.any() and n <= MAX_ANNOTATED:
            title += " (* declared)"
    ax.set_title(title, fontsize=11, parse_math=False)
    fig.tight_layout()
    return _write(fig, out)


def routing_paths(out_dir: PathLike, num_layers: int) -> list[Path]:
    """The files :func:`plot_routing` writes: ``routing-l<l>.png``, zero-padded so they sort by layer."""
    width = len(str(max(num_layers - 1, 0)))
    return [Path(out_dir) / f"routing-l{layer:0{width}d}.png" for layer in range(num_layers)]


def plot_routing(
    task_names: Sequence[str],
    weights: ArrayLike,
    out_dir: PathLike,
    layer_names: Sequence[str] | None = None,
    title: str = "routing",
) -> list[Path]:
    """One task × skill heatmap per adapted layer: ``out_dir/routing-l<l>.png`` (see :func:`routing_paths`).

    Up to :data:`MAX_SIDE_BY_SIDE_HEADS` heads are drawn side by side, more as their mean. The colour
    scale is 0–1 in every file (weights are shares of a mixture), so layers and runs compare.

    Args:
        task_names: the T task names.
        weights: ``[T, L, H, K]`` mixture weights (each ``[t, l, h, :]`` sums to 1).
        out_dir: the folder to write into (created if missing).
        layer_names: optional names of the L adapted modules, for the titles.
        title: the start of each figure's title.

    Returns:
        the L paths written, in layer order.
    """
    w = as_array(weights, 4, "the routing weights [T, L, H, K]")  # [T, L, H, K]
    n_tasks, n_layers, n_heads, n_skills = w.shape
    names = _check_names(task_names, n_tasks, "the routing weights")
    if layer_names is not None and len(layer_names) != n_layers:
        raise ValueError(f"{len(layer_names)} layer names for {n_layers} layers of routing weights")
    side_by_side = n_heads <= MAX_SIDE_BY_SIDE_HEADS
    panels = n_heads if side_by_side else 1
    skills = [f"s{k}" for k in range(n_skills)]
    figures = []
    for layer in range(n_layers):
        fig = _figure(heatmap_figsize(n_tasks, n_skills, panels), layout="constrained")
        axes = fig.subplots(1, panels, squeeze=False)[0]
        if n_tasks == 0:
            for ax in axes:
                ax.set_axis_off()
            _empty(axes[0], "no tasks")
        elif side_by_side:
            for h, ax in enumerate(axes):
                image = _heatmap(ax, w[:, layer, h, :], names if h == 0 else [""] * n_tasks, skills)
                if n_heads > 1:
                    ax.set_title(f"head {h}", fontsize=9)
                ax.set_xlabel("skill", fontsize=9)
            fig.colorbar(
                image, ax=list(axes), fraction=0.046 if panels == 1 else 0.03, pad=0.02, label="mixture weight"
            )
        else:
            image = _heatmap(axes[0], w[:, layer].mean(axis=1), names, skills)  # [T, K]
            axes[0].set_title(f"mean over {n_heads} heads", fontsize=9)
            axes[0].set_xlabel("skill", fontsize=9)
            fig.colorbar(image, ax=axes[0], fraction=0.046, pad=0.02, label="mixture weight")
        fig.suptitle(f"{title}: {_layer_label(layer, layer_names)}", fontsize=11, parse_math=False)
        figures.append(_png_bytes(fig))  # render every layer before writing any
    return [write_bytes(path, data) for path, data in zip(routing_paths(out_dir, n_layers), figures, strict=True)]


def plot_gates(
    task_names: Sequence[str],
    gates: ArrayLike,
    out: PathLike,
    layer_names: Sequence[str] | None = None,
    title: str = "gates (path selection)",
) -> Path:
    """Heatmap of every task's gate per adapted layer (task × layer, scale 0–1); writes ``out``.

    Args:
        task_names: the T task names.
        gates: ``[T, L]`` gate values in [0, 1] (0: the layer's adapter is skipped for the task).
        out: the PNG file to write.
        layer_names: optional names of the L adapted modules, shown under the layer numbers.
        title: the figure's title.
    """
    g = as_array(gates, 2, "the gates [T, L]")  # [T, L]
    n_tasks, n_layers = g.shape
    names = _check_names(task_names, n_tasks, "the gates")
    if layer_names is not None and len(layer_names) != n_layers:
        raise ValueError(f"{len(layer_names)} layer names for {n_layers} layers of gates")
    fig = _figure(heatmap_figsize(n_tasks, n_layers))
    ax = fig.add_subplot()
    if n_tasks == 0 or n_layers == 0:
        _empty(ax, "no tasks" if n_tasks == 0 else "no adapted modules")
    else:
        cols = [str(layer) for layer in range(n_layers)]
        image = _heatmap(ax, g, names, cols)
        ax.set_xlabel("adapted module", fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="gate")
        if layer_names is not None and n_layers <= MAX_TICKS:
            short = [name.rsplit(".", 1)[-1] for name in layer_names]
            ax.set_xticks(
                range(n_layers),
                labels=[f"{i}\n{s}" for i, s in enumerate(short)],
                fontsize=7,
                rotation=0,
                ha="center",
                parse_math=False,
            )
    ax.set_title(title, fontsize=11, parse_math=False)
    fig.tight_layout()
    return _write(fig, out)
