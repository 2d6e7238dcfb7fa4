"""What the adapters cost at inference: the active-adapter fraction and adapter FLOPs per token.

- **Active-adapter fraction** of a task: the mean of its gates ``g[t, :]`` over the L adapted layers
  (a soft gate counts by its value; a hard gate is 0 or 1, so this is the share of open layers).
- **Adapter FLOPs per token** of a task: ``Σ_{l open} 2·r_l·(d_in,l + d_out,l)``, the multiply-adds
  (×2) of the low-rank product ``x·A (d_in·r)`` then ``·B (r·d_out)`` at every layer whose gate is
  above 0. A layer of H heads costs the same (H blocks of ``d/H``). Not counted: mixing the skill
  inventory into ``A, B`` (once per task and batch, not per token), the gate scaling and the add
  into the base output. A linearized (L-LoRA) layer runs a rank-``2r`` product, so its rank is 2r.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from taskgraph.precision import at_least_fp32


@dataclass(frozen=True)
class LayerShape:
    """One adapted layer as the cost model sees it: input / output features and the effective rank."""

    d_in: int
    d_out: int
    rank: int

    @property
    def flops_per_token(self) -> int:
        """``2·r·(d_in + d_out)``: the low-rank product of one token."""
        return 2 * self.rank * (self.d_in + self.d_out)


def layer_shapes(adapted: Sequence[tuple[str, nn.Module]]) -> list[LayerShape]:
    """The :class:`LayerShape` of every adapted layer (``model.adapted``, in layer order)."""
    shapes = []
    for _, layer in adapted:
        factor = 2 if getattr(layer, "linearized", False) else 1
        shapes.append(LayerShape(int(layer.in_features), int(layer.out_features), factor * int(layer.rank)))
    return shapes


def active_adapter_fraction(gates: Tensor) -> Tensor:
    """``[T, L] -> [T]``: the mean gate of every task (0 for no layers)."""
    if gates.shape[-1] == 0:
        return torch.zeros(gates.shape[0], dtype=torch.float32)
    return at_least_fp32(gates).mean(dim=-1)  # [T]


def adapter_flops_per_token(gates: Tensor, shapes: Sequence[LayerShape]) -> Tensor:
    """``[T, L] -> [T]`` float64: ``Σ_l [g[t, l] > 0] · 2·r_l·(d_in,l + d_out,l)`` (see the module docstring).

    Raises:
        ValueError: ``gates`` has a different number of layers than ``shapes``.
    """
    if gates.shape[-1] != len(shapes):
        raise ValueError(f"gates cover {gates.shape[-1]} layers but {len(shapes)} layer shapes were given")
    cost = torch.tensor([s.flops_per_token for s in shapes], dtype=torch.float64)  # [L]
    return ((gates > 0).to(torch.float64) * cost).sum(dim=-1)  # [T]
