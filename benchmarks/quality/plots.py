"""PNG figures of the quality bench (Figure + the Agg canvas, never pyplot; written atomically).

* ``accuracy.png`` — validation and test mean accuracy per router, bars at the mean over seeds,
  error bars ± one standard deviation;
* ``few_shot.png`` — held-out test accuracy against the number of shots (log scale), one line per
  (router, adaptation mode), error bars ± one standard deviation; the lines are drawn a little
  apart along x so that equal points stay visible.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from taskgraph.atomic import write_bytes

DPI = 100


def _figure(size: tuple[float, float]) -> Figure:
    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, out: str | os.PathLike[str]) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return write_bytes(out, buffer.getvalue())


def _value(block: Mapping[str, Any] | None, key: str) -> float:
    value = (block or {}).get(key)
    return float(value) if isinstance(value, (int, float)) else np.nan


def plot_router_accuracy(rows: Sequence[Mapping[str, Any]], out: str | os.PathLike[str], title: str) -> Path:
    """Bars of validation and test mean accuracy per router (± std over seeds); writes ``out``."""
    fig = _figure((max(6.0, 1.3 * len(rows) + 2.5), 4.5))
    ax = fig.add_subplot()
    x = np.arange(len(rows), dtype=np.float64)  # [R]
    for offset, split, color in ((-0.2, "val", "#9ecae1"), (0.2, "test", "#08519c")):
        means = np.array([_value(r.get(split), "mean") for r in rows])  # [R]
        stds = np.nan_to_num(np.array([_value(r.get(split), "std") for r in rows]))  # [R]
        ax.bar(x + offset, np.nan_to_num(means), width=0.4, yerr=stds, capsize=3, color=color, label=split)
    ax.set_xticks(x, labels=[f"{r['router']}\nlr {r['lr']:g}" for r in rows], fontsize=9)
    ax.set_ylabel("mean accuracy over tasks")
    ax.set_ylim(0.0, 1.0)
    ax.set_title(title, parse_math=False)
    ax.legend(loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, out)


def plot_few_shot(rows: Sequence[Mapping[str, Any]], out: str | os.PathLike[str], title: str) -> Path:
    """Held-out accuracy vs shots per (router, mode) (± std over seeds); writes ``out``."""
    fig = _figure((8.0, 5.0))
    ax = fig.add_subplot()
    lines: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for r in rows:
        lines.setdefault((r["router"], r["mode"]), []).append(r)
    if not lines:
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no adaptation cells", ha="center", va="center", transform=ax.transAxes)
        return _save(fig, out)
    count = len(lines)
    for i, ((router, mode), points) in enumerate(sorted(lines.items())):
        points = sorted(points, key=lambda p: p["shots"])
        jitter = 1.0 + 0.02 * (i - (count - 1) / 2)  # lines side by side, so equal points stay visible
        shots = np.array([p["shots"] for p in points], dtype=np.float64) * jitter  # [N]
        means = np.array([_value(p, "mean") for p in points])  # [N]
        stds = np.nan_to_num(np.array([_value(p, "std") for p in points]))  # [N]
        ax.errorbar(
            shots,
            means,
            yerr=stds,
            marker="o",
            capsize=3,
            label=f"{router} / {mode}",
            linestyle="--" if mode == "zero-shot" else "-",
        )
    ax.set_xscale("log", base=2)
    ticks = sorted({int(r["shots"]) for r in rows})
    ax.set_xticks(ticks, labels=[str(t) for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("shots (examples of the held-out task)")
    ax.set_ylabel("held-out test accuracy")
    ax.set_ylim(0.0, 1.0)
    ax.set_title(title, parse_math=False)
    ax.legend(fontsize=8, ncol=2, loc="lower right")
    ax.grid(alpha=0.3)
    return _save(fig, out)
