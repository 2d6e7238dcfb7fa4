"""What a trained model learned, as plain tensors and records: the inference routing of every task, how spread
its mixtures are, and its task–task relations. Evaluation, TensorBoard and the report stage all read these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import torch
from torch import Tensor

from taskgraph.errors import ModelError
from taskgraph.model.modes import inference_mode_of
from taskgraph.routing.base import Routing

if TYPE_CHECKING:
    from taskgraph.model.taskgraph_model import TaskGraphModel


@runtime_checkable
class LearnsRelations(Protocol):
    """A router that learns task–task relation weights (the graph router) exposes them this way.

    ``relation_weights()`` returns ``index [2, E]`` (long task ids) and ``weight [E]`` in [0, 1]: the
    relation weight of every candidate edge. An edge may be given in one or both directions (both are
    averaged); self-loops are ignored.
    """

    def relation_weights(self) -> tuple[Tensor, Tensor]: ...


@dataclass(frozen=True)
class Relation:
    """One task–task relation of a trained model.

    Args:
        a, b: the two task names (``a`` first in task order).
        weight: the relation weight in [0, 1] (learned, or declared for static routers).
        declared: whether the spec declared this pair.
        declared_weight: the declared value, or None when not declared.
    """

    a: str
    b: str
    weight: float
    declared: bool
    declared_weight: float | None = None


@torch.no_grad()
def learned_routing(model: TaskGraphModel) -> Routing:
    """The inference routing of every task, on the CPU in float32: gates ``[T, L]``, weights ``[T, L, H, K]``.

    Raises:
        ModelError: the router gives a non-finite gate or weight (naming the task and layer).
    """
    tasks = torch.arange(len(model.task_names), device=model.device)  # [T]
    with inference_mode_of(model.router):
        routing = model.router(tasks)
    gates = routing.gates.detach().to("cpu", torch.float32)  # [T, L]
    weights = routing.weights.detach().to("cpu", torch.float32)  # [T, L, H, K]
    for name, tensor in (("gate", gates), ("weight", weights)):
        bad = (~torch.isfinite(tensor)).nonzero()
        if len(bad):
            t, layer = int(bad[0, 0]), int(bad[0, 1])
            raise ModelError(
                f"the router gives a non-finite {name} for task {model.task_names[t]!r} at adapted "
                f"layer {layer} ({model.adapted_names[layer]}); the model is broken"
            )
    return Routing(gates, weights)


def routing_entropy(weights: Tensor) -> Tensor:
    """Mean normalised entropy of each task's mixtures: ``[T, L, H, K] -> [T]`` in [0, 1].

    ``H(w) = −Σ_k w_k log w_k / log K`` (``0 log 0 = 0``), averaged over layers and heads; 0 when
    every mixture is one skill, 1 when every mixture is uniform; 0 for K = 1.
    """
    skills = weights.shape[-1]
    if skills == 1:
        return torch.zeros(weights.shape[0], dtype=weights.dtype)
    w = weights.clamp_min(0.0)  # [T, L, H, K]
    plogp = torch.where(w > 0, w * torch.log(w.clamp_min(torch.finfo(w.dtype).tiny)), torch.zeros_like(w))
    entropy = -plogp.sum(dim=-1) / math.log(skills)  # [T, L, H]
    return entropy.mean(dim=(1, 2)).clamp(0.0, 1.0)  # [T]


def learned_relations(model: TaskGraphModel) -> list[Relation]:
    """The model's relation weights: learned ones (:class:`LearnsRelations`) or, else, the declared ones."""
    names = model.task_names
    declared = {frozenset((a, b)): float(w) for a, b, w in model.spec.relations.declared}
    if not isinstance(model.router, LearnsRelations):
        return [Relation(*_ordered(names, a, b), float(w), True, float(w)) for a, b, w in model.spec.relations.declared]
    with torch.no_grad():
        index, weight = model.router.relation_weights()
    index = index.detach().to("cpu", torch.long)  # [2, E]
    weight = weight.detach().to("cpu", torch.float64).reshape(-1)  # [E]
    if index.dim() != 2 or index.shape[0] != 2 or index.shape[1] != weight.shape[0]:
        raise ModelError(
            f"{type(model.router).__name__}.relation_weights() must give index [2, E] and weight [E]; "
            f"got {tuple(index.shape)} and {tuple(weight.shape)}"
        )
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= len(names)):
        raise ModelError(f"{type(model.router).__name__}.relation_weights(): task ids outside 0..{len(names) - 1}")
    pairs: dict[tuple[int, int], list[float]] = {}
    for (i, j), w in zip(index.t().tolist(), weight.tolist(), strict=True):
        if i == j:
            continue
        if not math.isfinite(w) or not -1e-6 <= w <= 1.0 + 1e-6:
            raise ModelError(
                f"{type(model.router).__name__}.relation_weights(): the relation {names[i]!r}–"
                f"{names[j]!r} has weight {w!r}; relation weights are finite and in [0, 1]"
            )
        pairs.setdefault((min(i, j), max(i, j)), []).append(min(max(w, 0.0), 1.0))
    out = []
    for (i, j), values in sorted(pairs.items()):
        prior = declared.get(frozenset((names[i], names[j])))
        out.append(Relation(names[i], names[j], sum(values) / len(values), prior is not None, prior))
    return out


def _ordered(names: list[str], a: str, b: str) -> tuple[str, str]:
    return (a, b) if names.index(a) <= names.index(b) else (b, a)
