"""DARE-TIES (docs/methods.md, "DARE-TIES"): DARE's random drop and rescale in place of TIES' magnitude trim,
then TIES' sign election and disjoint mean: ``ΔW = λ · disjoint_mean(D, sign(Σ_t D_t))`` with
``D_t = m_t ⊙ ΔW_t / (1 − p)``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from taskgraph.merge.dare import Dare, DareParams, drop_and_rescale
from taskgraph.merge.ties import disjoint_mean, elect_sign
from taskgraph.registry import MERGES


def dare_ties(deltas: Tensor, p: float, lam: float, generator: torch.Generator) -> Tensor:
    """``λ · disjoint_mean(D, elect_sign(D))`` with ``D`` the dropped and rescaled updates.

    Shapes:
        - **deltas:** ``[T, ...]``; **output:** ``[...]``.
    """
    dropped = drop_and_rescale(deltas, p, generator)  # [T, ...]
    return lam * disjoint_mean(dropped, elect_sign(dropped))


class DareTiesParams(DareParams):
    """As DARE: ``lambda``, ``p`` (numbers or ``auto``) and ``seed``."""


@MERGES.register("dare-ties", params=DareTiesParams)
class DareTies(Dare):
    """DARE drop + rescale, then TIES' sign election and disjoint mean (DARE's parameters)."""

    description = "DARE drop + rescale, then TIES sign election and disjoint mean"

    def combine(self, deltas: Tensor, values: Mapping[str, float], generator: torch.Generator) -> Tensor:
        return dare_ties(deltas, values["p"], values["lambda"], generator)
