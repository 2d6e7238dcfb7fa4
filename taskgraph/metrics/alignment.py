"""Task × task cosine matrices: gradient alignment and routing similarity.

- **Gradient alignment** (docs/methods.md §5): every task's gradient of its loss with respect to the
  adapter parameters (:func:`task_gradients`: the mean over a few batches of the task's data), then
  the cosine between tasks (:func:`cosine_matrix`). Positive: training one task also moves the
  other along its descent direction; negative: the tasks conflict. The same ``[T, T]`` matrix is the
  *gradient-cosine* relation baseline that a learned R is compared with.
- **Routing cosine** (:func:`routing_cosine`): the cosine between two tasks' flattened routing — the
  relation proxy of routers that learn no R. A layer's mixture weights are multiplied by the task's
  gate there, so a closed layer counts as no routing.

Conventions: cosines are float64; a zero vector (no gradient, all gates closed) has cosine 0 with
every task, itself included; every other diagonal entry is exactly 1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import torch
from torch import Tensor

BatchT = TypeVar("BatchT")


def cosine_matrix(vectors: Tensor) -> Tensor:
    """``[T, P] -> [T, T]`` float64 cosines between rows (zero rows: 0; other diagonal entries: 1)."""
    v = vectors.detach().reshape(vectors.shape[0], -1).double()  # [T, P]
    norm = v.norm(dim=1)  # [T]
    unit = v / norm.clamp_min(torch.finfo(torch.float64).tiny)[:, None]  # [T, P], zero rows stay 0
    cos = (unit @ unit.T).clamp(-1.0, 1.0)  # [T, T]
    cos.diagonal().copy_((norm > 0).double())
    return cos


def routing_cosine(weights: Tensor, gates: Tensor | None = None) -> Tensor:
    """Cosine between tasks' routing: weights ``[T, L, H, K]`` (times gates ``[T, L]`` if given) → ``[T, T]``."""
    w = weights.detach().double()  # [T, L, H, K]
    if gates is not None:
        w = w * gates.detach().double()[:, :, None, None]  # [T, L, H, K]
    return cosine_matrix(w.reshape(w.shape[0], -1))


def flat_gradient(loss: Tensor, params: Sequence[Tensor]) -> Tensor:
    """``[P]``: d loss / d params, flattened and concatenated (zeros for a parameter the loss does not reach)."""
    grads = torch.autograd.grad(loss, list(params), allow_unused=True)
    return torch.cat(
        [(torch.zeros_like(p) if g is None else g).detach().reshape(-1).float() for p, g in zip(params, grads)]
    )  # [P]


def task_gradients(
    loss_of: Callable[[BatchT], Tensor], params: Sequence[Tensor], batches: Sequence[Sequence[BatchT]]
) -> Tensor:
    """``[T, P]``: per task, the mean over its batches of the gradient of ``loss_of(batch)`` w.r.t. ``params``.

    Args:
        loss_of: the scalar loss of one batch (the caller sets the model's mode, e.g. eval for determinism).
        params: the parameters to differentiate (e.g. ``model.adapter_parameters()``); their ``.grad`` is untouched.
        batches: ``batches[t]``: the batches of task t (at least one each).

    Raises:
        ValueError: a task has no batch, or no parameter is given.
    """
    if not params:
        raise ValueError("no parameters to differentiate")
    rows = []
    with torch.enable_grad():
        for t, task_batches in enumerate(batches):
            if not task_batches:
                raise ValueError(f"task {t} has no batch to take a gradient on")
            total = sum(flat_gradient(loss_of(b), params) for b in task_batches)  # [P]
            rows.append(total / len(task_batches))
    return torch.stack(rows)  # [T, P]


def gradient_cosine(
    loss_of: Callable[[BatchT], Tensor], params: Sequence[Tensor], batches: Sequence[Sequence[BatchT]]
) -> Tensor:
    """``[T, T]``: the cosine between the tasks' mean gradients (:func:`task_gradients`)."""
    return cosine_matrix(task_gradients(loss_of, params, batches))
