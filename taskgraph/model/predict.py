"""Classify raw texts with one task of a :class:`~taskgraph.model.TaskGraphModel`.

Texts are tokenized by the model's tokenizer (truncated at ``spec.model.max_length``) and padded
on the right here, so tokenizers without a pad token (GPT-2) work unchanged; the pooling reads
the positions of the real tokens from the attention mask.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

import torch
from torch import Tensor

from taskgraph.errors import ModelError
from taskgraph.model.modes import inference_mode_of

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


CHUNK = 4096  # texts tokenised in one call; bounds memory on long inputs


def label_names(model: "TaskGraphModel", index: int) -> list[str] | None:
    """The names of task ``index``'s labels when its data block lists them (``labels: [neg, pos]``)."""
    data = model.spec.tasks[index].data
    names = data.own_fields().get("labels") if data is not None else None
    ok = isinstance(names, list) and len(names) == model.num_labels[index] and all(isinstance(n, str) for n in names)
    return list(names) if ok else None


def predict(model: "TaskGraphModel", task: int | str, texts: Sequence[str], batch_size: int = 256
            ) -> list[dict[str, Any]]:
    """The predicted label and the class probabilities of every text, for one task.

    Runs in eval mode (inference routing, no dropout) and restores the model's mode after.

    Args:
        model: the model; ``model.tokenizer`` must be set.
        task: the task's name or id.
        texts: the texts to classify.
        batch_size: texts per forward pass. (default: ``256``)

    Returns:
        one ``{"label": int, "probs": [float] * num_labels}`` per text, in order, with ``"label_name"``
        too when the task's data names its labels.
    """
    return [row for chunk in iter_predictions(model, task, texts, batch_size) for row in chunk]


@torch.no_grad()
def iter_predictions(model: "TaskGraphModel", task: int | str, texts: Iterable[str], batch_size: int = 256
                     ) -> Iterator[list[dict[str, Any]]]:
    """:func:`predict` chunk by chunk (:data:`CHUNK` texts each), in input order: for streaming output.

    Each chunk is tokenised in one call and run in batches of similar length (sorted, then put back
    in order), so padding stays short.
    """
    if model.tokenizer is None:
        raise ModelError("this model has no tokenizer: set model.tokenizer (e.g. "
                         "transformers.AutoTokenizer.from_pretrained(<local dir>)), or give "
                         "model.tokenizer in the spec")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ModelError(f"batch_size must be a whole number of at least 1, got {batch_size!r}")
    index = model.task_index(task)
    names = label_names(model, index)
    with inference_mode_of(model):
        for start, chunk in _chunks(texts, CHUNK):
            bad = [i for i, t in enumerate(chunk) if not isinstance(t, str)]
            if bad:
                raise ModelError(f"texts must be strings; item {start + bad[0]} is {type(chunk[bad[0]]).__name__}")
            yield _predict_chunk(model, index, chunk, batch_size, names)


def _chunks(texts: Iterable[str], size: int) -> Iterator[tuple[int, list[str]]]:
    chunk: list[str] = []
    start = 0
    for text in texts:
        chunk.append(text)
        if len(chunk) == size:
            yield start, chunk
            start, chunk = start + size, []
    if chunk:
        yield start, chunk


def _predict_chunk(model: "TaskGraphModel", index: int, texts: list[str], batch_size: int,
                   names: list[str] | None) -> list[dict[str, Any]]:
    tokenizer = model.tokenizer
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    num_labels = model.num_labels[index]
    ids = encode(tokenizer, texts, model.spec.model.max_length)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # similar lengths share a batch
    probs = torch.empty(len(ids), num_labels)  # [N, C]
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        batch, mask = pad_batch([ids[i] for i in rows], pad_id, model.device)  # [b, S]
        logits = model(batch, mask, index).logits[:, :num_labels]  # [b, C]
        probs[rows] = torch.softmax(logits.float(), dim=-1).cpu()  # [b, C]
    labels = probs.argmax(dim=-1).tolist()  # [N]
    out = []
    for label, row in zip(labels, probs.tolist()):
        record: dict[str, Any] = {"label": label}
        if names is not None:
            record["label_name"] = names[label]
        record["probs"] = row
        out.append(record)
    return out
