"""Metrics as pure functions: classification quality (accuracy, macro-F1), adapter compute, allocation
precision, relation AUROC, task × task gradient / routing cosines, and a figure's mean ± std over seeds."""

from taskgraph.metrics.alignment import cosine_matrix, flat_gradient, gradient_cosine, routing_cosine, task_gradients
from taskgraph.metrics.allocation import (
    AllocationPrecision,
    allocation_precision,
    layer_allocation_precision,
    match_adapters,
    random_allocation_precision,
    top_share,
)
from taskgraph.metrics.classification import ClassScores, accuracy, confusion_matrix, macro_f1, per_class_scores
from taskgraph.metrics.compute import LayerShape, active_adapter_fraction, adapter_flops_per_token, layer_shapes
from taskgraph.metrics.relations import auroc, pair_auroc, pair_counts, pair_index, pair_means, random_pair_auroc
from taskgraph.metrics.spread import finite, mean_std

__all__ = [
    "AllocationPrecision",
    "ClassScores",
    "LayerShape",
    "accuracy",
    "active_adapter_fraction",
    "adapter_flops_per_token",
    "allocation_precision",
    "auroc",
    "confusion_matrix",
    "cosine_matrix",
    "finite",
    "flat_gradient",
    "gradient_cosine",
    "layer_allocation_precision",
    "layer_shapes",
    "macro_f1",
    "match_adapters",
    "mean_std",
    "pair_auroc",
    "pair_counts",
    "pair_index",
    "pair_means",
    "per_class_scores",
    "random_allocation_precision",
    "random_pair_auroc",
    "routing_cosine",
    "task_gradients",
    "top_share",
]
