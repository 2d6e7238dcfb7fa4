"""Statistics of interleaved timings, as pure functions.

A speed bench runs every configuration once per *round*, in a shuffled order, so the times of two
configurations taken in the same round share whatever the machine was doing then. The fair
comparison is therefore **paired**: per round, ``ratio_i = t_config,i / t_reference,i``; the figure
reported is the median of those ratios, with a percentile-bootstrap 95 % confidence interval of that
median (rounds resampled with replacement, a seeded generator, so a report is reproducible).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def median(values: Sequence[float]) -> float:
    """The median (the mean of the two middle values for an even count); ValueError when empty."""
    if len(values) == 0:
        raise ValueError("median of no values")
    return float(np.median(np.asarray(values, dtype=np.float64)))


def paired_ratios(numerator: Sequence[float], denominator: Sequence[float]) -> list[float]:
    """Per-round ratios ``numerator[i] / denominator[i]``.

    Args:
        numerator: one time per round of the configuration measured.
        denominator: one time per round of the reference, same rounds, same order.

    Raises:
        ValueError: when the lengths differ or a denominator is not positive.
    """
    if len(numerator) != len(denominator):
        raise ValueError(
            f"paired ratios need one value per round on both sides, got {len(numerator)} and {len(denominator)}"
        )
    if any(not d > 0 for d in denominator):
        raise ValueError("paired ratios need positive reference times")
    return [float(n) / float(d) for n, d in zip(numerator, denominator)]


def bootstrap_median_ci(
    values: Sequence[float], *, level: float = 0.95, resamples: int = 10_000, seed: int = 0
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the median of ``values``.

    Draws ``resamples`` samples of ``len(values)`` values with replacement, takes each one's median,
    and returns the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of those medians.

    Args:
        values: the observations (e.g. per-round ratios).
        level: the coverage (default: ``0.95``).
        resamples: the number of bootstrap samples (default: ``10_000``).
        seed: seeds the generator, so the interval is reproducible (default: ``0``).

    Returns:
        ``(low, high)``.
    """
    if len(values) == 0:
        raise ValueError("a confidence interval of no values")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    data = np.asarray(values, dtype=np.float64)  # [N]
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, data.shape[0], size=(resamples, data.shape[0]))  # [R, N]
    medians = np.median(data[picks], axis=1)  # [R]
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(medians, [tail, 1.0 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class RatioSummary:
    """The paired comparison of one configuration with a reference.

    Args:
        median: median of the per-round ratios.
        low, high: bootstrap confidence interval of that median.
        rounds: the number of paired rounds.
    """

    median: float
    low: float
    high: float
    rounds: int

    def as_dict(self) -> dict[str, float | int]:
        return {"median": self.median, "ci_low": self.low, "ci_high": self.high, "rounds": self.rounds}

    def __str__(self) -> str:
        return f"{self.median:.3f} [{self.low:.3f}, {self.high:.3f}]"


def ratio_summary(
    numerator: Sequence[float],
    denominator: Sequence[float],
    *,
    level: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
) -> RatioSummary:
    """Median paired ratio of ``numerator`` to ``denominator`` and its bootstrap CI."""
    ratios = paired_ratios(numerator, denominator)
    low, high = bootstrap_median_ci(ratios, level=level, resamples=resamples, seed=seed)
    return RatioSummary(median(ratios), low, high, len(ratios))


def all_finite_positive(values: Sequence[float]) -> bool:
    """True when every value is a finite number above zero (a sanity check on timings)."""
    return len(values) > 0 and all(math.isfinite(v) and v > 0 for v in values)
