"""Relation recovery (docs/methods.md §5): AUROC of task–task scores against a ground truth of related pairs.

- :func:`auroc` is the Mann–Whitney statistic: the probability that a random positive scores above
  a random negative, a tie counting 1/2 (computed from average ranks). None when either class is
  empty: there is nothing to rank.
- :func:`pair_auroc` scores a ``[T, T]`` matrix (a learned relation matrix R, a routing or gradient
  cosine) against a ``[T, T]`` bool truth over the unordered pairs ``i < j``. A pair's score is the
  mean of ``S[i, j]`` and ``S[j, i]`` (a symmetric matrix is read as it is). Pairs in ``exclude``
  (e.g. the relations the spec declared, which a router was told) are left out.
- :func:`random_pair_auroc` is the baseline of a random R: the mean pair AUROC of ``draws`` seeded
  uniform random matrices (≈ 0.5).
- :func:`pair_means` gives the mean score over related and over unrelated pairs.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata
from torch import Tensor

ArrayLike = Tensor | np.ndarray
RANDOM_DRAWS = 20


def _numpy(x: ArrayLike, dtype: type) -> np.ndarray:
    return np.asarray(x.detach().double().cpu() if isinstance(x, Tensor) else x, dtype=dtype)


def auroc(scores: ArrayLike, labels: ArrayLike) -> float | None:
    """``P(score⁺ > score⁻) + ½ P(score⁺ = score⁻)`` over every (positive, negative) pair; None if a class is empty.

    Raises:
        ValueError: scores and labels differ in length, or a score is not finite.
    """
    s, y = _numpy(scores, np.float64).reshape(-1), _numpy(labels, bool).reshape(-1)  # [N], [N]
    if s.shape != y.shape:
        raise ValueError(f"scores and labels differ in length: {s.size} vs {y.size}")
    if not np.isfinite(s).all():
        raise ValueError("every score must be finite")
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(s)  # [N] average ranks: a tie counts 1/2
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def pair_index(size: int, exclude: ArrayLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The unordered pairs ``(i, j)``, ``i < j``, of ``size`` tasks, without those marked in ``exclude [T, T]``."""
    i, j = np.triu_indices(size, k=1)  # [P], [P]
    if exclude is not None:
        ex = _numpy(exclude, bool)  # [T, T]
        keep = ~(ex[i, j] | ex[j, i])  # [P]
        i, j = i[keep], j[keep]
    return i, j


def _pairs(scores: ArrayLike, truth: ArrayLike, exclude: ArrayLike | None) -> tuple[np.ndarray, np.ndarray]:
    s, y = _numpy(scores, np.float64), _numpy(truth, bool)  # [T, T], [T, T]
    if s.ndim != 2 or s.shape[0] != s.shape[1] or s.shape != y.shape:
        raise ValueError(f"scores and truth must both be [T, T]; got {s.shape} and {y.shape}")
    i, j = pair_index(s.shape[0], exclude)
    return (s[i, j] + s[j, i]) / 2, y[i, j] | y[j, i]  # [P], [P]


def pair_auroc(scores: ArrayLike, truth: ArrayLike, exclude: ArrayLike | None = None) -> float | None:
    """AUROC of ``scores [T, T]`` against ``truth [T, T]`` bool over the pairs ``i < j`` not in ``exclude``.

    None when the kept pairs are all related or all unrelated (or there are none).
    """
    s, y = _pairs(scores, truth, exclude)
    return auroc(s, y)


def random_pair_auroc(
    truth: ArrayLike, exclude: ArrayLike | None = None, draws: int = RANDOM_DRAWS, seed: int = 0
) -> float | None:
    """The mean :func:`pair_auroc` of ``draws`` uniform random ``[T, T]`` matrices (seeded by ``seed``)."""
    y = _numpy(truth, bool)  # [T, T]
    values = []
    for d in range(draws):
        rng = np.random.default_rng([seed, d])
        value = pair_auroc(rng.random(y.shape), y, exclude)
        if value is None:
            return None
        values.append(value)
    return float(np.mean(values)) if values else None


def pair_counts(truth: ArrayLike, exclude: ArrayLike | None = None) -> tuple[int, int]:
    """``(pairs, related pairs)`` among the unordered pairs ``i < j`` not in ``exclude``."""
    y = _numpy(truth, bool)  # [T, T]
    i, j = pair_index(y.shape[0], exclude)
    return len(i), int((y[i, j] | y[j, i]).sum())


def pair_means(
    scores: ArrayLike, truth: ArrayLike, exclude: ArrayLike | None = None
) -> tuple[float | None, float | None]:
    """``(mean score of related pairs, of unrelated pairs)``; None for a class with no pair."""
    s, y = _pairs(scores, truth, exclude)
    related = float(s[y].mean()) if y.any() else None
    unrelated = float(s[~y].mean()) if (~y).any() else None
    return related, unrelated
