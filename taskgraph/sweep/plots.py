"""The sweep's figures: ``OUT/plots/<metric>-vs-<param>.png``, one per metric and swept param.

Each figure draws the metric's mean over seeds against the param's values, with ± one sample std as
error bars, one line per combination of the other params' values (the legend names them). Numeric
values sit on a numeric axis (logarithmic when all are positive and span a factor of 100 or more);
any other values (``null``, words, lists) are evenly spaced categories in the order given. Figures
are drawn on a :class:`~matplotlib.figure.Figure` with the Agg canvas (pyplot is never imported) and
written atomically. Lines are shifted slightly sideways (:func:`dodge`) so equal values stay visible.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from taskgraph.atomic import write_bytes
from taskgraph.report.plots import DPI, LINE_FIGSIZE
from taskgraph.sweep.grid import Grid, safe_name
from taskgraph.sweep.report import METRIC_LABELS, Row, format_value

PLOTS = "plots"
LOG_SPAN = 100.0  # a numeric axis is logarithmic when max / min reaches this (all values positive)
MAX_LEGEND_LINES = 12
DODGE = 0.06  # the total sideways spread of the lines, as a share of the axis span


@dataclass(frozen=True)
class Series:
    """One line of a figure: the other params' values (``label``) and the metric along the swept param.

    Shapes:
        mean, std ``[V]`` over the swept param's V values (NaN: no value; std 0: one seed).
    """

    label: str
    mean: np.ndarray
    std: np.ndarray


def is_numeric(values: Sequence[Any]) -> bool:
    """True when every value is an int or float (not a bool)."""
    return bool(values) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def axis_positions(values: Sequence[Any]) -> tuple[np.ndarray, list[str], bool]:
    """``(x [V], tick labels, log scale)`` of a param's values: the numbers themselves, or 0 .. V-1."""
    labels = [format_value(v) for v in values]
    if not is_numeric(values):
        return np.arange(len(values), dtype=np.float64), labels, False
    x = np.asarray(values, dtype=np.float64)  # [V]
    log = bool((x > 0).all()) and float(x.max()) / float(x.min()) >= LOG_SPAN
    return x, labels, log


def dodge(x: np.ndarray, line: int, lines: int, log: bool) -> np.ndarray:
    """``x [V]`` shifted sideways for line ``line`` of ``lines`` (at most ±3 % of the axis), so that
    lines with equal values stay visible; the ticks stay at the true values."""
    if lines < 2:
        return x
    share = DODGE * (line - (lines - 1) / 2) / max(lines - 1, 1)  # in [-DODGE/2, DODGE/2]
    if log:
        return x * (float(x.max()) / float(x.min())) ** share
    span = float(x.max() - x.min()) if x.size > 1 and x.max() > x.min() else 1.0
    return x + share * span


def series(rows: Sequence[Row], grid: Grid, metric: str, param: int) -> list[Series]:
    """The lines of ``metric`` against ``grid.params[param]``: one per combination of the other params."""
    values = grid.params[param].values
    others = [i for i in range(len(grid.params)) if i != param]
    groups: dict[tuple[Any, ...], list[Row]] = {}
    for row in rows:
        key = tuple(repr(row.point[i][1]) for i in others)
        groups.setdefault(key, []).append(row)
    out = []
    for members in groups.values():
        mean, std = np.full(len(values), np.nan), np.full(len(values), np.nan)  # [V], [V]
        for row in members:
            at = next(j for j, v in enumerate(values) if repr(v) == repr(row.point[param][1]))
            s = row.metrics.get(metric)
            if s is not None:
                mean[at], std[at] = s.mean, (s.std if s.std is not None else 0.0)
        label = ", ".join(f"{members[0].point[i][0]}={format_value(members[0].point[i][1])}" for i in others)
        out.append(Series(label, mean, std))
    return out


def plot_metric(
    lines: Sequence[Series], values: Sequence[Any], param: str, metric: str, out: Path, *, title: str
) -> Path:
    """Draw ``lines`` (mean ± std error bars) against ``values`` of ``param``; writes the PNG ``out``."""
    fig = Figure(figsize=LINE_FIGSIZE, dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    x, labels, log = axis_positions(values)
    named = len(lines) <= MAX_LEGEND_LINES
    for j, line in enumerate(lines):
        shifted = dodge(x, j, len(lines), log)  # [V]
        ax.errorbar(
            shifted,
            line.mean,
            yerr=line.std,
            marker="o",
            markersize=5,
            capsize=4,
            linewidth=1.6,
            label=(line.label or None) if named else None,
        )
    if log:
        ax.set_xscale("log")
    ax.set_xticks(x, labels=labels, fontsize=9, parse_math=False)
    ax.minorticks_off()
    ax.set_xlabel(param, parse_math=False)
    ax.set_ylabel(METRIC_LABELS.get(metric, metric), parse_math=False)
    ax.grid(True, color="#dddddd", linewidth=0.6)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.set_title(title, fontsize=11, parse_math=False)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return write_bytes(out, buffer.getvalue())


def plot_path(out_dir: Path, metric: str, param: str) -> Path:
    """``OUT/plots/<metric>-vs-<param>.png`` (``*`` written ``all``)."""
    return out_dir / PLOTS / f"{metric}-vs-{safe_name(param)}.png"


def write_plots(out_dir: Path, grid: Grid, rows: Sequence[Row], *, split: str) -> list[Path]:
    """Every metric of ``rows`` against every swept param; returns the files written."""
    metrics = list(rows[0].metrics) if rows else []
    seeds = len(grid.seeds)
    spread = f"mean ± std over {seeds} seeds" if seeds > 1 else "1 seed"
    written = []
    for metric in metrics:
        for i, param in enumerate(grid.params):
            title = f"{METRIC_LABELS.get(metric, metric)} ({split}) vs {param.key}: {spread}"
            written.append(
                plot_metric(
                    series(rows, grid, metric, i),
                    param.values,
                    param.key,
                    metric,
                    plot_path(out_dir, metric, param.key),
                    title=title,
                )
            )
    return written
