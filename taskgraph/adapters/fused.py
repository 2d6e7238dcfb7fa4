"""The fused routed path: every adapted layer's per-example factors for a batch, computed once per step.

The per-layer path (:meth:`RoutedLoRALinear.example_factors` with no factors on the batch) mixes each
layer's inventory in that layer's forward: a few small kernels per layer for the mixing, the gate and
the gather. Here the layers are grouped by inventory shape (all of them, usually: ``query`` and
``value`` of one model have the same shape) and, per group of G layers,

    A = stack_l A_l                                   # [G, H, K, d_in/H, r]     one op
    a = mix_stacked_a(w[:, group], A)                 # [G, U, d_in, r]          one contraction
    b = mix_stacked_b(w[:, group], B) · s · g         # [G, U, r, d_out]         gate and scaling folded
    a_e, b_e = gather_stacked(a, onehot), ...(b)      # [G, B, d_in, r], ...     one batched matmul each
    a_e.unbind(0)                                     # G views, no kernel

so the layers' forwards are left with two batched matmuls each (:func:`~taskgraph.adapters.mixing.example_delta`)
— what PEFT's LoRA layer does with its ``lora_A`` and ``lora_B`` — and the kernels spent on routing
no longer grow with the number of adapted layers. One-hot routing (``private``) index-selects the
stacked skills instead of mixing them; L-LoRA stacks the frozen ``A0`` / ``B0`` too. The result equals
the per-layer path (tests: logits, loss and gradients, every router).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from taskgraph.adapters.mixing import (
    gather_stacked,
    linearized_factors,
    mix_stacked_a,
    mix_stacked_b,
    select_stacked_a,
    select_stacked_b,
)
from taskgraph.adapters.routed_lora import RoutedLoRALinear
from taskgraph.routing.base import Routing

Factors = tuple[Tensor, Tensor]  # ([B, d_in, r'], [B, r', d_out]) of one layer, gate and scaling in the second


@dataclass(frozen=True)
class LayerGroup:
    """Adapted layers whose inventories have one shape, stacked together.

    Args:
        layers: the layers, by routing column.
        columns: their routing columns l, ascending.
        start: the first column when the columns are consecutive (the routing is then sliced, not
            gathered), else None.
    """

    layers: tuple[RoutedLoRALinear, ...]
    columns: tuple[int, ...]
    start: int | None

    def routing_columns(self, t: Tensor) -> Tensor:
        """``t [U, L, ...]`` → ``[U, G, ...]``: this group's columns (a view when they are consecutive)."""
        if self.start is not None:
            return t if len(self.columns) == t.shape[1] else t.narrow(1, self.start, len(self.columns))
        return t.index_select(1, torch.tensor(self.columns, device=t.device))


def group_layers(layers: Sequence[RoutedLoRALinear]) -> list[LayerGroup]:
    """Group ``layers`` by everything their stacked math must share: inventory shapes, L-LoRA, scaling, dtype, device."""
    groups: dict[tuple[object, ...], list[RoutedLoRALinear]] = {}
    for layer in sorted(layers, key=lambda m: m.index):
        key = (
            tuple(layer.A.shape),
            tuple(layer.B.shape),
            layer.linearized,
            layer.scaling,
            layer.A.dtype,
            layer.A.device,
        )
        groups.setdefault(key, []).append(layer)
    out = []
    for members in groups.values():
        columns = tuple(m.index for m in members)
        consecutive = columns == tuple(range(columns[0], columns[0] + len(columns)))
        out.append(LayerGroup(tuple(members), columns, columns[0] if consecutive else None))
    return out


class FusedFactors:
    """Computes every adapted layer's per-example factors of a batch at once (see the module docstring).

    Args:
        layers: the model's routed layers (their ``index`` is their routing column).

    The grouping is cached and redone when an inventory changes shape (a skill appended).
    """

    def __init__(self, layers: Sequence[RoutedLoRALinear]) -> None:
        self.layers = list(layers)
        self._key: tuple[object, ...] | None = None
        self._groups: list[LayerGroup] = []

    def groups(self) -> list[LayerGroup]:
        key = tuple((id(m), tuple(m.A.shape), m.A.device, m.A.dtype) for m in self.layers)
        if key != self._key:
            self._key, self._groups = key, group_layers(self.layers)
        return self._groups

    def __call__(self, routing: Routing, inverse: Tensor) -> list[Factors]:
        """``[(a [B, d_in, r'], b [B, r', d_out])]`` per routing column, for the batch ``(routing, inverse)``."""
        u = routing.weights.shape[0]
        one_hot = inverse[:, None] == torch.arange(u, device=inverse.device)  # [B, U]
        out: list[Factors | None] = [None] * len(self.layers)
        for group in self.groups():
            a, b = stacked_task_factors(group, routing)  # [G, U, d_in, r'], [G, U, r', d_out]
            gates = group.routing_columns(routing.gates)  # [U, G]
            scale = (group.layers[0].scaling * gates).transpose(0, 1).to(b.dtype)  # [G, U]
            b = b * scale[:, :, None, None]  # [G, U, r', d_out]
            per_example = zip(gather_stacked(a, one_hot).unbind(0), gather_stacked(b, one_hot).unbind(0))
            for column, factors in zip(group.columns, per_example):
                out[column] = factors  # ([B, d_in, r'], [B, r', d_out]) views, no kernel
        return out  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"FusedFactors(layers={len(self.layers)}, groups={len(self.groups())})"


def stacked_task_factors(group: LayerGroup, routing: Routing) -> tuple[Tensor, Tensor]:
    """Per-task factors of every layer of ``group``: ``([G, U, d_in, r'], [G, U, r', d_out])``, no gate or scaling.

    Mixed with the group's routing weights, or index-selected under one-hot routing (``choice``); L-LoRA layers
    give the rank-2r linearised factors.
    """
    A = torch.stack([m.A for m in group.layers])  # [G, H, K, d_in/H, r]
    B = torch.stack([m.B for m in group.layers])  # [G, H, K, r, d_out/H]
    choice = None if routing.choice is None else group.routing_columns(routing.choice)  # [U, G, H]
    weights = group.routing_columns(routing.weights)  # [U, G, H, K]
    a, b = _mix(weights, choice, A, B)  # [G, U, d_in, r], [G, U, r, d_out]
    if not group.layers[0].linearized:
        return a, b
    A0 = torch.stack([m.A0 for m in group.layers])  # [G, H, K, d_in/H, r]
    B0 = torch.stack([m.B0 for m in group.layers])  # [G, H, K, r, d_out/H]
    a0, b0 = _mix(weights, choice, A0, B0)
    return linearized_factors(a, b, a0, b0)  # [G, U, d_in, 2r], [G, U, 2r, d_out]


def _mix(weights: Tensor, choice: Tensor | None, A: Tensor, B: Tensor) -> tuple[Tensor, Tensor]:
    if choice is not None:
        return select_stacked_a(choice, A), select_stacked_b(choice, B)
    return mix_stacked_a(weights, A), mix_stacked_b(weights, B)
