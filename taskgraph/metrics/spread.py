"""Mean ± sample standard deviation of a figure over seeds (sweeps and the quality bench report it so)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def finite(values: Sequence[float | None]) -> list[float]:
    """The values that are numbers and finite, in order (None and NaN dropped)."""
    return [
        float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))
    ]


def mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """``(mean, sample standard deviation)`` of the finite values; std is None below 2 values, both None for none."""
    xs = finite(values)
    if not xs:
        return None, None
    data = np.asarray(xs, dtype=np.float64)  # [N]
    std = float(data.std(ddof=1)) if len(xs) >= 2 else None
    return float(data.mean()), std
