"""Averaging (model soups / Fisher-free averaging; docs/methods.md, "Average"): ``ΔW = (1/T) Σ_t ΔW_t``.

Task arithmetic at ``λ = 1/T``, with nothing to tune: the baseline every merge is compared with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from taskgraph.merge.lowrank import LowRank, concat, truncate
from taskgraph.merge.method import ExactMerge
from taskgraph.merge.params import MergeParams
from taskgraph.registry import MERGES


def average(deltas: Tensor) -> Tensor:
    """``(1/T) Σ_t ΔW_t``.

    Shapes:
        - **deltas:** ``[T, ...]``; **output:** ``[...]``.
    """
    return deltas.mean(0)


class AverageParams(MergeParams):
    """No hyper-parameter beyond ``rank``."""


@MERGES.register("average", params=AverageParams)
class Average(ExactMerge):
    """``ΔW = mean_t ΔW_t`` (exact at rank Σ r_t)."""

    description = "mean of the task updates"

    def combine(self, deltas: Tensor, values: Mapping[str, float], generator: torch.Generator) -> Tensor:
        return average(deltas)

    def merge(
        self, updates: Sequence[LowRank], values: Mapping[str, float], *, rank: int | None, generator: torch.Generator
    ) -> LowRank:
        merged = concat(list(updates), [1.0 / len(updates)] * len(updates))
        return truncate(merged, rank)  # rank None: exact, at the sum's own rank
