"""How a text-to-text example becomes the tensors a language model reads: pure functions over token id lists.

A *target* is the target's tokens followed by the end token (what generation must write, then stop).

* causal (a decoder): one sequence ``prompt + target``; ``labels`` hold the target's tokens at their own
  positions and :data:`IGNORE` on the prompt and the padding (the loss at position ``i`` predicts token ``i``
  from the hidden state at ``i - 1``, as transformers' causal LMs do). Right padding for training and
  scoring; left padding for generation (:func:`left_pad`: every prompt ends at the last column, where the
  first new token goes).
* seq2seq (an encoder-decoder): the prompt is the encoder's input; ``labels [B, T]`` the target, the
  decoder reads it shifted right behind the model's start token (:func:`decoder_inputs`).

A classification example in a mixed batch is a prompt without target: its labels are all :data:`IGNORE`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

IGNORE = -100  # no loss here (transformers' ignore index)


def left_truncate(sequence: Sequence[int], max_length: int) -> list[int]:
    """The last ``max_length`` tokens of a prompt: its end (a template's cue, ``Answer:``) is what generation follows."""
    return list(sequence[-max_length:]) if len(sequence) > max_length else list(sequence)


def causal_rows(
    prompts: Sequence[Sequence[int]], targets: Sequence[Sequence[int] | None], pad_id: int
) -> tuple[Tensor, Tensor, Tensor]:
    """``(input_ids [B, S], attention_mask [B, S], labels [B, S])`` of ``prompt + target`` rows, right-padded.

    A row whose target is None (a classification example) is its prompt alone, with no label.
    """
    rows = [list(p) + list(t or ()) for p, t in zip(prompts, targets)]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)  # [B, S]
    mask = torch.zeros((len(rows), width), dtype=torch.long)  # [B, S]
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)  # [B, S]
    for b, (row, prompt, target) in enumerate(zip(rows, prompts, targets)):
        ids[b, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[b, : len(row)] = 1
        if target:
            labels[b, len(prompt) : len(row)] = torch.tensor(list(target), dtype=torch.long)
    return ids, mask, labels


def seq2seq_rows(
    prompts: Sequence[Sequence[int]], targets: Sequence[Sequence[int] | None], pad_id: int
) -> tuple[Tensor, Tensor, Tensor]:
    """``(input_ids [B, S], attention_mask [B, S], labels [B, T])``: prompts right-padded, targets padded with
    :data:`IGNORE` (``T = 1`` and all IGNORE when no row has a target)."""
    ids, mask = right_pad(prompts, pad_id)
    width = max([len(t) for t in targets if t] or [1])
    labels = torch.full((len(prompts), width), IGNORE, dtype=torch.long)  # [B, T]
    for b, target in enumerate(targets):
        if target:
            labels[b, : len(target)] = torch.tensor(list(target), dtype=torch.long)
    return ids, mask, labels


def decoder_inputs(labels: Tensor, start_id: int, pad_id: int) -> tuple[Tensor, Tensor]:
    """``(decoder_input_ids [B, T], decoder_attention_mask [B, T])``: ``labels`` shifted right behind ``start_id``."""
    shifted = torch.full_like(labels, pad_id)  # [B, T]
    shifted[:, 0] = start_id
    shifted[:, 1:] = labels[:, :-1]
    mask = torch.ones_like(labels)  # [B, T]
    mask[:, 1:] = (labels[:, :-1] != IGNORE).long()
    return shifted.masked_fill(shifted == IGNORE, pad_id), mask


def right_pad(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    """``(ids [B, S], mask [B, S])`` right-padded."""
    width = max(1, max((len(s) for s in sequences), default=1))
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)  # [B, S]
    mask = torch.zeros((len(sequences), width), dtype=torch.long)  # [B, S]
    for b, seq in enumerate(sequences):
        ids[b, : len(seq)] = torch.tensor(list(seq), dtype=torch.long)
        mask[b, : len(seq)] = 1
    return ids, mask


def left_pad(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    """``(ids [B, S], mask [B, S])`` left-padded: every sequence ends at the last column."""
    width = max(1, max((len(s) for s in sequences), default=1))
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)  # [B, S]
    mask = torch.zeros((len(sequences), width), dtype=torch.long)  # [B, S]
    for b, seq in enumerate(sequences):
        if seq:
            ids[b, width - len(seq) :] = torch.tensor(list(seq), dtype=torch.long)
            mask[b, width - len(seq) :] = 1
    return ids, mask
