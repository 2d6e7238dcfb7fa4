r"""Allocation precision (docs/methods.md §5): do a router's adapters line up with the planted skills?

Skills are interchangeable inside each (layer, head): nothing tells adapter k that it is skill s.
So, per (layer, head), the K adapters are first matched one-to-one to the S true skills (K ≥ S) by
the Hungarian method (``scipy.optimize.linear_sum_assignment``), maximising the agreement between
the task × adapter weights ``w [T, K]`` and the task × skill incidence ``inc [T, S]``:

.. math::
    \mathrm{agree}[k, s] = \sum_t w[t, k] \cdot \mathrm{inc}[t, s]

(the total weight that the tasks using skill s put on adapter k). Then, per task t, the share of its
top-``|S_t|`` adapters (by ``w[t, :]``) that are matched to one of its true skills ``S_t``; the mean
over tasks, then over (layer, head). Tasks with no skill are left out.

**Tie rule.** Where weights tie across the top-``|S_t|`` cut, the share is its expectation under a
uniformly random tie-break: adapters strictly above the ``|S_t|``-th largest weight count fully;
the adapters equal to it (within :data:`TIE_TOL`) share the remaining slots equally. Uniform
weights therefore give exactly ``|S_t| / K`` — the random-routing baseline — whichever way the
(then all-tied) matching went.

**Random routing** (:func:`random_allocation_precision`): a uniformly random ``|S_t|`` of the K
adapters holds on average ``|S_t|·|S_t|/K`` of the task's matched adapters, a precision of
``|S_t| / K``; the mean over tasks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from torch import Tensor

ArrayLike = Tensor | np.ndarray
TIE_TOL = 1e-9  # weights closer than this count as tied


def _numpy(x: ArrayLike, dtype: type) -> np.ndarray:
    return np.asarray(x.detach().double().cpu() if isinstance(x, Tensor) else x, dtype=dtype)


@dataclass(frozen=True)
class AllocationPrecision:
    """Allocation precision of a routing against a planted incidence.

    Args:
        precision: the mean over (layer, head) of the per-(layer, head) precision.
        random: the random-routing baseline ``mean_t |S_t| / K``.
        per_layer_head: ``[L][H]`` the precision of every (layer, head).
    """

    precision: float
    random: float
    per_layer_head: list[list[float]]

    def __repr__(self) -> str:
        flat = [p for row in self.per_layer_head for p in row]
        return (
            f"AllocationPrecision(precision={self.precision:.4f}, random={self.random:.4f}, "
            f"layers={len(self.per_layer_head)}, min={min(flat):.4f}, max={max(flat):.4f})"
        )


def match_adapters(weights: ArrayLike, incidence: ArrayLike) -> np.ndarray:
    """The adapter matched to every skill: ``[T, K]`` weights, ``[T, S]`` incidence → ``[S]`` adapter ids.

    Hungarian matching maximising ``Σ_s agree[m(s), s]`` with ``agree = wᵀ · inc`` (see the module docstring).

    Raises:
        ValueError: ``K < S`` (a skill would stay unmatched) or the task counts differ.
    """
    w, inc = _numpy(weights, np.float64), _numpy(incidence, np.float64)  # [T, K], [T, S]
    if w.ndim != 2 or inc.ndim != 2 or w.shape[0] != inc.shape[0]:
        raise ValueError(f"weights [T, K] and incidence [T, S] must share T; got {w.shape} and {inc.shape}")
    if w.shape[1] < inc.shape[1]:
        raise ValueError(f"{w.shape[1]} adapters cannot be matched to {inc.shape[1]} skills: need K >= S")
    agree = w.T @ inc  # [K, S]
    rows, cols = linear_sum_assignment(agree, maximize=True)  # S pairs (adapter, skill)
    adapter = np.empty(inc.shape[1], dtype=np.int64)  # [S]
    adapter[cols] = rows
    return adapter


def top_share(weights: np.ndarray, relevant: np.ndarray, count: int, tol: float = TIE_TOL) -> float:
    """The share of the top-``count`` entries of ``weights [K]`` that are ``relevant [K]`` (ties: expected share).

    Entries strictly above the ``count``-th largest weight are in the top; the entries tied with it
    (within ``tol``) share the remaining slots equally (see the module docstring's tie rule).
    """
    if count <= 0:
        raise ValueError(f"count must be at least 1, got {count}")
    w = np.asarray(weights, dtype=np.float64)  # [K]
    count = min(count, w.shape[0])
    cut = np.sort(w)[::-1][count - 1]  # the count-th largest weight
    above = w > cut + tol  # [K]
    tied = np.abs(w - cut) <= tol  # [K]
    member = above.astype(np.float64) + tied * ((count - above.sum()) / tied.sum())  # [K] in [0, 1]
    return float((member * np.asarray(relevant, dtype=np.float64)).sum() / count)


def layer_allocation_precision(weights: ArrayLike, incidence: ArrayLike) -> float | None:
    """The precision of one (layer, head): ``[T, K]`` weights vs ``[T, S]`` incidence; None when K < S.

    None as well when no task uses any skill.
    """
    w, inc = _numpy(weights, np.float64), _numpy(incidence, bool)  # [T, K], [T, S]
    if w.shape[1] < inc.shape[1]:
        return None
    adapter = match_adapters(w, inc)  # [S]
    shares = []
    for t in range(w.shape[0]):
        skills = np.flatnonzero(inc[t])
        if len(skills) == 0:
            continue
        relevant = np.zeros(w.shape[1], dtype=bool)  # [K] adapters matched to one of the task's skills
        relevant[adapter[skills]] = True
        shares.append(top_share(w[t], relevant, len(skills)))
    return float(np.mean(shares)) if shares else None


def random_allocation_precision(incidence: ArrayLike, skills: int) -> float | None:
    """``mean_t |S_t| / K`` over the tasks with at least one skill; None when none has one or ``K < S``."""
    inc = _numpy(incidence, bool)  # [T, S]
    sizes = inc.sum(axis=1)  # [T]
    sizes = sizes[sizes > 0]
    if len(sizes) == 0 or skills < inc.shape[1]:
        return None
    return float(np.mean(sizes / skills))


def allocation_precision(weights: ArrayLike, incidence: ArrayLike) -> AllocationPrecision | None:
    """Allocation precision of routing weights ``[T, L, H, K]`` against a planted incidence ``[T, S]``.

    Returns None when ``K < S`` (the adapters cannot hold the skills one each) or no task has a skill.

    Raises:
        ValueError: the weights are not ``[T, L, H, K]`` or their T differs from the incidence's.
    """
    w, inc = _numpy(weights, np.float64), _numpy(incidence, bool)  # [T, L, H, K], [T, S]
    if w.ndim != 4 or inc.ndim != 2 or w.shape[0] != inc.shape[0]:
        raise ValueError(
            f"weights must be [T, L, H, K] and incidence [T, S] with the same T; got {w.shape} and {inc.shape}"
        )
    random = random_allocation_precision(inc, w.shape[3])
    if random is None:
        return None
    per: list[list[float]] = []  # [L][H]
    for layer in range(w.shape[1]):
        row = [layer_allocation_precision(w[:, layer, head], inc) for head in range(w.shape[2])]
        per.append([float(p) for p in row if p is not None])  # never None: K >= S and a task has a skill
    return AllocationPrecision(float(np.mean(per)), random, per)
