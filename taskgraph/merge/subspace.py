"""One rank-r LoRA for all tasks through a shared subspace (docs/methods.md, "Shared-subspace merge").

The idea of KnOTS (Stoica et al., 2024) and "Compress then Merge": align the task LoRAs in one subspace
first, then merge their small coordinates. For the T updates ``ΔW_t = B_t A_t`` of one module:

1. orthonormal bases of all the factors, ``Q_B = qr([B_1 | … | B_T])`` ``[d_out, m_B]`` and
   ``Q_A = qr([A_1; …; A_T]ᵀ)`` ``[d_in, m_A]``; every update is exactly ``ΔW_t = Q_B M_t Q_Aᵀ`` with the
   coordinates ``M_t = (Q_Bᵀ B_t)(A_t Q_A)`` ``[m_B, m_A]`` (m_B, m_A ≤ Σ r_t);
2. the shared subspace: ``U`` the top-r left singular vectors of ``[M_1 | … | M_T]`` and ``V`` the top-r
   right singular vectors of ``[M_1; …; M_T]`` (the directions that carry most of all tasks' updates);
3. each task's (at most) r×r coordinates ``C_t = Uᵀ M_t V``, merged: ``C = λ Σ_t C_t`` (``combine: sum``) or TIES on
   the coordinates (``combine: ties``, with ``density``);
4. the result is one rank-r LoRA: ``B = Q_B U C`` ``[d_out, r]``, ``A = (Q_A V)ᵀ`` ``[r, d_in]``.

Exact when the ranks fit (``m_B, m_A ≤ r``, e.g. ``Σ_t r_t ≤ r``: U, V span every update, ``combine: sum`` is task
arithmetic).
The benchmark compares it with merge-then-SVD at the same rank (``task-arithmetic`` with ``rank``), which
truncates the merged sum instead of choosing a subspace from every task's update.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import torch
from torch import Tensor

from taskgraph.merge.lowrank import LowRank
from taskgraph.merge.method import MergeMethod
from taskgraph.merge.params import AUTO, DENSITY_GRID, LambdaParams, MergeParams, Share, ShareGrid
from taskgraph.merge.ties import ties
from taskgraph.registry import MERGES

COMBINES = ("sum", "ties")


def shared_bases(updates: Sequence[LowRank]) -> tuple[Tensor, Tensor, Tensor]:
    """``(Q_B [d_out, m_B], Q_A [d_in, m_A], M [T, m_B, m_A])``: orthonormal bases of all the factors and every
    task's exact coordinates in them, ``ΔW_t = Q_B M_t Q_Aᵀ`` (float64)."""
    qb, _ = torch.linalg.qr(torch.cat([u.B.double() for u in updates], dim=1))  # [d_out, m_B]
    qa, _ = torch.linalg.qr(torch.cat([u.A.double() for u in updates]).T)  # [d_in, m_A]
    coords = torch.stack([(qb.T @ u.B.double()) @ (u.A.double() @ qa) for u in updates])  # [T, m_B, m_A]
    return qb, qa, coords


def subspace_merge(updates: Sequence[LowRank], rank: int, combine: str, lam: float, density: float = 1.0) -> LowRank:
    """The shared-subspace merge of one module's task updates into one rank-``rank`` LoRA (see the module docstring).

    Args:
        updates: the T task updates ``ΔW_t = B_t @ A_t``.
        rank: r, the merged LoRA's rank (at most m, the rank of all factors together).
        combine: ``sum`` (``λ Σ_t C_t``) or ``ties`` (TIES with ``density`` on the coordinates).
        lam: λ.

    Returns:
        ``LowRank(A [r', d_in], B [d_out, r'])`` with ``r' = min(rank, m_A)`` (its product has rank ≤ ``rank``), in
        the updates' dtype.
    """
    if combine not in COMBINES:
        raise ValueError(f"combine {combine!r}: choose from {list(COMBINES)}")
    qb, qa, coords = shared_bases(updates)  # [d_out, m_B], [d_in, m_A], [T, m_B, m_A]
    t, m_b, m_a = coords.shape
    u = torch.linalg.svd(coords.permute(1, 0, 2).reshape(m_b, t * m_a), full_matrices=False)[0][:, :rank]  # [m_B, r_B]
    v = torch.linalg.svd(coords.reshape(t * m_b, m_a), full_matrices=False)[2][:rank].T  # [m_A, r_A]
    small = u.T @ coords @ v  # [T, r_B, r_A]
    merged = lam * small.sum(0) if combine == "sum" else ties(small, density, lam)  # [r_B, r_A]
    dtype = updates[0].A.dtype
    return LowRank((qa @ v).T.contiguous().to(dtype), (qb @ u @ merged).to(dtype))  # [r_A, d_in], [d_out, r_A]


class SubspaceParams(LambdaParams):
    """``rank`` (the merged LoRA's rank; default: the tasks' largest LoRA rank), ``lambda`` and
    ``combine`` (``sum`` or ``ties``, with ``density``: a number or ``auto``, TIES only)."""

    combine: Literal["sum", "ties"] = "sum"
    density: Share = AUTO
    density_grid: ShareGrid = DENSITY_GRID

    def grid(self) -> list[dict[str, float]]:
        points = super().grid()
        if self.combine == "sum":  # density is TIES' alone
            points = [dict(p) for p in {tuple((k, v) for k, v in p.items() if k != "density") for p in points}]
            points.sort(key=lambda p: p.get("lambda", 0.0))
        return points

    def fixed(self) -> dict[str, float]:
        out = super().fixed()
        if self.combine == "sum":
            out.pop("density", None)
        return out


@MERGES.register("subspace", params=SubspaceParams)
class Subspace(MergeMethod):
    """Project every task LoRA onto a shared rank-r subspace, merge the r×r coordinates: one rank-r LoRA."""

    hyper = ("lambda",)
    description = "one rank-r LoRA: shared subspace of all task factors, merged r×r coordinates"

    def __init__(self, combine: str = "sum") -> None:
        self.combine = combine

    @classmethod
    def from_params(cls, params: MergeParams) -> Subspace:
        assert isinstance(params, SubspaceParams)
        return cls(params.combine)

    def merge(
        self, updates: Sequence[LowRank], values: Mapping[str, float], *, rank: int | None, generator: torch.Generator
    ) -> LowRank:
        r = rank if rank is not None else max(u.rank for u in updates)
        return subspace_merge(updates, r, self.combine, values["lambda"], values.get("density", 1.0))
