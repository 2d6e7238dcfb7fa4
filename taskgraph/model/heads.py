"""Per-task classification heads: one linear layer per task, each with its own label count (none for a generative task)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn


def pad_logits(logits: Tensor, width: int) -> Tensor:
    """Pad ``[B, C]`` logits to ``[B, width]`` with the dtype's most negative finite value.

    A padded class then has probability exactly 0 under softmax and never wins an argmax, and
    cross-entropy over the padded row equals cross-entropy over the task's own classes; a finite
    value (not ``-inf``) keeps sums and products of logits free of NaN.
    """
    missing = width - logits.shape[1]
    if missing == 0:
        return logits
    fill = logits.new_full((logits.shape[0], missing), torch.finfo(logits.dtype).min)  # [B, width - C]
    return torch.cat([logits, fill], dim=1)  # [B, width]


def head_widths(tasks: Sequence[Any]) -> list[int]:
    """Each task's head width: its ``num_labels``, or 0 for a generative task (it is scored by its LM, not a head)."""
    return [0 if getattr(t, "generative", False) else t.num_labels for t in tasks]


def _linear(hidden: int, width: int, **like: Any) -> nn.Linear:
    if width > 0:
        return nn.Linear(hidden, width, **like)
    with warnings.catch_warnings():  # a generative task's empty head: nothing to initialise
        warnings.filterwarnings("ignore", message="Initializing zero-element tensors")
        return nn.Linear(hidden, 0, **like)


class TaskHeads(nn.Module):
    """A linear head ``hidden -> num_labels[t]`` for every task ``t``.

    Args:
        hidden: D, the size of the pooled vector.
        num_labels: the label count of each task, in task-id order.

    ``widths`` (a buffer, ``[T]``) holds the label counts on the model's device, for label checks without a copy.

    Shapes:
        - pooled ``[B, D]``, tasks ``[U]`` (distinct task ids; read on the host, so a host tensor costs no device
          sync), inverse ``[B]`` (example -> row of tasks)
        - output ``[B, C_max]``: entries past an example's own label count are padding (:func:`pad_logits`).
    """

    def __init__(self, hidden: int, num_labels: list[int]) -> None:
        super().__init__()
        self.hidden = hidden
        self.num_labels = list(num_labels)
        self.heads = nn.ModuleList(_linear(hidden, n) for n in self.num_labels)
        self.register_buffer("widths", torch.tensor(self.num_labels, dtype=torch.long), persistent=False)  # [T]

    @property
    def max_labels(self) -> int:
        return max(self.num_labels)  # 0 when every task generates

    def add_task(self, num_labels: int) -> int:
        """Append a head for a new task; returns its task id."""
        ref = self.heads[0].weight
        self.heads.append(_linear(self.hidden, num_labels, device=ref.device, dtype=ref.dtype))
        self.num_labels.append(num_labels)
        self.widths = torch.tensor(self.num_labels, dtype=torch.long, device=self.widths.device)  # [T]
        return len(self.heads) - 1

    def forward(self, pooled: Tensor, tasks: Tensor, inverse: Tensor) -> Tensor:
        # Each distinct task's head runs on the whole batch (U tiny matmuls, no boolean masks and
        # no host sync besides reading the U ids), then every example keeps its own task's row.
        width = self.max_labels
        ref = self.heads[0].weight
        x = pooled.to(ref.dtype)  # [B, D]
        per_task = [pad_logits(self.heads[t](x), width) for t in tasks.tolist()]  # U x [B, C_max]
        stacked = torch.stack(per_task)  # [U, B, C_max]
        rows = torch.arange(x.shape[0], device=x.device)  # [B]
        return stacked[inverse, rows]  # [B, C_max]

    def extra_repr(self) -> str:
        return f"tasks={len(self.heads)}, hidden={self.hidden}, num_labels={self.num_labels}"

    def __repr__(self) -> str:  # the ModuleList of T linears is noise; the summary says it all
        return f"{type(self).__name__}({self.extra_repr()})"
