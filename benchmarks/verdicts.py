"""Figures and verdicts as text, computed from records (pure functions; nothing here is typed by hand)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def mean_std(values: Sequence[float | None]) -> tuple[float, float | None, int]:
    """``(mean, sample std or None below 2, n)`` of the finite values."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not xs:
        raise ValueError("no finite value")
    mean = sum(xs) / len(xs)
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else None
    return mean, std, len(xs)


def pm(values: Sequence[float | None], digits: int = 3) -> str:
    """``mean ± std`` (``mean`` alone for one value, ``–`` for none)."""
    try:
        mean, std, _ = mean_std(values)
    except ValueError:
        return "–"
    return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def spread_line(label: str, values: Sequence[float | None], digits: int = 3) -> str:
    """``label mean ± std (min–max over N seeds)``."""
    xs = [float(v) for v in values if v is not None]
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
    """``win`` when the interval lies above 0, ``loss`` below, ``tie`` when it holds 0, ``too few seeds`` else."""
    if low is None or high is None:
        return "too few seeds"
    if low > 0:
        return "win"
    if high < 0:
        return "loss"
    return "tie"


def paired(
    a: Sequence[float | None], b: Sequence[float | None], level: float = 0.95
) -> tuple[float, float, float, int]:
    """``a − b`` paired by position over the pairs where both are numbers: ``(mean, low, high, n)``, Student's t
    interval (at least two pairs)."""
    from scipy import stats

    diffs = [float(x) - float(y) for x, y in zip(a, b) if x is not None and y is not None]
    if len(diffs) < 2:
        raise ValueError(f"a paired interval needs at least 2 pairs, got {len(diffs)}")
    mean, _, n = mean_std(diffs)
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return mean, mean - half, mean + half, n
