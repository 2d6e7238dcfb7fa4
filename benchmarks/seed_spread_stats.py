"""The statistics of the graph router's seed-spread study (:mod:`benchmarks.graph_seed_spread`).

Per variant: mean, std, min, max (:func:`describe`); paired by seed against its baseline, the mean difference with a
95 % Student-t interval and the one-sided Pitman-Morgan test of a lower variance (:func:`paired`); against a pooled
reference of the same configuration, the Brown-Forsythe test (:func:`spread_vs_pool`); and how fast two runs of
one seed part (:func:`loss_divergence`, from their logs).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ALPHA = 0.05


def describe(values: Sequence[float]) -> dict[str, float]:
    import numpy as np

    x = np.asarray(values, dtype=float)
    return {
        "mean": float(x.mean()),
        "std": float(x.std(ddof=1)),
        "min": float(x.min()),
        "max": float(x.max()),
        "n": len(x),
    }


def paired(variant: Sequence[float], base: Sequence[float]) -> dict[str, float]:
    """Paired mean difference ``variant − base`` with a 95 % Student-t interval, and the one-sided Pitman-Morgan
    test of ``var(variant) < var(base)`` (for paired samples: corr(x + y, x − y) < 0 ⇔ var x < var y)."""
    import numpy as np
    from scipy import stats

    x, y = np.asarray(variant, dtype=float), np.asarray(base, dtype=float)
    d = x - y
    n = len(d)
    half = float(stats.t.ppf(1 - ALPHA / 2, n - 1) * d.std(ddof=1) / math.sqrt(n))
    s, m = x + y, x - y
    r = float(np.corrcoef(s, m)[0, 1]) if s.std() > 0 and m.std() > 0 else 0.0
    t_pm = r * math.sqrt(n - 2) / math.sqrt(max(1e-12, 1 - r * r))
    return {
        "corr": float(np.corrcoef(x, y)[0, 1]) if x.std() > 0 and y.std() > 0 else math.nan,
        "fixed_seed_noise": float(d.std(ddof=1) / math.sqrt(2)),  # the std of one run at a fixed seed, if d is noise
        "mean_diff": float(d.mean()),
        "ci95": [float(d.mean()) - half, float(d.mean()) + half],
        "std_ratio": float(x.std(ddof=1) / y.std(ddof=1)) if y.std() > 0 else math.nan,
        "pitman_morgan_r": r,
        "p_std_lower": float(stats.t.cdf(t_pm, n - 2)),  # one-sided: variant's variance below base's
    }


def loss_divergence(a: str, b: str, seeds: Sequence[int], runs: Path) -> dict[str, Any] | None:
    """How fast two runs of the same seed part: per seed, the first step where the training losses differ by more
    than 1e-2 and the mean |Δ loss| over steps 1-100 (from each run's ``log.jsonl``)."""
    import numpy as np

    out: dict[str, Any] = {}
    for seed in seeds:
        logs = [runs / name / f"seed{seed}" / "log.jsonl" for name in (a, b)]
        if not all(p.is_file() for p in logs):
            continue
        la, lb = (
            np.array([r["loss"] for r in map(json.loads, p.read_text().splitlines()) if r.get("split") == "train"])
            for p in logs
        )
        d = np.abs(la - lb)  # [steps]
        out[str(seed)] = {
            "first_step_over_1e-2": int(np.argmax(d > 1e-2)) + 1 if (d > 1e-2).any() else None,
            "mean_abs_diff_steps_1_100": float(d[:100].mean()),
        }
    return out or None


def spread_vs_pool(values: Sequence[float], pool: Sequence[float]) -> dict[str, float]:
    """Std of ``values`` against a pooled reference of the same configuration: the ratio and the Brown-Forsythe
    test's p (two-sided; unpaired)."""
    import numpy as np
    from scipy import stats

    x, y = np.asarray(values, dtype=float), np.asarray(pool, dtype=float)
    return {
        "std_ratio": float(x.std(ddof=1) / y.std(ddof=1)),
        "mean_diff": float(x.mean() - y.mean()),
        "brown_forsythe_p": float(stats.levene(x, y, center="median").pvalue),
    }
