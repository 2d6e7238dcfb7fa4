"""Metrics as pure functions: classification quality (accuracy, macro-F1) and adapter compute."""

from taskgraph.metrics.classification import ClassScores, accuracy, confusion_matrix, macro_f1, per_class_scores
from taskgraph.metrics.compute import LayerShape, active_adapter_fraction, adapter_flops_per_token, layer_shapes

__all__ = [
    "ClassScores", "LayerShape", "accuracy", "active_adapter_fraction", "adapter_flops_per_token",
    "confusion_matrix", "layer_shapes", "macro_f1", "per_class_scores",
]
