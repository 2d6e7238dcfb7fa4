"""The learned structure of a run scored against its ground truth: the ``allocation``, ``relations`` and
``gradient_alignment`` sections of :func:`~taskgraph.eval.evaluate_run`'s result.

- ``allocation`` (planted truth only): :func:`~taskgraph.metrics.allocation_precision` of the
  inference routing weights ``[T, L, H, K]`` (gates are not part of it) beside random routing.
- ``relations``: pair AUROC against the truth, over the unordered task pairs the spec did not
  declare, of four ``[T, T]`` scores: the **learned** R (routers with ``relation_weights()``; a
  pair that is not a candidate edge scores 0), the **routing cosine**
  (:func:`~taskgraph.metrics.routing_cosine` of gate-scaled weights), the **gradient cosine** (the
  gradient-alignment matrix) and a **random** R (mean of 20 seeded draws). Also the number of
  pairs scored, how many are related, and every learned relation (highest weight first).
- ``gradient_alignment``: the ``[T, T]`` gradient cosines and their mean over related and over
  unrelated pairs (all pairs, declared ones included; None without truth), and over all pairs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import Tensor

from taskgraph.eval.ground_truth import GroundTruth
from taskgraph.metrics import allocation_precision, pair_auroc, pair_counts, pair_means, random_pair_auroc
from taskgraph.model import TaskGraphModel
from taskgraph.model.learned import LearnsRelations, learned_relations
from taskgraph.routing.base import Routing


def learned_relation_matrix(model: TaskGraphModel) -> tuple[np.ndarray, list[dict[str, Any]]] | None:
    """The router's learned R as a dense symmetric ``[T, T]`` (0 off the candidate edges and on the
    diagonal) and the list of its relations ``{"a", "b", "weight", "declared"}``, highest weight
    first; None for a router that learns no relations."""
    if not isinstance(model.router, LearnsRelations):
        return None
    ids = {name: i for i, name in enumerate(model.task_names)}
    matrix = np.zeros((len(ids), len(ids)))  # [T, T]
    listing = []
    for rel in learned_relations(model):
        i, j = ids[rel.a], ids[rel.b]
        matrix[i, j] = matrix[j, i] = rel.weight
        listing.append({"a": rel.a, "b": rel.b, "weight": rel.weight, "declared": rel.declared})
    listing.sort(key=lambda r: (-r["weight"], r["a"], r["b"]))
    return matrix, listing


def allocation_section(routing: Routing, truth: GroundTruth | None) -> dict[str, Any] | None:
    """``{"precision", "random", "per_layer_head"}`` against a planted truth (all None when K < S); else None."""
    if truth is None or truth.incidence is None:
        return None
    result = allocation_precision(routing.weights, truth.incidence)
    if result is None:
        return {"precision": None, "random": None, "per_layer_head": None}
    return {"precision": result.precision, "random": result.random, "per_layer_head": result.per_layer_head}


def relations_section(
    truth: GroundTruth | None,
    declared: np.ndarray,
    learned: tuple[np.ndarray, list[dict[str, Any]]] | None,
    routing_cos: Tensor,
    gradient_cos: Tensor | None,
) -> dict[str, Any]:
    """AUROCs of the learned R, routing cosine, gradient cosine and random R (None without truth); counts."""
    size = declared.shape[0]
    related = truth.related if truth is not None else np.zeros((size, size), dtype=bool)
    pairs, positives = pair_counts(related, declared)

    def score(matrix: np.ndarray | Tensor | None) -> float | None:
        return None if truth is None or matrix is None else pair_auroc(matrix, related, declared)

    auroc = {
        "learned": score(learned[0] if learned is not None else None),
        "routing_cosine": score(routing_cos),
        "gradient_cosine": score(gradient_cos),
        "random": None if truth is None else random_pair_auroc(related, declared),
    }
    return {
        "auroc": auroc,
        "pairs": pairs,
        "positives": positives if truth is not None else 0,
        "learned": learned[1] if learned is not None else None,
    }


def alignment_section(names: list[str], gradient_cos: Tensor, truth: GroundTruth | None) -> dict[str, Any]:
    """``{"tasks", "matrix", "mean_related", "mean_unrelated", "mean"}`` of the gradient cosines ``[T, T]``.

    ``mean`` is over every pair ``i < j`` (None for one task); the other two need a truth.
    """
    size = len(names)
    upper = np.triu(np.ones((size, size), dtype=bool), k=1)  # [T, T]
    cos = gradient_cos.detach().double().cpu().numpy()  # [T, T]
    both = (cos + cos.T) / 2
    mean = float(both[upper].mean()) if upper.any() else None
    related, unrelated = (None, None) if truth is None else pair_means(cos, truth.related)
    return {
        "tasks": list(names),
        "matrix": cos.tolist(),
        "mean_related": related,
        "mean_unrelated": unrelated,
        "mean": mean,
    }
