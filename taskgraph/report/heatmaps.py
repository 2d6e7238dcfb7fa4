"""Heatmaps of a trained run: task relations, routing weights per adapted layer and gates (PNG).

Each ``plot_*`` function draws on a :mod:`taskgraph.report.canvas` figure with a 0–1 colour scale (NaN in
grey), names rows and columns up to :data:`MAX_TICKS` and writes its file atomically. Inputs are arrays (numpy,
torch or nested lists): relation weights ``[T, T]``, routing weights ``[T, L, H, K]``, gates ``[T, L]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes

from taskgraph.atomic import write_bytes
from taskgraph.report.canvas import ArrayLike, PathLike, as_array, new_figure, png_bytes, show_empty, write_png

MAX_TICKS = 60  # heatmap axes name their rows / columns up to this many
MAX_ANNOTATED = 16  # heatmap cells show their value when rows and columns are both at most this many
MAX_SIDE_BY_SIDE_HEADS = 4  # routing heatmaps draw up to this many heads side by side, else their mean
GREY = "#e6e6e6"  # heatmap cells with no value (NaN): the diagonal, pairs with no relation


def heatmap_figsize(rows: int, cols: int, panels: int = 1) -> tuple[float, float]:
    """Figure size (inches) of ``panels`` heatmaps of ``rows`` × ``cols`` side by side with one colour bar."""
    width = 2.6 + 1.2 + panels * max(1.6, 0.42 * cols)
    height = 1.9 + max(1.6, 0.34 * rows)
    return (round(min(max(width, 5.0), 30.0), 2), round(min(max(height, 3.5), 20.0), 2))


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


def _check_names(task_names: Sequence[str], count: int, what: str) -> list[str]:
    names = [str(n) for n in task_names]
    if len(names) != count:
        raise ValueError(f"{what} has {count} task rows but {len(names)} task names were given")
    return names


def _layer_label(layer: int, layer_names: Sequence[str] | None) -> str:
    return f"adapted module {layer}" if layer_names is None else f"adapted module {layer}: {layer_names[layer]}"


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
    fig = new_figure(heatmap_figsize(n, n))
    ax = fig.add_subplot()
    if n == 0:
        show_empty(ax, "no tasks")
    else:
        image = _heatmap(ax, weights, names, names, marks)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="relation weight")
        if marks is not None and marks.any() and n <= MAX_ANNOTATED:
            title += " (* declared)"
    ax.set_title(title, fontsize=11, parse_math=False)
    fig.tight_layout()
    return write_png(fig, out)


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
        fig = new_figure(heatmap_figsize(n_tasks, n_skills, panels), layout="constrained")
        axes = fig.subplots(1, panels, squeeze=False)[0]
        if n_tasks == 0:
            for ax in axes:
                ax.set_axis_off()
            show_empty(axes[0], "no tasks")
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
        figures.append(png_bytes(fig))  # render every layer before writing any
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
    fig = new_figure(heatmap_figsize(n_tasks, n_layers))
    ax = fig.add_subplot()
    if n_tasks == 0 or n_layers == 0:
        show_empty(ax, "no tasks" if n_tasks == 0 else "no adapted modules")
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
    return write_png(fig, out)
