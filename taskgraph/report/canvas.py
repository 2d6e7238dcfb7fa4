"""The Agg canvas the report's figures draw on: a figure, its PNG bytes, the atomic write, the array inputs.

pyplot is never imported and no global matplotlib setting changes: each figure gets its own
:class:`~matplotlib.backends.backend_agg.FigureCanvasAgg`, and PNG metadata carries no software version, so the
same inputs give the same bytes. Used by :mod:`taskgraph.report.plots` (curves) and
:mod:`taskgraph.report.heatmaps`.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from taskgraph.atomic import write_bytes

DPI = 100

ArrayLike = np.ndarray | torch.Tensor | Sequence[Any]
PathLike = str | os.PathLike[str]


def as_array(values: ArrayLike, ndim: int, what: str) -> np.ndarray:
    """``values`` as a float64 numpy array of ``ndim`` dimensions; ValueError naming ``what`` otherwise."""
    if isinstance(values, torch.Tensor):
        values = values.detach().to("cpu", torch.float64).numpy()
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != ndim:
        raise ValueError(f"{what} must have {ndim} dimensions, got shape {tuple(array.shape)}")
    return array


def png_bytes(fig: Figure) -> bytes:
    """``fig`` rendered as PNG at :data:`DPI`, with no software version in its metadata."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def new_figure(size: tuple[float, float], layout: str | None = None) -> Figure:
    """A figure of ``size`` inches on its own Agg canvas (pyplot untouched)."""
    fig = Figure(figsize=size, dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def show_empty(ax: Axes, message: str) -> None:
    """Turn ``ax`` into a blank panel saying ``message`` in its middle."""
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


def write_png(fig: Figure, out: PathLike) -> Path:
    """Write ``fig`` as PNG to ``out`` atomically; returns the path."""
    return write_bytes(out, png_bytes(fig))
