"""TIES-Merging (Yadav et al., 2023; docs/methods.md, "TIES"): trim, elect sign, disjoint mean.

On the exact task updates ``ΔW_t`` of one module (``[T, d_out, d_in]``):

1. **trim** — keep each task's ``k = round(density · n)`` entries of largest magnitude, zero the rest;
2. **elect** — per entry, the sign of the summed trimmed values, ``γ = sign(Σ_t ΔŴ_t)``;
3. **disjoint mean** — per entry, the mean over the tasks whose trimmed value is non-zero and has sign
   ``γ`` (0 where none has), scaled by λ.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from taskgraph.merge.method import ExactMerge
from taskgraph.merge.params import AUTO, DENSITY_GRID, LambdaParams, Share, ShareGrid
from taskgraph.registry import MERGES


def trim_magnitude(deltas: Tensor, density: float) -> Tensor:
    """Keep each task's top ``round(density · n)`` entries by magnitude (at least one), zero the rest.

    Shapes:
        - **deltas:** ``[T, ...]``; **output:** ``[T, ...]``.
    """
    flat = deltas.reshape(deltas.shape[0], -1)  # [T, n]
    keep = max(1, round(density * flat.shape[1]))
    top = flat.abs().topk(keep, dim=1).indices  # [T, k]
    mask = torch.zeros_like(flat, dtype=torch.bool).scatter_(1, top, True)  # [T, n]
    return (flat * mask).reshape(deltas.shape)


def elect_sign(values: Tensor) -> Tensor:
    """``γ = sign(Σ_t values_t)`` per entry (0 where the sum is 0).

    Shapes:
        - **values:** ``[T, ...]``; **output:** ``[...]``.
    """
    return values.sum(0).sign()


def disjoint_mean(values: Tensor, sign: Tensor) -> Tensor:
    """Per entry, the mean of the non-zero values that agree with ``sign`` (0 where none does).

    Shapes:
        - **values:** ``[T, ...]``; **sign:** ``[...]``; **output:** ``[...]``.
    """
    agree = (values.sign() == sign) & (values != 0)  # [T, ...]
    count = agree.sum(0)  # [...]
    total = (values * agree).sum(0)  # [...]
    return torch.where(count > 0, total / count.clamp(min=1), torch.zeros_like(total))


def ties(deltas: Tensor, density: float, lam: float) -> Tensor:
    """TIES: ``λ · disjoint_mean(trim(ΔW), elect(trim(ΔW)))``.

    Shapes:
        - **deltas:** ``[T, ...]``; **output:** ``[...]``.
    """
    trimmed = trim_magnitude(deltas, density)  # [T, ...]
    return lam * disjoint_mean(trimmed, elect_sign(trimmed))


class TiesParams(LambdaParams):
    """``lambda`` (scale of the merged update) and ``density`` (share of each task's entries kept), each a
    number or ``auto`` (chosen on validation from ``lambda_grid`` × ``density_grid``)."""

    density: Share = AUTO
    density_grid: ShareGrid = DENSITY_GRID


@MERGES.register("ties", params=TiesParams)
class Ties(ExactMerge):
    """TIES on the exact updates (trim / elect sign / disjoint mean)."""

    hyper = ("lambda", "density")
    description = "trim to density, elect sign, disjoint mean"

    def combine(self, deltas: Tensor, values: Mapping[str, float], generator: torch.Generator) -> Tensor:
        return ties(deltas, values["density"], values["lambda"])
