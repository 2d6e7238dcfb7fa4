r"""The graph router's priors: its loss terms and the warm start of its task features (pure functions).

The graph router (:mod:`taskgraph.routing.graph`) routes task t from a GNN over tasks, adapters and layers whose
task–task edges carry the learned relations R. What it knows about how tasks relate reaches routing through the
functions here: penalties the regularizer adds to the task loss, and an initialisation of the task node features
from declared relations. Shapes: routing weights ``w`` are ``[T, L, H, K]``, candidate pairs ``index`` ``[2, E]``
with their relation weights ``r`` ``[E]``; soft gates ``g`` ``[T, L]``.

Loss terms (added by :meth:`~taskgraph.routing.graph.GraphRouter.regularizer`), each weight a spec field: relations
``λ_R (mean R − ρ)² + λ_p Σ_declared (R − R⁰)²``; compute budget ``λ_g (mean g − ρ_g)²``;
smoothness ``λ_s · mean_(i,j)∈E R_ij · mean_(l,h) ‖w_ilh − w_jlh‖²`` (means, not sums, so one
λ_s fits any T, L, H). Its gradient on R_ij is ``∝ λ_s d_ij`` against the density term's
``∝ 2λ_R (ρ − mean R)``: R_ij rises iff ``d_ij < 2(λ_R/λ_s)(ρ − mean R)`` — pairs that route
alike gain weight, the others lose it; that is how R learns relations with none declared.

Contrast (``router.contrast`` λ_c, margin m = ``contrast_margin``; off by default, ours):
``λ_c · mean_(i,j)∈E (1 − R_ij) · mean_(l,h) max(0, m − ‖w_ilh − w_jlh‖²)``. Smoothness only pulls related
tasks together, so nothing keeps unrelated ones from sharing every skill, and the task loss does not care. The
hinge pushes pairs with low R apart until their routing differs by m (‖Δw‖² ∈ [0, 2] per head); with declared
relations that makes the declared factorisation the optimum of the routing terms. Raising m splits related pairs
too unless smoothness is raised with it (tests/routing/test_contrast_prior.py shows both on a toy).

Warm start (``router.warm_start: relations``; ours; default ``none``): the task node features start as
:func:`spectral_task_init` of the declared relations (:func:`declared_matrix`: declared weights, 0.5 elsewhere)
instead of ``randn``: the top eigenvectors of ``D^-½ W D^-½``, scaled by √eigenvalue, centred, rotated into d
dimensions, mean row norm √d, plus σ·N(0, 1) (σ = ``warm_start_noise``). Tasks with the same declared
neighbours then start with nearly the same features, so the GNN and the read-out route them alike from step 0
— the declared factorisation as an initialisation rather than a loss term. Only the start changes; the
features train as before. Needs declared relations (an error names the fix otherwise).

Why contrast and the warm start are off by default (each measured against the plain graph router and Poly):
docs/graph-prior.md §4 and §12 — they win allocation precision with declared relations, never accuracy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from taskgraph.errors import ModelError


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


def contrast_penalty(weights: Tensor, index: Tensor, r: Tensor, strength: float, margin: float) -> Tensor:
    """``λ_c · mean_e (1 − R_e) · mean_(l,h) max(0, m − ‖w_i − w_j‖²)``: weights ``[T, L, H, K]``, index ``[2, E]``."""
    if r.numel() == 0:
        return weights.new_zeros(())
    diff = weights.index_select(0, index[0]) - weights.index_select(0, index[1])  # [E, L, H, K]
    short = F.relu(margin - diff.pow(2).sum(-1)).mean(dim=(1, 2))  # [E] how far each pair is from apart enough
    return strength * ((1 - r) * short).mean()


def spectral_task_init(weights: Tensor, dim: int, noise: float, generator: torch.Generator | None = None) -> Tensor:
    """Task node features ``[T, dim]`` from a relation matrix ``[T, T]`` (symmetric, diagonal ignored).

    The rows of ``U_m Λ_m^½`` — the top-m eigenvectors of the normalised matrix ``D^-½ W D^-½`` (m = min(dim, T))
    scaled by their eigenvalues' square roots (negative ones dropped), centred over the tasks — rotated into
    ``dim`` by a random orthonormal map and scaled so the mean row norm is ``√dim`` (the norm of a ``randn`` row),
    plus ``noise`` × standard normal: tasks with the same related neighbours start with nearly the same features.
    """
    t = weights.shape[0]
    w = weights.clone().fill_diagonal_(0).clamp_min(0)  # [T, T]
    inv = w.sum(1).clamp_min(1e-12).rsqrt()  # [T]
    values, vectors = torch.linalg.eigh(inv[:, None] * w * inv[None, :])  # ascending: [T], [T, T]
    m = min(dim, t)
    x = vectors[:, -m:] * values[-m:].clamp_min(0).sqrt()  # [T, m]
    x = x - x.mean(0, keepdim=True)  # [T, m]
    rotate, _ = torch.linalg.qr(torch.randn(dim, m, generator=generator, dtype=x.dtype))  # [dim, m] orthonormal
    x = x @ rotate.T  # [T, dim]
    scale = x.norm(dim=1).mean()
    x = x * (math.sqrt(dim) / scale) if scale > 1e-8 else x
    return x + noise * torch.randn(t, dim, generator=generator, dtype=x.dtype)  # [T, dim]


def declared_matrix(trained: int, declared: Sequence[tuple[int, int, float]]) -> Tensor:
    """``[T, T]``: the declared weight of each pair among the trained tasks, 0.5 (R's neutral start) elsewhere."""
    pairs = [(a, b, w) for a, b, w in declared if a < trained and b < trained and a != b]
    if not pairs:
        raise ModelError(
            "router.warm_start: relations starts the task features from relations.declared, but no pair of trained "
            "tasks is declared; declare relations (relations.declared: [[a, b, weight], ...]) or use warm_start: none"
        )
    out = torch.full((trained, trained), 0.5)  # [T, T]
    for a, b, w in pairs:
        out[a, b] = out[b, a] = float(w)
    return out.fill_diagonal_(0)
