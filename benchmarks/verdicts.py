"""Figures and verdicts as text, computed from records (pure functions; nothing here is typed by hand).

The statistics are taskgraph's own (:mod:`taskgraph.metrics.spread`, :mod:`benchmarks.quality.stats`); this
module only words them for the docs.
"""

from __future__ import annotations

from collections.abc import Sequence

from benchmarks.quality.stats import TIE, t_interval
from benchmarks.quality.stats import verdict as stats_verdict
from taskgraph.metrics import finite, mean_std


def pm(values: Sequence[float | None], digits: int = 3) -> str:
    """``mean ± std`` (``mean`` alone for one value, ``–`` for none)."""
    mean, std = mean_std(values)
    if mean is None:
        return "–"
    return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def spread_line(label: str, values: Sequence[float | None], digits: int = 3) -> str:
    """``label mean ± std (min–max over N seeds)``."""
    xs = finite(values)
    if not xs:
        return f"{label} –"
    return f"{label} {pm(xs, digits)} ({min(xs):.{digits}f}–{max(xs):.{digits}f} over {len(xs)} seeds)"


def interval(mean: float | None, low: float | None, high: float | None) -> str:
    """``+0.012 [−0.003, +0.027]`` (or the mean alone, or ``–``)."""
    if mean is None:
        return "–"
    if low is None or high is None:
        return f"{mean:+.3f}"
    return f"{mean:+.3f} [{low:+.3f}, {high:+.3f}]"


def verdict(low: float | None, high: float | None) -> str:
    """The bench's verdict of an interval, ``no difference`` worded ``tie``."""
    word = stats_verdict(low, high)
    return "tie" if word == TIE else word


def paired(
    a: Sequence[float | None], b: Sequence[float | None], level: float = 0.95
) -> tuple[float, float, float, int]:
    """``a − b`` paired by position over the pairs where both are numbers: ``(mean, low, high, n)``, Student's t
    interval (at least two pairs)."""
    diffs = [float(x) - float(y) for x, y in zip(a, b) if x is not None and y is not None]
    mean, low, high = t_interval(diffs, level)
    return mean, low, high, len(diffs)
