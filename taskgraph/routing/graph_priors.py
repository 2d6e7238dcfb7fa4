r"""The graph router's priors: the loss terms its regularizer adds to the task loss (pure functions).

The graph router (:mod:`taskgraph.routing.graph`) routes task t from a GNN over tasks, adapters and layers whose
task–task edges carry the learned relations R. What it knows about how tasks relate reaches routing through the
penalties here. Shapes: routing weights ``w`` are ``[T, L, H, K]``, candidate pairs ``index`` ``[2, E]`` with their
relation weights ``r`` ``[E]``; soft gates ``g`` ``[T, L]``.

Loss terms (added by :meth:`~taskgraph.routing.graph.GraphRouter.regularizer`), each weight a spec field: relations
``λ_R (mean R − ρ)² + λ_p Σ_declared (R − R⁰)²``; compute budget ``λ_g (mean g − ρ_g)²``;
smoothness ``λ_s · mean_(i,j)∈E R_ij · mean_(l,h) ‖w_ilh − w_jlh‖²`` (means, not sums, so one
λ_s fits any T, L, H). Its gradient on R_ij is ``∝ λ_s d_ij`` against the density term's
``∝ 2λ_R (ρ − mean R)``: R_ij rises iff ``d_ij < 2(λ_R/λ_s)(ρ − mean R)`` — pairs that route
alike gain weight, the others lose it; that is how R learns relations with none declared.
"""

from __future__ import annotations

from torch import Tensor


def budget_penalty(soft: Tensor, target: float, strength: float) -> Tensor:
    """``λ_g · (mean(g) − ρ_g)²`` over the soft gates ``[T, L]``."""
    return strength * (soft.mean() - target) ** 2


def smoothness_penalty(weights: Tensor, index: Tensor, r: Tensor, strength: float) -> Tensor:
    """``λ_s · mean_e R_e · mean_(l,h) ‖w_i − w_j‖²``: weights ``[T, L, H, K]``, index ``[2, E]``, r ``[E]``."""
    if r.numel() == 0:
        return weights.new_zeros(())
    diff = weights.index_select(0, index[0]) - weights.index_select(0, index[1])  # [E, L, H, K]
    dist = diff.pow(2).sum(-1).mean(dim=(1, 2))  # [E]
    return strength * (r * dist).mean()
