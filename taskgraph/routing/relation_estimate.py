r"""The graph router's relation estimate (``router.relation_estimate``; ours): R learns from what the tasks do.

Every ``estimate_every`` (N) training steps a per-task signal ``s_t`` gives each candidate pair a target

.. math::
    C_{ij} = \bigl(1 + \cos(s_i - \bar s,\; s_j - \bar s)\bigr) / 2

(:func:`~taskgraph.routing.relations.signal_similarity`) and the router's regularizer adds
``λ_e · mean_E (R_ij − C_ij)²`` (λ_e = ``estimate_weight``; :func:`~taskgraph.routing.relations.target_pull`):
R is pulled towards the estimate, not only by the smoothness pull. The signals:

* ``routing`` — ``s_t`` = the router's own weights ``w_t [L, H, K]``, flattened.
* ``gradient`` — ``s_t`` = the running sum of ``∂loss/∂w_t`` over every training step so far, centred over the K
  skills of each (layer, head) (the softmax ignores a shift): the direction in which task t's own loss pushes its
  routing, which is what Poly's logits integrate.
  Collected by a gradient hook on the step's weights (:func:`routing_gradient_hook`).
* ``update`` — ``s_t`` = the running sum, over every N-th step, of task t's share of the gradient on the shared
  adapters ``g_t = ∂(Σ_(b ∈ t) ℓ_b / B)/∂θ_adapters``, count-sketched to :data:`UPDATE_SKETCH_DIM` buckets
  (:func:`count_sketch`): task t's own adapter update (the model-based similarity of Ostapenko et al. 2024),
  whose cosine is the first-order lookahead of Fifty et al. 2021 (a step on task i changes task j's loss by
  ``−η g_i·g_j``). The trainer computes the shares (:func:`taskgraph.train.step.task_updates`, one extra backward
  per task of the batch on those steps) and hands them to the router.

Default ``none``: no signal reached its target, and each adds state to a graph checkpoint (the measurements:
docs/graph-prior.md §2, §7, §10).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import Tensor

UPDATE_SKETCH_DIM = 4096  # buckets of the count sketch of a task's adapter update


def signal_size(kind: str, num_layers: int, heads: int, skills: int) -> int | None:
    """Columns of the running per-task signal the router stores for ``kind`` (None: it stores none —
    ``routing`` reads its weights afresh, ``none`` estimates nothing)."""
    return {"gradient": num_layers * heads * skills, "update": UPDATE_SKETCH_DIM}.get(kind)


def is_due(steps: int, every: int) -> bool:
    """Whether the estimate updates R's targets at this training step (every ``every`` steps, step 0 included)."""
    return steps % every == 0


def routing_gradient_hook(signal: Tensor, tasks: Tensor, trained: int) -> Callable[[Tensor], None]:
    """``gradient``: a hook for the step's routing weights ``[U, L, H, K]`` of ``tasks [U]`` that adds each trained
    task's gradient, centred over the skills, to its row of ``signal [T, L·H·K]``."""

    def collect(grad: Tensor) -> None:  # grad: [U, L, H, K]
        keep = tasks < trained  # [U]
        g = (grad - grad.mean(-1, keepdim=True))[keep]  # [U', L, H, K] the softmax ignores a shift
        signal.index_add_(0, tasks[keep], g.detach().reshape(g.shape[0], -1).to(signal))

    return collect


def count_sketch(rows: Tensor, dim: int, seed: int = 0) -> Tensor:
    """Count sketch of ``rows [U, P]`` into ``[U, dim]`` (feature hashing, Weinberger et al. 2009): coordinate
    ``p`` is added, with sign ``σ_p = ±1``, to bucket ``h_p`` — both drawn once from ``seed``, the same for every
    row. Inner products are kept in expectation, ``E[⟨Sx, Sy⟩] = ⟨x, y⟩`` (variance ``O(|x|²|y|²/dim)``), so the
    cosine of two tasks' sketched updates estimates the cosine of the updates without a ``[T, P]`` store.
    """
    bucket, sign = _sketch_plan(rows.shape[1], dim, seed)  # [P], [P]
    out = torch.zeros(rows.shape[0], dim, dtype=rows.dtype, device=rows.device)  # [U, dim]
    return out.index_add_(1, bucket.to(rows.device), rows * sign.to(rows))  # [U, dim]


@functools.lru_cache(maxsize=2)  # one model's adapter size, at most one more
def _sketch_plan(size: int, dim: int, seed: int) -> tuple[Tensor, Tensor]:
    """The buckets ``h_p`` and signs ``σ_p`` of a sketch of ``size`` coordinates, drawn once per (size, dim, seed)."""
    gen = torch.Generator().manual_seed(seed)
    bucket = torch.randint(dim, (size,), generator=gen)  # [P] h_p
    sign = torch.randint(2, (size,), generator=gen) * 2 - 1  # [P] σ_p
    return bucket, sign
