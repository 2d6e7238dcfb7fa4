"""Arrow routing (Ostapenko et al., ICML 2024): route every token to the skills whose update it aligns with.

"Towards modular LLMs by building and reusing a library of LoRAs" (PEFT's ``ArrowConfig``,
mttl's ``arrow`` selector). Each skill k of a layer is a LoRA with update ``ΔW_k = B_k A_k``; its **prototype**
``v_k`` is the top right singular vector of ``ΔW_k`` (computed once, no data). A token's input ``x`` is routed by
the sign-free scores ``|⟨x, v_k⟩|``: the ``top_k`` largest are kept and softmax-normalised, the rest are 0, and the
layer adds the weighted sum of the skills' outputs,

.. math::
    y = W x + s \\sum_k w_k(x)\\, B_k A_k x,\\qquad
    w(x) = \\mathrm{softmax}\\big(\\mathrm{top}_k |\\langle x, v_k \\rangle|\\big)

per token and per layer, with no task id and no training. ``s = alpha / r`` is the layer's scaling.

A skill of an MHR layer is its H heads side by side (``A_k = concat_h A[h, k]`` along d_in, ``B_k`` along d_out), as
one-hot routing on k mixes it; a linearized (L-LoRA) skill is its rank-2r expansion. Both come from
:meth:`RoutedLoRALinear.fold <taskgraph.adapters.routed_lora.RoutedLoRALinear.fold>` with one-hot weights.

:func:`arrow_routing` makes every adapted layer of a model route this way inside a ``with`` block, by putting an
:class:`ArrowLoRALinear` in each adapted layer's place in the base model and the layer back on exit;
``routed_lora.py`` is untouched. The model's router still runs (its output is not read), so a forward still takes
task ids; any valid id gives the same output.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from taskgraph.adapters.routed_lora import RoutedLoRALinear
from taskgraph.errors import ModelError

if TYPE_CHECKING:
    from taskgraph.model import TaskGraphModel

TOP_K = 4  # Arrow's default number of skills per token


def arrow_prototypes(A: Tensor, B: Tensor) -> Tensor:
    """The top right singular vector of every skill's update ``ΔW_k = B_k A_k``, without forming ``ΔW_k``.

    With ``A_kᵀ = Q_a R_a`` and ``B_k = Q_b R_b`` (reduced QR), ``ΔW_k = Q_b (R_b R_aᵀ) Q_aᵀ``; the SVD of the small
    core ``R_b R_aᵀ = U S Vᵀ`` gives ``ΔW_k``'s right singular vectors ``Q_a V``. The sign of a singular vector is
    arbitrary: each is returned with its largest-magnitude entry positive (Arrow's scores are sign-free anyway).

    Args:
        A: ``[K, r, d_in]`` the skills' A factors (PEFT's ``lora_A`` orientation).
        B: ``[K, d_out, r]`` the skills' B factors (``lora_B``).

    Returns:
        ``[K, d_in]`` unit prototypes (float32 or float64, as the factors; lower precisions are computed in float32).
    """
    dtype = A.dtype if A.dtype in (torch.float32, torch.float64) else torch.float32
    q_a, r_a = torch.linalg.qr(A.to(dtype).transpose(1, 2))  # [K, d_in, r], [K, r, r]
    q_b, r_b = torch.linalg.qr(B.to(dtype))  # [K, d_out, r], [K, r, r]
    core = r_b @ r_a.transpose(1, 2)  # [K, r, r]
    _, _, vh = torch.linalg.svd(core)  # vh: [K, r, r], rows are right singular vectors of the core
    v = torch.einsum("kdr,kr->kd", q_a, vh[:, 0])  # [K, d_in] the top right singular vector of ΔW_k
    peak = v.gather(1, v.abs().argmax(1, keepdim=True))  # [K, 1]
    return v * torch.where(peak < 0, -1.0, 1.0).to(v)  # [K, d_in] sign fixed: largest entry positive


def arrow_weights(x: Tensor, prototypes: Tensor, top_k: int = TOP_K) -> Tensor:
    """Every token's weights over the K skills: softmax over its ``top_k`` largest ``|⟨x, v_k⟩|``, 0 elsewhere.

    Args:
        x: ``[B, S, d_in]`` (any ``[..., d_in]``) layer inputs.
        prototypes: ``[K, d_in]``.
        top_k: skills kept per token; all K when ``top_k ≥ K``. (default: ``4``)

    Returns:
        ``[B, S, K]`` non-negative rows summing to 1, at most ``top_k`` non-zero.
    """
    if top_k < 1:
        raise ModelError(f"arrow top_k={top_k}: keep at least one skill per token")
    scores = torch.einsum("...d,kd->...k", x, prototypes.to(x.dtype)).abs()  # [B, S, K]
    k = min(top_k, prototypes.shape[0])
    top, idx = scores.topk(k, dim=-1)  # [B, S, k]
    return torch.zeros_like(scores).scatter(-1, idx, torch.softmax(top.float(), dim=-1).to(scores.dtype))  # [B, S, K]


def arrow_delta(x: Tensor, A: Tensor, B: Tensor, weights: Tensor, scaling: float) -> Tensor:
    """The routed LoRA output of every token: ``s · Σ_k w_k · B_k A_k x`` (the skills' outputs mixed, per token).

    Args:
        x: ``[B, S, d_in]`` (any ``[..., d_in]``).
        A: ``[K, r, d_in]``.
        B: ``[K, d_out, r]``.
        weights: ``[B, S, K]`` (as ``x`` without its last dim, plus K).
        scaling: ``s = alpha / r``.

    Returns:
        ``[B, S, d_out]``.
    """
    h = torch.einsum("...d,krd->...kr", x, A.to(x.dtype))  # [B, S, K, r] every skill's low-rank code
    h = h * weights.to(x.dtype)[..., None]  # [B, S, K, r]
    return scaling * torch.einsum("...kr,ker->...e", h, B.to(x.dtype))  # [B, S, d_out]


def skill_factors(layer: RoutedLoRALinear) -> tuple[Tensor, Tensor]:
    """Every skill of ``layer`` as a plain LoRA, ``(A [K, r', d_in], B [K, d_out, r'])``, detached, no scaling.

    Skill k is what one-hot routing on k mixes (all heads side by side; rank 2r for a linearized layer whose B0
    is not zero), read from :meth:`RoutedLoRALinear.fold` with gate 1.
    """
    eye = torch.eye(layer.skills, device=layer.A.device)  # [K, K]
    folds = [layer.fold(eye[k].expand(layer.heads, -1), 1.0) for k in range(layer.skills)]
    return torch.stack([a for a, _ in folds]), torch.stack([b for _, b in folds])  # [K, r', d_in], [K, d_out, r']


class ArrowLoRALinear(nn.Module):
    """An adapted layer routed by Arrow: the layer's base and skills, Arrow's per-token weights.

    Stands in for a :class:`RoutedLoRALinear` inside :func:`arrow_routing`; holds the layer (its parameters are
    not copied) and the skills' factors and prototypes, computed once when built.

    Args:
        layer: the routed layer to route by Arrow.
        top_k: skills kept per token. (default: ``4``)

    Shapes:
        - **input:** ``[B, ..., d_in]``.
        - **output:** ``[B, ..., d_out]``.
        - **buffers:** ``A [K, r', d_in]``, ``B [K, d_out, r']``, ``prototypes [K, d_in]``.
    """

    def __init__(self, layer: RoutedLoRALinear, top_k: int = TOP_K) -> None:
        super().__init__()
        if top_k < 1:
            raise ModelError(f"arrow top_k={top_k}: keep at least one skill per token")
        self.layer, self.top_k = layer, top_k
        a, b = skill_factors(layer)  # [K, r', d_in], [K, d_out, r']
        self.register_buffer("A", a, persistent=False)
        self.register_buffer("B", b, persistent=False)
        self.register_buffer("prototypes", arrow_prototypes(a, b).to(a.dtype), persistent=False)  # [K, d_in]

    def forward(self, x: Tensor) -> Tensor:
        w = arrow_weights(x, self.prototypes, self.top_k)  # [B, ..., K]
        delta = arrow_delta(self.layer.dropout(x), self.A, self.B, w, self.layer.scaling)  # [B, ..., d_out]
        return self.layer.base(x) + delta.to(x.dtype)

    def extra_repr(self) -> str:
        return f"skills={self.A.shape[0]}, rank={self.A.shape[1]}, top_k={self.top_k}, scaling={self.layer.scaling:g}"


@contextmanager
def arrow_routing(model: TaskGraphModel, top_k: int = TOP_K) -> Iterator[list[ArrowLoRALinear]]:
    """Route every adapted layer of ``model`` by Arrow inside the ``with`` block; the router's routing after it.

    Each adapted layer is replaced in the base model by an :class:`ArrowLoRALinear` wrapping it, and put back on exit
    (also on an error). Nothing of the model is changed: not the router, the skills, nor ``model.adapted``.
    The skills are read on entry: changing them inside the block is not seen.

    Args:
        model: a :class:`~taskgraph.model.TaskGraphModel`.
        top_k: skills kept per token. (default: ``4``)

    Yields:
        The :class:`ArrowLoRALinear` of every adapted layer, in layer order.
    """
    arrows = [ArrowLoRALinear(layer, top_k) for _, layer in model.adapted]
    placed: list[tuple[nn.Module, str, RoutedLoRALinear]] = []
    try:
        for (name, layer), arrow in zip(model.adapted, arrows, strict=True):
            parent_name, _, child = name.rpartition(".")
            parent = model.base.get_submodule(parent_name)
            if getattr(parent, child) is not layer:
                raise ModelError(f"module {name!r} of the base is not the model's adapted layer {layer.index}")
            setattr(parent, child, arrow)
            placed.append((parent, child, layer))
        yield arrows
    finally:
        for parent, child, layer in reversed(placed):
            setattr(parent, child, layer)
