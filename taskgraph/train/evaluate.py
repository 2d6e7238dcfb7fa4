"""Validation: accuracy per task, their unweighted mean, and the mean cross-entropy.

A generative task's "accuracy" is the metric its objective reads (:mod:`taskgraph.train.evaluate_generative`):
rank-classification accuracy for a ``choices`` task, greedy exact match otherwise; its loss the target NLL.

Each task is evaluated on its own batches (one task per batch), in eval mode (inference routing,
no dropout, no random draws), so evaluating never changes the training run it sits in. A validation that runs
longer than 10 s prints a progress line at least that often (:class:`~taskgraph.train.progress.BatchProgress`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from taskgraph.data import TaskData, task_batches
from taskgraph.model.modes import inference_mode_of
from taskgraph.precision import at_least_fp32
from taskgraph.train.evaluate_generative import generative_batches, score_generative
from taskgraph.train.progress import BatchProgress

EVAL_BATCH_SIZE = 64


@dataclass
class EvalResult:
    """Accuracy of every task (``acc``), their unweighted mean, and the mean loss over all examples."""

    acc: dict[str, float]
    mean_acc: float
    loss: float
    examples: int

    def log_record(self, step: int, split: str = "val") -> dict[str, Any]:
        """The ``log.jsonl`` line of this evaluation."""
        return {"step": step, "split": split, "acc": dict(self.acc), "mean_acc": self.mean_acc, "loss": self.loss}

    def __repr__(self) -> str:
        accs = ", ".join(f"{k}={v:.3f}" for k, v in self.acc.items())
        return f"EvalResult(mean_acc={self.mean_acc:.4f}, loss={self.loss:.4f}, acc={{{accs}}})"


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: Sequence[TaskData],
    *,
    pad_id: int,
    batch_size: int = EVAL_BATCH_SIZE,
    device: torch.device | str = "cpu",
    autocast: bool = False,
    progress: BatchProgress | None = None,
) -> EvalResult:
    """Accuracy and loss of ``model`` on every task's examples in ``data`` (e.g. the val split).

    Args:
        model: a :class:`~taskgraph.model.TaskGraphModel`; put in eval mode here, its mode restored after.
        data: one :class:`TaskData` per task.
        pad_id: the padding token id.
        batch_size: examples per forward pass. (default: ``64``)
        device: where the model is.
        autocast: run the forward under bf16 autocast (CUDA). (default: ``False``)
        progress: hears of every batch. (default: a ``validation`` :class:`BatchProgress` on stderr)
    """
    acc: dict[str, float] = {}
    total_loss, total = 0.0, 0
    device = torch.device(device)
    if progress is None:
        batches = [
            generative_batches(model, t, batch_size) if t.targets is not None else math.ceil(len(t) / batch_size)
            for t in data
        ]
        progress = BatchProgress("validation", sum(batches), tasks=len(data))
    with inference_mode_of(model):
        for task in data:
            correct = 0
            progress.task(task.name)
            if task.targets is not None:
                correct, summed = score_generative(
                    model,
                    task,
                    pad_id=pad_id,
                    batch_size=batch_size,
                    device=device,
                    autocast=_autocast(device, autocast),
                    progress=progress,
                )
                acc[task.name] = correct / len(task)
                total_loss, total = total_loss + summed, total + len(task)
                continue
            for batch in task_batches(task, batch_size, pad_id):
                batch = batch.to(device)
                with _autocast(device, autocast):
                    logits = model(
                        batch.input_ids, batch.attention_mask, batch.task_ids, distinct=(batch.tasks, batch.inverse)
                    ).logits  # [b, C_max]
                logits = at_least_fp32(logits)
                total_loss += float(F.cross_entropy(logits, batch.labels, reduction="sum"))
                correct += int((logits.argmax(dim=-1) == batch.labels).sum())
                progress.advance()
            acc[task.name] = correct / len(task)
            total += len(task)
    mean_acc = sum(acc.values()) / len(acc) if acc else 0.0
    return EvalResult(acc, mean_acc, total_loss / max(1, total), total)


def _autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager[Any]:
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
