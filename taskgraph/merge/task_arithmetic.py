"""Task arithmetic (Ilharco et al., 2023; docs/methods.md, "Task arithmetic"): ``ΔW = λ Σ_t ΔW_t``.

On exact LoRA updates the sum is itself low-rank: ``λ Σ_t B_t A_t = [λB_1 | … | λB_T] · [A_1; …; A_T]``,
so the merge is exact at rank ≤ ``Σ_t r_t`` (re-factored at its own rank through the factors' QR, never a dense
SVD; truncated when ``rank`` is given).
For L-LoRA task vectors (``B₀ = 0``: ``ΔW_t = s · B_t A₀``, linear in the trained ``B_t``) it equals
task arithmetic in parameter space, ``φ = φ₀ + λ Σ_t τ_t`` with ``τ_t = φ_t − φ₀``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from taskgraph.merge.lowrank import LowRank, concat, truncate
from taskgraph.merge.method import ExactMerge
from taskgraph.merge.params import LambdaParams
from taskgraph.registry import MERGES


def task_arithmetic(deltas: Tensor, lam: float) -> Tensor:
    """``λ Σ_t ΔW_t``.

    Shapes:
        - **deltas:** ``[T, ...]`` task updates; **output:** ``[...]``.
    """
    return lam * deltas.sum(0)


class TaskArithmeticParams(LambdaParams):
    """``lambda``: the scale λ of the summed update (``auto``: chosen on validation from ``lambda_grid``)."""


@MERGES.register("task-arithmetic", params=TaskArithmeticParams)
class TaskArithmetic(ExactMerge):
    """``ΔW = λ Σ_t ΔW_t`` (exact at rank Σ r_t)."""

    hyper = ("lambda",)
    description = "λ · sum of the task updates"

    def combine(self, deltas: Tensor, values: Mapping[str, float], generator: torch.Generator) -> Tensor:
        return task_arithmetic(deltas, values["lambda"])

    def merge(
        self, updates: Sequence[LowRank], values: Mapping[str, float], *, rank: int | None, generator: torch.Generator
    ) -> LowRank:
        merged = concat(list(updates), [values["lambda"]] * len(updates))  # exact, rank Σ r_t
        return truncate(merged, rank)  # rank None: exact, at the sum's own rank
