r"""The graph router's read-out: per-task routing weights from the GNN's embeddings, and straight-through gates.

For task t, layer l, head h (τ = ``router.temperature``, s = :attr:`GraphRouter.cosine_scale`, default
:data:`COSINE_SCALE`):

.. math::
    w_{t,l,h,:} = \mathrm{softmax}_k\bigl(s \cos(q_h(h_t) - \bar q_h,\; k_h(h_{l,k}) - \bar k_{h,l}) / \tau\bigr),
    \qquad \text{gate}_{t,l} = \mathbb{1}[g_{t,l} \ge \theta] \text{ (forward)}, \quad \nabla g_{t,l} \text{ (backward)}

with ``q̄`` the mean query over the trained tasks and ``k̄_l`` the mean key of layer l's skills
(:func:`routing_weights`). *Centring* makes a task's routing depend on how it differs from the average task (no
skill can win every task through a shared bias); the *cosine* bounds the logits, so τ — not a learned scale — sets
how sharp routing is. The plain bilinear score ``⟨q, k⟩/√d`` tends to send every task to the same one-hot
skill (a shared bias wins); the centred cosine learns the planted two-group problem of
tests/routing/test_graph_router.py.

The gate (:func:`straight_through_gate`) is exactly 0 or 1 in the forward pass and passes the soft gate's gradient
backward; inference and fold use the same rule, so a closed layer is exactly the base layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

COSINE_SCALE = 5.0  # s: routing logits lie in [−s/τ, s/τ]


def routing_weights(
    query: Tensor, query_mean: Tensor, keys: Tensor, temperature: float, scale: float = COSINE_SCALE
) -> Tensor:
    """``softmax_k(s · cos(q − q̄, k_l,k − k̄_l) / τ)``.

    Args:
        query: ``[U, H, d_k]``; query_mean: ``[1, H, d_k]`` (over the trained tasks);
        keys: ``[L, K, H, d_k]``; temperature: τ; scale: s (default: :data:`COSINE_SCALE`).

    Returns:
        ``[U, L, H, K]``, rows summing to 1 (uniform where a centred vector is 0, e.g. K = 1).
    """
    layers, skills, heads, dim = keys.shape
    q = F.normalize(query - query_mean, dim=-1)  # [U, H, d_k]
    k = F.normalize(keys - keys.mean(1, keepdim=True), dim=-1)  # [L, K, H, d_k]
    cos = torch.bmm(k.view(layers * skills, heads, dim).transpose(0, 1), q.permute(1, 2, 0))  # [H, L·K, U]
    logits = scale * cos.view(heads, layers, skills, -1)  # [H, L, K, U]: U innermost, a fast softmax
    return torch.softmax(logits / temperature, dim=2).permute(3, 1, 0, 2)  # [U, L, H, K]


def straight_through_gate(soft: Tensor, threshold: float) -> Tensor:
    """Forward ``1[g ≥ θ]`` exactly (0.0 or 1.0), backward the gradient of ``g``."""
    hard = (soft >= threshold).to(soft.dtype)
    return hard + (soft - soft.detach())  # the bracket is exactly 0 in the forward pass
