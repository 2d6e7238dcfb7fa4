"""Classify raw texts with one task of a :class:`~taskgraph.model.TaskGraphModel`.

Texts are tokenized by the model's tokenizer (truncated at ``spec.model.max_length``) and padded
on the right here, so tokenizers without a pad token (GPT-2) work unchanged; the pooling reads
the positions of the real tokens from the attention mask.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import torch
from torch import Tensor

from taskgraph.errors import ModelError
from taskgraph.model.fold import inference_mode_of

if TYPE_CHECKING:
    from taskgraph.model.taskgraph_model import TaskGraphModel


def pad_batch(sequences: list[list[int]], pad_id: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Right-pad token id lists to ``input_ids [B, S]`` and ``attention_mask [B, S]``."""
    width = max(1, max((len(s) for s in sequences), default=1))
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)  # [B, S]
    mask = torch.zeros((len(sequences), width), dtype=torch.long)  # [B, S]
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return ids.to(device), mask.to(device)


def encode(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids of every text (special tokens added, truncated to ``max_length``)."""
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)
    return [list(ids) for ids in encoded["input_ids"]]


@torch.no_grad()
def predict(
    model: "TaskGraphModel", task: int | str, texts: Sequence[str], batch_size: int = 32
) -> list[dict[str, Any]]:
    """The predicted label and the class probabilities of every text, for one task.

    Runs in eval mode (inference routing, no dropout) and restores the model's mode after.

    Args:
        model: the model; ``model.tokenizer`` must be set.
        task: the task's name or id.
        texts: the texts to classify.
        batch_size: texts per forward pass. (default: ``32``)

    Returns:
        one ``{"label": int, "probs": [float] * num_labels}`` per text, in order.
    """
    if model.tokenizer is None:
        raise ModelError("this model has no tokenizer: set model.tokenizer (e.g. "
                         "transformers.AutoTokenizer.from_pretrained(<local dir>)), or give "
                         "model.tokenizer in the spec")
    if batch_size < 1:
        raise ModelError(f"batch_size must be at least 1, got {batch_size}")
    index = model.task_index(task)
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise ModelError(f"texts must be strings; item {bad[0]} is {type(texts[bad[0]]).__name__}")
    num_labels = model.num_labels[index]
    tokenizer = model.tokenizer
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    results: list[dict[str, Any]] = []
    with inference_mode_of(model):
        for start in range(0, len(texts), batch_size):
            chunk = texts[start : start + batch_size]
            ids, mask = pad_batch(encode(tokenizer, chunk, model.spec.model.max_length), pad_id, model.device)
            logits = model(ids, mask, index).logits[:, :num_labels]  # [b, C]
            probs = torch.softmax(logits.float(), dim=-1).cpu()  # [b, C]
            for row in probs:
                results.append({"label": int(row.argmax()), "probs": [float(p) for p in row]})
    return results
