"""One split of one task, encoded once (:class:`TaskData`): token ids, lengths, labels and a generative task's targets.

Text goes through the model's tokenizer (:mod:`taskgraph.data.encoding`); token-id data is checked against
``model.max_length`` and the vocabulary; a generative task's targets are encoded for its layout
(:mod:`taskgraph.data.text2text_encoding`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from taskgraph.data.encoding import encode, tokenize_prompts
from taskgraph.data.examples import Examples
from taskgraph.data.text2text_encoding import TargetLayout, encode_targets
from taskgraph.errors import DataError


@dataclass(frozen=True, eq=False)
class TaskData:
    """One split of one task, encoded once: right-padded token ids, lengths, labels.

    Args:
        name: the task's name.
        task_id: its index in ``spec.tasks``.
        ids: ``[N, S]`` long token ids, right-padded with the pad id.
        lengths: ``[N]`` long, the real length of every row (>= 1).
        labels: ``[N]`` long labels in ``[0, num_labels)``.
        targets: a generative task's ``[N, T]`` target tokens with the end token, -100-padded; else None.
        layout: a generative task's ``"causal"`` / ``"seq2seq"`` (:mod:`taskgraph.data.text2text_encoding`); else None.
        choices: a ``choices`` task's choices as token ids (end token included), for rank classification; else None.
    """

    name: str
    task_id: int
    ids: Tensor
    lengths: Tensor
    labels: Tensor
    targets: Tensor | None = None
    layout: str | None = None
    choices: tuple[tuple[int, ...], ...] | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def fingerprint(self) -> str:
        """sha256 of the ids, lengths, labels (and targets) (a resumed run checks its data did not change)."""
        digest = hashlib.sha256()
        for tensor in (self.ids, self.lengths, self.labels) + (() if self.targets is None else (self.targets,)):
            digest.update(str(tuple(tensor.shape)).encode())
            digest.update(tensor.contiguous().numpy().tobytes())
        return digest.hexdigest()

    def __repr__(self) -> str:
        return f"TaskData(name={self.name!r}, task_id={self.task_id}, n={len(self)}, width={self.ids.shape[1]})"


def encode_examples(
    examples: Examples,
    task_id: int,
    *,
    tokenizer: Any | None,
    max_length: int,
    pad_id: int,
    vocab_size: int | None = None,
    target: TargetLayout | None = None,
) -> TaskData:
    """Token ids of every example: the tokenizer's (truncated at ``max_length``) or the given ``token_ids``.

    A generative task's examples (``target``: its layout) keep the end of a long prompt and their targets
    (:mod:`taskgraph.data.text2text_encoding`).

    Raises:
        DataError: text data with no tokenizer, token ids longer than ``max_length`` or outside
            the vocabulary, or an empty sequence; a generative example without ``target`` or with a target
            longer than its task's ``max_new_tokens``.
    """
    if examples.generative != (target is not None):
        raise DataError(
            f"task {examples.task!r}: its examples {'carry' if examples.generative else 'lack'} targets "
            f"but the task is {'not ' if target is None else ''}generative here (objective and model disagree)"
        )
    if examples.token_ids is not None:
        sequences = [list(map(int, row)) for row in examples.token_ids]
        longest = max((len(s) for s in sequences), default=0)
        if longest > max_length:
            raise DataError(
                f"task {examples.task!r}: token_ids rows are up to {longest} tokens long but "
                f"model.max_length is {max_length}; raise model.max_length or shorten the rows"
            )
    else:
        if tokenizer is None:
            raise DataError(
                f"task {examples.task!r} has text data but the model has no tokenizer; give "
                f"model.tokenizer (a local directory or package: path) in the spec"
            )
        if target is not None:
            sequences = tokenize_prompts(tokenizer, examples.texts or [], max_length)
        else:
            sequences = encode(tokenizer, examples.texts or [], max_length)
    empty = [i for i, s in enumerate(sequences) if not s]
    if empty:
        raise DataError(f"task {examples.task!r}: example {empty[0]} encodes to no tokens; remove empty rows")
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)  # [N, S]
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)  # [N]
    if vocab_size is not None:
        top = max(max(s) for s in sequences)
        low = min(min(s) for s in sequences)
        if top >= vocab_size or low < 0:
            raise DataError(
                f"task {examples.task!r}: token id {top if top >= vocab_size else low} is outside "
                f"the model's vocabulary [0, {vocab_size}); the data and model.config disagree"
            )
    labels = torch.tensor(examples.labels, dtype=torch.long)  # [N]
    if target is None:
        return TaskData(examples.task, task_id, ids, lengths, labels)
    targets, choices = encode_targets(examples, target, tokenizer)  # [N, T]
    if vocab_size is not None and int(targets.max()) >= vocab_size:
        raise DataError(
            f"task {examples.task!r}: target token id {int(targets.max())} is outside the model's "
            f"vocabulary [0, {vocab_size}); the data and model.config disagree"
        )
    return TaskData(examples.task, task_id, ids, lengths, labels, targets, target.kind, choices)


def tokenizer_pad_id(tokenizer: Any | None) -> int:
    """The id batches are padded with: the tokenizer's pad id, else 0 (token-id data has no tokenizer)."""
    pad = getattr(tokenizer, "pad_token_id", None) if tokenizer is not None else None
    return int(pad) if pad is not None else 0
