"""Pooling: one vector per example from a transformer's last hidden states.

Pure functions over tensors. Each takes ``hidden [B, S, D]`` and ``mask [B, S]`` (1 for a real
token, 0 for padding) and returns ``[B, D]``. They work for right *and* left padding, because the
positions they pick are read from the mask, never assumed.

* ``mean`` — the average of the real tokens (encoders; the default);
* ``last`` — the last real token (decoders: the only token that has seen the whole text);
* ``cls``  — the first real token (BERT's ``[CLS]``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from taskgraph.errors import ModelError


def mean_pool(hidden: Tensor, mask: Tensor) -> Tensor:
    """Mean of the hidden states of the real tokens; an all-padding row pools to zeros."""
    weights = mask.to(hidden.dtype).unsqueeze(-1)  # [B, S, 1]
    total = (hidden * weights).sum(dim=1)  # [B, D]
    count = weights.sum(dim=1).clamp(min=1.0)  # [B, 1]
    return total / count  # [B, D]


def last_token_pool(hidden: Tensor, mask: Tensor) -> Tensor:
    """Hidden state of the last real token of each row (right or left padding)."""
    positions = torch.arange(1, mask.shape[1] + 1, device=mask.device)  # [S]: 1..S
    last = (mask.long() * positions).argmax(dim=1)  # [B]: largest position with mask 1
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]  # [B, D]


def first_token_pool(hidden: Tensor, mask: Tensor) -> Tensor:
    """Hidden state of the first real token of each row (``[CLS]``; right or left padding)."""
    seq = mask.shape[1]
    positions = torch.arange(seq, 0, -1, device=mask.device)  # [S]: S..1
    first = (mask.long() * positions).argmax(dim=1)  # [B]: smallest position with mask 1
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), first]  # [B, D]


POOLINGS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "mean": mean_pool,
    "last": last_token_pool,
    "cls": first_token_pool,
}


def pool(kind: str, hidden: Tensor, mask: Tensor) -> Tensor:
    """Apply the pooling named ``kind`` (``mean``, ``last`` or ``cls``)."""
    if kind not in POOLINGS:
        raise ModelError(f"model.pooling: unknown pooling {kind!r}; choose from {sorted(POOLINGS)}")
    return POOLINGS[kind](hidden, mask)
