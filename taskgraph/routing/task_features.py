r"""Task node features from side information: what is known about a task instead of a free vector per task.

The graph router's task nodes read ``x_t = P s_t + f_t`` when ``router.features`` names a side feature
(:class:`~taskgraph.routing.graph.GraphRouter`):

* ``s_t`` — the task's *side features*, blocks concatenated in :data:`SIDE_KINDS` order:

  - ``description``: its description embedded by the frozen base (mean-pooled last hidden state;
    :mod:`taskgraph.model.task_features` computes it), ``[D]``;
  - ``examples``: the mean of the same embedding over up to ``router.examples`` of its unlabeled inputs, ``[D]``;
  - ``relations``: the declared relation matrix's spectral embedding (:func:`spectral_embedding`), ``[r]``;

  each block *standardised* over the trained tasks (:func:`standardize_blocks`: their mean removed — a feature
  every task shares says nothing about which task it is — and scaled to unit mean row norm), so no block
  dominates by its units;
* ``P`` — a learned projection ``[d, F]``;
* ``f_t`` — ``free``: a per-task residual, zero at the start and L2-penalised (``router.free_l2``), so a seen task
  can still specialise; a task attached after training (:mod:`taskgraph.model.attach`) has ``f_t = 0`` and is routed
  from its side features alone.

Relations can also be *computed* from the features: :func:`nearest_relations` gives a new task the k trained tasks
whose side features are closest (cosine), weighted by that cosine.

Everything here is a pure function of tensors; the router holds the buffers and the projection.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

FEATURE_KINDS = ("free", "description", "examples", "relations")
SIDE_KINDS = ("description", "examples", "relations")  # the side blocks, in the order they are concatenated
EPS = 1e-8


def side_kinds(features: Sequence[str]) -> list[str]:
    """The side blocks ``features`` asks for, in :data:`SIDE_KINDS` order (``free`` is not one)."""
    return [kind for kind in SIDE_KINDS if kind in features]


def block_sizes(features: Sequence[str], width: int, relation_dims: int) -> list[int]:
    """Each side block's size: ``width`` (the base's hidden size) for description and examples, ``relation_dims``
    for relations."""
    return [relation_dims if kind == "relations" else width for kind in side_kinds(features)]


def standardize_blocks(side: Tensor, trained: int, sizes: Sequence[int]) -> Tensor:
    """``side [N, F]`` with each block (columns ``sizes``) centred on the mean of the first ``trained`` rows and
    divided by those rows' mean centred norm; ``[N, F]``. A block whose trained rows are all alike becomes zero."""
    out = []
    for block in side.split(list(sizes), dim=1):  # [N, F_b]
        centred = block - block[:trained].mean(0, keepdim=True)  # [N, F_b]
        scale = centred[:trained].norm(dim=1).mean().clamp_min(EPS)  # []
        out.append(centred / scale)
    return torch.cat(out, dim=1) if out else side  # [N, F]


def spectral_embedding(weights: Tensor, dims: int) -> Tensor:
    r"""The top eigenvectors of the symmetric normalised relation matrix, scaled by their eigenvalues: ``[T, dims]``.

    .. math:: \tilde W = D^{-1/2} W D^{-1/2},\qquad \tilde W = U \Lambda U^\top,\qquad
              e_t = (\lambda_1 u_{1t}, \dots, \lambda_r u_{rt})

    ``weights [T, T]`` is symmetric and non-negative (the declared weights, 0 where undeclared); ``D`` its row
    sums (a task with none gets a zero row); a negative eigenvalue's column is zero. The eigenvectors are those of the ``dims`` largest eigenvalues, each
    with the sign that makes its largest entry positive (so the embedding is the same on every machine); columns
    past ``T`` are zero.
    """
    t = weights.shape[0]
    w = weights.double()
    degree = w.sum(1)  # [T]
    inv = torch.where(degree > 0, degree.clamp_min(EPS).rsqrt(), torch.zeros_like(degree))  # [T]
    normalised = inv[:, None] * w * inv[None, :]  # [T, T]
    values, vectors = torch.linalg.eigh(normalised)  # ascending: [T], [T, T]
    k = min(dims, t)
    values, vectors = values.flip(0)[:k], vectors.flip(1)[:, :k]  # [k], [T, k]
    largest = vectors.gather(0, vectors.abs().argmax(0, keepdim=True))  # [1, k]
    vectors = vectors * torch.where(largest < 0, -1.0, 1.0)  # [T, k]
    out = vectors * values.clamp_min(0)[None]  # [T, k]: a negative eigenvalue's direction is not a community
    return F.pad(out, (0, dims - k)).to(weights.dtype)  # [T, dims]


def extend_spectral(embedding: Tensor, relate: dict[int, float]) -> Tensor:
    """A new task's spectral row from its relations ``{trained id: weight}``: the weighted mean of its neighbours'
    rows of ``embedding [T, r]`` (the Nyström extension up to each eigenvalue's scale); ``[r]``."""
    ids = torch.tensor(list(relate), dtype=torch.long, device=embedding.device)  # [n]
    w = torch.tensor(list(relate.values()), dtype=embedding.dtype, device=embedding.device)  # [n]
    return (w[:, None] * embedding.index_select(0, ids)).sum(0) / w.sum().clamp_min(EPS)  # [r]


def nearest_relations(features: Tensor, row: Tensor, k: int) -> dict[int, float]:
    """The ``k`` rows of ``features [T, F]`` closest to ``row [F]`` by cosine, ``{id: cosine}`` for those with a
    positive cosine (a relation weight lies in (0, 1]); empty when none is."""
    cos = F.cosine_similarity(features, row[None], dim=1)  # [T]
    top = cos.topk(min(k, cos.shape[0]))
    return {int(i): min(1.0, float(c)) for c, i in zip(top.values, top.indices) if c > 0}
