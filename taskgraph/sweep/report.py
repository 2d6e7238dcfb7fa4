"""The sweep's table: each metric's mean ± std over seeds per grid point (``OUT/sweep.md``, ``OUT/sweep.json``).

Metrics, read from each cell's ``eval.json`` (:func:`metric_values`): the split's mean over tasks of
``accuracy`` and ``macro_f1``; and, when the evaluation has them (a ground truth exists),
``allocation_precision`` (``allocation.precision``) and ``relation_auroc`` (``relations.auroc.learned``).
A metric no cell has is left out of the table. Per grid point, over the seeds that have a value:
the mean and the *sample* standard deviation (``n − 1`` in the denominator; None for one seed).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskgraph.atomic import write_text
from taskgraph.metrics.spread import mean_std
from taskgraph.sweep.grid import Grid

METRICS = ("accuracy", "macro_f1", "allocation_precision", "relation_auroc")
METRIC_LABELS = {
    "accuracy": "accuracy",
    "macro_f1": "macro-F1",
    "allocation_precision": "allocation precision",
    "relation_auroc": "relation AUROC",
}
MARKDOWN, SUMMARY = "sweep.md", "sweep.json"


@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation of ``n`` values (``std`` None when ``n < 2``)."""

    mean: float
    std: float | None
    n: int

    def as_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "n": self.n}

    def __str__(self) -> str:
        return f"{self.mean:.4f}" if self.std is None else f"{self.mean:.4f} ± {self.std:.4f}"


@dataclass(frozen=True)
class Row:
    """One grid point: its settings, its seeds' cells, and each metric's :class:`Stat` (None: no value)."""

    point: tuple[tuple[str, Any], ...]
    cells: tuple[str, ...]
    metrics: dict[str, Stat | None]

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.point)

    @property
    def n(self) -> int:
        return len(self.cells)


def stat(values: Sequence[float]) -> Stat | None:
    """:class:`Stat` of ``values``; None when there are none. ``std = sqrt(Σ (x − mean)² / (n − 1))``."""
    mean, std = mean_std(values)
    return None if mean is None else Stat(mean, std, len(values))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _section(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def metric_values(evaluation: Mapping[str, Any]) -> dict[str, float | None]:
    """The sweep's metrics of one cell's ``eval.json`` (None where it has none)."""
    mean = _section(evaluation.get("mean"))
    auroc = _section(_section(evaluation.get("relations")).get("auroc"))
    return {
        "accuracy": _number(mean.get("accuracy")),
        "macro_f1": _number(mean.get("macro_f1")),
        "allocation_precision": _number(_section(evaluation.get("allocation")).get("precision")),
        "relation_auroc": _number(auroc.get("learned")),
    }


def aggregate(grid: Grid, evaluations: Sequence[Mapping[str, Any]]) -> list[Row]:
    """One :class:`Row` per grid point, in grid order; ``evaluations[i]`` belongs to ``grid.cells[i]``."""
    if len(evaluations) != len(grid.cells):
        raise ValueError(f"{len(evaluations)} evaluations for {len(grid.cells)} cells")
    values = [metric_values(e) for e in evaluations]
    shown = present_metrics(values)
    rows = []
    for point in grid.points():
        members = [i for i, cell in enumerate(grid.cells) if repr(cell.point) == repr(point)]
        metrics = {m: stat([v for i in members if (v := values[i][m]) is not None]) for m in shown}
        rows.append(Row(point, tuple(grid.cells[i].slug for i in members), metrics))
    return rows


def present_metrics(values: Sequence[Mapping[str, float | None]]) -> list[str]:
    """The metrics that at least one cell has, in :data:`METRICS` order."""
    return [m for m in METRICS if any(v.get(m) is not None for v in values)]


def format_value(value: Any) -> str:
    """A param value as the YAML a user writes: ``0.5``, ``null``, ``true``, ``[query, value]``, ``abc``."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return json.dumps(value, default=str)


def markdown_table(grid: Grid, rows: Sequence[Row]) -> str:
    """The table: one row per grid point, the params, each metric as mean ± std, and n (seeds)."""
    metrics = list(rows[0].metrics) if rows else []
    header = [p.key for p in grid.params] + [METRIC_LABELS[m] for m in metrics] + ["n"]
    lines = [
        "| " + " | ".join(_cell_text(h) for h in header) + " |",
        "|" + "|".join("---" if i < len(grid.params) else "---:" for i in range(len(header))) + "|",
    ]
    for row in rows:
        cells = [format_value(v) for _, v in row.point]
        cells += [str(s) if (s := row.metrics[m]) is not None else "—" for m in metrics]
        cells.append(str(row.n))
        lines.append("| " + " | ".join(_cell_text(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _cell_text(text: str) -> str:
    return text.replace("|", "\\|")


def write_report(
    out: Path, grid: Grid, rows: Sequence[Row], outcomes: Sequence[Any], *, split: str
) -> tuple[Path, Path]:
    """Write ``OUT/sweep.md`` and ``OUT/sweep.json`` atomically; returns their paths.

    ``outcomes`` are the :class:`~taskgraph.sweep.run.CellOutcome` of ``grid.cells``, in order.
    """
    seeds = ", ".join(str(s) for s in grid.seeds)
    steps = f"; training.steps capped at {grid.max_steps}" if grid.max_steps is not None else ""
    text = (
        f"# Sweep of {grid.base.name} ({grid.spec_path})\n\n"
        f"Metrics on the {split} split, mean over tasks; per grid point mean ± std over seeds "
        f"(sample std; seeds {seeds}{steps}). n: seeds.\n\n" + markdown_table(grid, rows)
    )
    markdown = write_text(out / MARKDOWN, text)
    record = {
        "spec": str(grid.spec_path),
        "name": grid.base.name,
        "split": split,
        "seeds": list(grid.seeds),
        "max_steps": grid.max_steps,
        "params": [
            {"key": p.key, "values": list(p.values), "raw": list(p.raw), "keys": list(p.keys)} for p in grid.params
        ],
        "metrics": list(rows[0].metrics) if rows else [],
        "rows": [
            {
                "params": row.params,
                "n": row.n,
                "cells": list(row.cells),
                "metrics": {m: (s.as_dict() if s is not None else None) for m, s in row.metrics.items()},
            }
            for row in rows
        ],
        "cells": [
            {
                "slug": o.cell.slug,
                "params": o.cell.params,
                "seed": o.cell.seed,
                "status": o.status,
                "folder": str(o.folder),
                "metrics": metric_values(o.evaluation),
            }
            for o in outcomes
        ],
    }
    summary = write_text(out / SUMMARY, json.dumps(record, indent=1, default=str) + "\n")
    return markdown, summary
