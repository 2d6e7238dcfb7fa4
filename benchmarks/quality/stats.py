"""Statistics of the quality bench over seeds, as pure functions.

Every (router, seed) cell of ``python -m benchmarks quality`` trains on the same splits; seeds change the
initialisation and the batch sampling. A figure is reported as the mean ± the sample standard
deviation over seeds. Two routers are compared **paired by seed** (seed k of both saw the same
seed): ``d_k = a_k − b_k``, and the 95 % confidence interval of the mean difference is Student's
t-interval ``mean(d) ± t_{0.975, n−1} · sd(d) / √n``. A difference is a *win* only where the whole
interval lies above 0, a *loss* only where it lies below; otherwise the seeds cannot tell them apart.

The learning rate of a router is chosen once, on the **mean** validation figure over several selection seeds
(every rate of one grid trains on each of them, :func:`select_lr`), so one seed's luck cannot flip the choice; the
other seeds run only at the chosen rate. The selection seeds are reported seeds too, and the record says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from taskgraph.metrics import finite

WIN, LOSS, TIE, UNDECIDED = "win", "loss", "no difference", "too few seeds"


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)``: Student's t confidence interval of the mean of ``values``.

    Args:
        values: at least two observations (e.g. paired differences, one per seed).
        level: the coverage (default: ``0.95``).

    Raises:
        ValueError: fewer than two values, or ``level`` outside (0, 1).
    """
    if len(values) < 2:
        raise ValueError(f"a t-interval needs at least 2 values, got {len(values)}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    data = np.asarray(values, dtype=np.float64)  # [N]
    n = data.shape[0]
    mean = float(data.mean())
    half = float(stats.t.ppf(0.5 + level / 2.0, n - 1)) * float(data.std(ddof=1)) / math.sqrt(n)
    return mean, mean - half, mean + half


def verdict(low: float | None, high: float | None) -> str:
    """``win`` when the interval lies above 0, ``loss`` below, ``no difference`` when it holds 0."""
    if low is None or high is None:
        return UNDECIDED
    if low > 0.0:
        return WIN
    if high < 0.0:
        return LOSS
    return TIE


@dataclass(frozen=True)
class PairedDifference:
    """``a − b`` paired by seed: the mean difference, its t-interval and the verdict.

    Args:
        a, b: the names compared (e.g. ``graph`` and ``poly``).
        seeds: the seeds present on both sides, in order.
        differences: ``a_k − b_k`` per seed.
        mean, low, high: mean difference and its confidence interval (None below two seeds).
        level: the interval's coverage.
    """

    a: str
    b: str
    seeds: tuple[int, ...]
    differences: tuple[float, ...]
    mean: float | None
    low: float | None
    high: float | None
    level: float = 0.95

    @property
    def verdict(self) -> str:
        return verdict(self.low, self.high)

    def as_dict(self) -> dict[str, object]:
        return {
            "a": self.a,
            "b": self.b,
            "seeds": list(self.seeds),
            "differences": list(self.differences),
            "mean": self.mean,
            "ci_low": self.low,
            "ci_high": self.high,
            "level": self.level,
            "verdict": self.verdict,
        }


def paired_difference(
    a: str, a_by_seed: Mapping[int, float | None], b: str, b_by_seed: Mapping[int, float | None], level: float = 0.95
) -> PairedDifference:
    """Compare ``a`` with ``b`` on the seeds where both have a finite figure (see the module docstring)."""
    seeds = tuple(sorted(k for k in a_by_seed if k in b_by_seed and len(finite([a_by_seed[k], b_by_seed[k]])) == 2))
    diffs = tuple(float(a_by_seed[k]) - float(b_by_seed[k]) for k in seeds)  # type: ignore[arg-type]
    if len(diffs) >= 2:
        mean, low, high = t_interval(diffs, level)
        return PairedDifference(a, b, seeds, diffs, mean, low, high, level)
    mean = diffs[0] if diffs else None
    return PairedDifference(a, b, seeds, diffs, mean, None, None, level)


def select_lr(val_by_lr: Mapping[float, Mapping[int, float | None]]) -> float:
    """The learning rate with the highest mean validation figure over the selection seeds; a tie goes to the smaller
    rate. A rate scores only where every selection seed of it has a finite figure (a rate that failed or diverged on
    one seed is not chosen for its luck on the others).

    Args:
        val_by_lr: ``{lr: {seed: validation mean accuracy}}`` over the grid and the selection seeds (None: the cell
            failed).

    Raises:
        ValueError: no rate has a finite figure on every selection seed.
    """
    scored = [(score, lr) for lr, by_seed in val_by_lr.items() if (score := selection_score(by_seed)) is not None]
    if not scored:
        raise ValueError(f"no learning rate of {sorted(val_by_lr)} has a validation figure on every selection seed")
    best = max(score for score, _ in scored)
    return min(lr for score, lr in scored if score == best)


def selection_score(by_seed: Mapping[int, float | None]) -> float | None:
    """The mean of ``by_seed``'s figures, or None when there are none or one is missing / not finite."""
    values = list(by_seed.values())
    kept = finite(values)
    if not values or len(kept) != len(values):
        return None
    return float(np.mean(kept))
