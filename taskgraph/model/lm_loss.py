"""The loss of a generative example: token cross-entropy on its target, averaged per example. Pure functions.

An example's loss is the mean negative log-likelihood of its target tokens (prompt and padding excluded),
so a long target weighs as much as a short one; a batch's loss is the mean over its examples, classification
and generative alike (:func:`mixed_batch_loss`). The same per-example mean, negated, is the length-normalised
log-likelihood that ranks a task's choices (:mod:`taskgraph.model.rank_choices`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from taskgraph.data.lm_inputs import IGNORE
from taskgraph.precision import at_least_fp32


def shifted_positions(labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Where a causal LM is scored: ``(rows [N], positions [N], tokens [N])``.

    The token ``labels[b, i]`` (not :data:`IGNORE`, ``i >= 1``) is predicted from the hidden state at
    ``(b, i - 1)``: ``positions`` holds ``i - 1``.
    """
    rows, cols = (labels[:, 1:] != IGNORE).nonzero(as_tuple=True)  # [N], [N]
    return rows, cols, labels[rows, cols + 1]  # positions are i - 1 in the unshifted sequence


def per_example_mean(values: Tensor, rows: Tensor, batch: int) -> Tensor:
    """``[B]`` mean of ``values [N]`` per row index ``rows [N]`` (0 for a row with no value)."""
    total = torch.zeros(batch, dtype=values.dtype, device=values.device).index_add(0, rows, values)  # [B]
    count = torch.zeros(batch, dtype=values.dtype, device=values.device).index_add(
        0, rows, torch.ones_like(values)
    )  # [B]
    return total / count.clamp(min=1.0)  # [B]


def token_nll(logits: Tensor, tokens: Tensor) -> Tensor:
    """``[N]`` negative log-likelihood of ``tokens [N]`` under ``logits [N, V]`` (in float32)."""
    return F.cross_entropy(at_least_fp32(logits), tokens, reduction="none")  # [N]


def seq2seq_example_nll(logits: Tensor, labels: Tensor) -> Tensor:
    """``[B]`` mean target-token NLL of decoder ``logits [B, T, V]`` against ``labels [B, T]`` (IGNORE: none)."""
    rows, cols = (labels != IGNORE).nonzero(as_tuple=True)  # [N], [N]
    nll = token_nll(logits[rows, cols], labels[rows, cols])  # [N]
    return per_example_mean(nll, rows, labels.shape[0])  # [B]


def token_hits(logits: Tensor, tokens: Tensor, rows: Tensor, batch: int) -> Tensor:
    """``[B]`` bool: every scored token of the row is the argmax of its logits (teacher forcing).

    With the end token among the targets this is exactly "greedy decoding writes the target and stops":
    greedy's prefix equals the target's as long as every argmax matched. A row with no scored token is False.
    """
    wrong = (logits.argmax(dim=-1) != tokens).long()  # [N]
    misses = torch.zeros(batch, dtype=torch.long, device=tokens.device).index_add(0, rows, wrong)  # [B]
    scored = torch.zeros(batch, dtype=torch.long, device=tokens.device).index_add(0, rows, torch.ones_like(wrong))
    return (misses == 0) & (scored > 0)  # [B]


def mixed_batch_loss(class_logits: Tensor, labels: Tensor, generative: Tensor, lm_nll: Tensor) -> tuple[Tensor, Tensor]:
    """``(loss, per-example [B])``: cross-entropy for classification rows, the target NLL for generative rows.

    Args:
        class_logits: ``[B, C_max]`` the heads' logits (any value on generative rows).
        labels: ``[B]`` class labels (any value in range on generative rows).
        generative: ``[B]`` bool, the rows whose task generates.
        lm_nll: ``[B]`` the mean target NLL of every row (any value on classification rows).
    """
    if class_logits.shape[1] > 0:
        safe = torch.where(generative, torch.zeros_like(labels), labels)  # [B]: a generative row's label may exceed C
        ce = F.cross_entropy(at_least_fp32(class_logits), safe, reduction="none")  # [B]
    else:
        ce = torch.zeros_like(lm_nll)
    per_example = torch.where(generative, at_least_fp32(lm_nll), ce)  # [B]
    return per_example.mean(), per_example
