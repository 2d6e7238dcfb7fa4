"""One module's update as low-rank factors, and the SVD that turns a dense update back into factors.

Orientation is PEFT's (``lora_A.weight [r, d_in]``, ``lora_B.weight [d_out, r]``) with any scaling
folded into B, so a module's update is ``ΔW = B @ A`` ``[d_out, d_in]`` (``nn.Linear`` orientation).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

RANK_TOL = 1e-7  # singular values below RANK_TOL · σ_max (float64) count as zero for the exact rank


@dataclass(frozen=True)
class LowRank:
    """``ΔW = B @ A`` for one module.

    Args:
        A: ``[r, d_in]``.
        B: ``[d_out, r]`` (scaling and gate folded in).
    """

    A: Tensor
    B: Tensor

    def __post_init__(self) -> None:
        if self.A.dim() != 2 or self.B.dim() != 2 or self.A.shape[0] != self.B.shape[1]:
            raise ValueError(
                f"LowRank needs A [r, d_in] and B [d_out, r], got {tuple(self.A.shape)} and {tuple(self.B.shape)}"
            )

    @property
    def rank(self) -> int:
        return self.A.shape[0]

    @property
    def shape(self) -> tuple[int, int]:
        """``(d_out, d_in)`` of the update."""
        return self.B.shape[0], self.A.shape[1]

    def dense(self) -> Tensor:
        """``ΔW [d_out, d_in]``."""
        return self.B @ self.A  # [d_out, d_in]

    def padded(self, rank: int) -> LowRank:
        """The same update with zero rows / columns appended up to ``rank`` (exact)."""
        if rank < self.rank:
            raise ValueError(f"cannot pad a rank-{self.rank} update down to {rank}")
        extra = rank - self.rank
        a = torch.cat([self.A, self.A.new_zeros(extra, self.A.shape[1])])  # [rank, d_in]
        b = torch.cat([self.B, self.B.new_zeros(self.B.shape[0], extra)], dim=1)  # [d_out, rank]
        return LowRank(a, b)

    def __repr__(self) -> str:
        return f"LowRank(rank={self.rank}, d_out={self.shape[0]}, d_in={self.shape[1]})"


def concat(updates: list[LowRank], weights: list[float] | None = None) -> LowRank:
    """``Σ_t w_t ΔW_t`` exactly, as one LowRank of rank ``Σ_t r_t`` (factors side by side)."""
    weights = [1.0] * len(updates) if weights is None else weights
    a = torch.cat([u.A for u in updates])  # [Σr, d_in]
    b = torch.cat([w * u.B for u, w in zip(updates, weights)], dim=1)  # [d_out, Σr]
    return LowRank(a, b)


def factorize(delta: Tensor, rank: int | None = None) -> LowRank:
    """A dense update ``[d_out, d_in]`` as factors, by SVD (in float64).

    Args:
        delta: ``ΔW [d_out, d_in]``.
        rank: keep the top ``rank`` singular directions (truncated SVD, the best rank-``rank``
            approximation in Frobenius norm); None keeps the exact numerical rank (singular values above
            :data:`RANK_TOL` · σ_max), at least 1.

    Returns:
        ``LowRank`` with ``B = U √S`` and ``A = √S Vᵀ`` (balanced factors), in ``delta``'s dtype.
    """
    u, s, vh = torch.linalg.svd(delta.double(), full_matrices=False)  # [d_out, m], [m], [m, d_in]
    if rank is None:
        keep = int((s > RANK_TOL * s[0]).sum()) if s.numel() and s[0] > 0 else 0
    else:
        keep = min(rank, s.numel())
    keep = max(keep, 1)
    root = s[:keep].sqrt()  # [k]
    b = (u[:, :keep] * root).to(delta.dtype)  # [d_out, k]
    a = (root[:, None] * vh[:keep]).to(delta.dtype)  # [k, d_in]
    return LowRank(a, b)


def singular_values(update: LowRank) -> Tensor:
    """The singular values of ``ΔW = B @ A`` (float64, descending), from the factors alone: with ``Aᵀ = Q_a R_a`` and
    ``B = Q_b R_b``, ``ΔW = Q_b (R_b R_aᵀ) Q_aᵀ`` has the singular values of the small core ``R_b R_aᵀ``."""
    _, ra = torch.linalg.qr(update.A.double().T)  # [min(d_in, r), r]
    _, rb = torch.linalg.qr(update.B.double())  # [min(d_out, r), r]
    return torch.linalg.svdvals(rb @ ra.T)  # [min(d_out, d_in, r)]


def truncate(update: LowRank, rank: int | None) -> LowRank:
    """The best rank-``rank`` approximation of a low-rank update (exact when its rank already fits); with
    ``rank=None`` the same update re-factored at its exact numerical rank (e.g. L-LoRA updates that share
    one ``A₀``: their sum is rank r, not Σ r_t)."""
    if rank is not None and update.rank <= rank:
        return update
    qa, ra = torch.linalg.qr(update.A.double().T)  # [d_in, r], [r, r]
    qb, rb = torch.linalg.qr(update.B.double())  # [d_out, r], [r, r]
    core = factorize(rb @ ra.T, rank)  # rb raᵀ [r, r] = qbᵀ ΔW qa
    return LowRank((core.A @ qa.T).to(update.A.dtype), (qb @ core.B).to(update.B.dtype))
