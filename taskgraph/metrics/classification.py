"""Classification metrics over predicted and true labels: accuracy, the confusion matrix, macro-F1.

Conventions (macro-F1):

- a class's precision is ``tp / (tp + fp)`` and recall ``tp / (tp + fn)``; a 0/0 is 0, so a class
  that is present but never predicted (or predicted but never present) has F1 = 0;
- a class that is **neither present nor predicted** (``tp + fp + fn = 0``) contributes nothing: it is
  left out of the mean, not counted as 0 or 1 (scikit-learn's ``labels=`` present-only behaviour);
- macro-F1 is the unweighted mean of F1 over the classes that count; 0 when no example is given.

Inputs are 1-D integer tensors or lists of the same length, labels in ``[0, num_classes)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

Labels = Tensor | Sequence[int]


def _as_long(x: Labels) -> Tensor:
    t = torch.as_tensor(x, dtype=torch.long).reshape(-1) if not isinstance(x, Tensor) else x.reshape(-1).long()
    return t.cpu()


def _check(pred: Labels, target: Labels) -> tuple[Tensor, Tensor]:
    p, y = _as_long(pred), _as_long(target)  # [N], [N]
    if p.shape != y.shape:
        raise ValueError(f"predictions and labels differ in length: {p.numel()} vs {y.numel()}")
    return p, y


def accuracy(pred: Labels, target: Labels) -> float:
    """Fraction of positions where ``pred == target``; 0.0 for no examples."""
    p, y = _check(pred, target)
    return float((p == y).sum()) / p.numel() if p.numel() else 0.0


def confusion_matrix(pred: Labels, target: Labels, num_classes: int) -> Tensor:
    """``[C, C]`` long counts: row = true class, column = predicted class.

    Raises:
        ValueError: a label outside ``[0, num_classes)``.
    """
    p, y = _check(pred, target)
    for name, t in (("prediction", p), ("label", y)):
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= num_classes):
            bad = int(t.min()) if int(t.min()) < 0 else int(t.max())
            raise ValueError(f"{name} {bad} is outside [0, {num_classes})")
    flat = y * num_classes + p  # [N]
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)  # [C, C]


@dataclass(frozen=True)
class ClassScores:
    """Per-class counts and scores; ``counted[c]`` is False for a class neither present nor predicted."""

    tp: list[int]
    fp: list[int]
    fn: list[int]
    precision: list[float]
    recall: list[float]
    f1: list[float]
    counted: list[bool]


def per_class_scores(confusion: Tensor) -> ClassScores:
    """Precision, recall and F1 of every class of a ``[C, C]`` confusion matrix (0/0 = 0)."""
    tp = confusion.diagonal()  # [C]
    fp = confusion.sum(dim=0) - tp  # [C] predicted as c, but not c
    fn = confusion.sum(dim=1) - tp  # [C] c, predicted as something else
    tp_l, fp_l, fn_l = tp.tolist(), fp.tolist(), fn.tolist()
    precision = [t / (t + f) if t + f else 0.0 for t, f in zip(tp_l, fp_l)]
    recall = [t / (t + f) if t + f else 0.0 for t, f in zip(tp_l, fn_l)]
    f1 = [2 * t / (2 * t + a + b) if 2 * t + a + b else 0.0 for t, a, b in zip(tp_l, fp_l, fn_l)]
    counted = [t + a + b > 0 for t, a, b in zip(tp_l, fp_l, fn_l)]
    return ClassScores(tp_l, fp_l, fn_l, precision, recall, f1, counted)


def macro_f1(pred: Labels, target: Labels, num_classes: int) -> float:
    """Unweighted mean F1 over the classes present or predicted (see the module docstring)."""
    scores = per_class_scores(confusion_matrix(pred, target, num_classes))
    kept = [f for f, c in zip(scores.f1, scores.counted) if c]
    return sum(kept) / len(kept) if kept else 0.0
