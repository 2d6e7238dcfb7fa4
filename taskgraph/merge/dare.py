"""DARE (Yu et al., 2024; docs/methods.md, "DARE"): drop each entry of each task update with probability p,
rescale the survivors by ``1 / (1 − p)``, then add: ``ΔW = λ Σ_t m_t ⊙ ΔW_t / (1 − p)``, ``m_t ~ Bernoulli(1 − p)``.

The rescale keeps every entry's expectation, ``E[m ⊙ ΔW / (1 − p)] = ΔW``. The drops are seeded: every
module draws from its own generator (``seed`` and the module's position), so a merge is reproducible.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from taskgraph.merge.method import ExactMerge
from taskgraph.merge.params import AUTO, DROP_GRID, Drop, DropGrid, LambdaParams
from taskgraph.registry import MERGES


def drop_mask(shape: torch.Size, p: float, generator: torch.Generator) -> Tensor:
    """A keep-mask: each entry is kept (True) with probability ``1 − p``, drawn on the CPU from ``generator``."""
    return torch.rand(shape, generator=generator) >= p


def drop_and_rescale(deltas: Tensor, p: float, generator: torch.Generator) -> Tensor:
    """DARE's step: ``m_t ⊙ ΔW_t / (1 − p)`` for every task.

    Shapes:
        - **deltas:** ``[T, ...]``; **output:** ``[T, ...]``.
    """
    if p == 0:
        return deltas
    keep = drop_mask(deltas.shape, p, generator).to(deltas.device)  # [T, ...]
    return deltas * keep / (1.0 - p)


def dare(deltas: Tensor, p: float, lam: float, generator: torch.Generator) -> Tensor:
    """``λ Σ_t m_t ⊙ ΔW_t / (1 − p)``.

    Shapes:
        - **deltas:** ``[T, ...]``; **output:** ``[...]``.
    """
    return lam * drop_and_rescale(deltas, p, generator).sum(0)


class DareParams(LambdaParams):
    """``lambda`` and ``p`` (drop probability), each a number or ``auto``; ``seed`` seeds the drops."""

    p: Drop = AUTO
    p_grid: DropGrid = DROP_GRID
    seed: int = 0

    def draw_seed(self) -> int:
        return self.seed


@MERGES.register("dare", params=DareParams)
class Dare(ExactMerge):
    """DARE on the exact updates: drop with p, rescale, sum, scale by λ."""

    hyper = ("lambda", "p")
    description = "drop with p, rescale by 1/(1-p), λ · sum"

    def combine(self, deltas: Tensor, values: Mapping[str, float], generator: torch.Generator) -> Tensor:
        return dare(deltas, values["p"], values["lambda"], generator)
