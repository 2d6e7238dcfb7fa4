"""Classify raw texts with one task of a :class:`~taskgraph.model.TaskGraphModel`, or each text with its own task.

Texts are tokenized by the model's tokenizer (truncated at ``spec.model.max_length``) and padded
on the right here, so tokenizers without a pad token (GPT-2) work unchanged; the pooling reads
the positions of the real tokens from the attention mask.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import torch
from torch import Tensor

from taskgraph.data.encoding import encode
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


CHUNK = 4096  # texts tokenised in one call; bounds memory on long inputs
T = TypeVar("T")


def label_names(model: TaskGraphModel, index: int) -> list[str] | None:
    """The names of task ``index``'s labels when its data block lists them (``labels: [neg, pos]``)."""
    data = model.spec.tasks[index].data
    names = data.own_fields().get("labels") if data is not None else None
    ok = isinstance(names, list) and len(names) == model.num_labels[index] and all(isinstance(n, str) for n in names)
    return list(names) if ok else None


TaskChoice = int | str | Iterable[int | str]


def predict(
    model: TaskGraphModel, task: TaskChoice, texts: Sequence[str], batch_size: int = 256
) -> list[dict[str, Any]]:
    """The predicted label and the class probabilities of every text, for one task or one task per text.

    Runs in eval mode (inference routing, no dropout) and restores the model's mode after. With a task per
    text, the texts of different tasks share batches (a mixed-task batch: each example routed by its own
    task, the heads of the batch's tasks run once; no per-task pass, no folding); a layer whose gate is closed
    for a task is skipped for that task's examples.

    Args:
        model: the model; ``model.tokenizer`` must be set.
        task: a task's name or id for every text, or a sequence with one name or id per text.
        texts: the texts to classify.
        batch_size: texts per forward pass. (default: ``256``)

    Returns:
        one ``{"label": int, "probs": [float] * num_labels}`` per text, in order, with ``"label_name"``
        too when the text's task names its labels. A generative task's text is a prompt
        (:mod:`taskgraph.model.predict_text`): ``{"completion", "stopped"}`` of greedy routed generation, or for a
        ``choices`` task ``{"label", "label_name", "scores"}`` by rank classification (and ``"choice"``, the
        former name of ``"label_name"``, for a deprecation period).
    """
    return [row for chunk in iter_predictions(model, task, texts, batch_size) for row in chunk]


@torch.no_grad()
def iter_predictions(
    model: TaskGraphModel, task: TaskChoice, texts: Iterable[str], batch_size: int = 256
) -> Iterator[list[dict[str, Any]]]:
    """:func:`predict` chunk by chunk (:data:`CHUNK` texts each), in input order: for streaming output.

    Each chunk is tokenised in one call and run in batches of similar length (sorted, then put back
    in order), so padding stays short; with a task per text, a batch mixes tasks.
    """
    if model.tokenizer is None:
        raise ModelError(
            "this model has no tokenizer: set model.tokenizer (e.g. "
            "transformers.AutoTokenizer.from_pretrained(<local dir>)), or give "
            "model.tokenizer in the spec"
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ModelError(f"batch_size must be a whole number of at least 1, got {batch_size!r}")
    if isinstance(task, (str, int)):
        pairs: Iterable[tuple[Any, int | str]] = zip(texts, itertools.repeat(model.task_index(task)))
    else:
        pairs = _one_task_per_text(texts, task)
    names: dict[int, list[str] | None] = {}
    with inference_mode_of(model):
        for start, chunk in _chunks(pairs, CHUNK):
            bad = [i for i, (t, _) in enumerate(chunk) if not isinstance(t, str)]
            if bad:
                raise ModelError(f"texts must be strings; item {start + bad[0]} is {type(chunk[bad[0]][0]).__name__}")
            indices = [model.task_index(t) for _, t in chunk]
            for index in set(indices) - set(names):
                names[index] = label_names(model, index)
            yield _predict_chunk(model, indices, [t for t, _ in chunk], batch_size, names)


@torch.no_grad()
def classify_ids(
    model: TaskGraphModel,
    ids: Sequence[Sequence[int]],
    tasks: Sequence[int],
    batch_size: int,
    logits_of: Callable[[Tensor, Tensor, Tensor], Tensor] | None = None,
) -> Tensor:
    """Class probabilities ``[N, C_max]`` of token-id sequences, each for its own task (entries past a task's
    label count are exactly 0), in batches of ``batch_size`` similar lengths that may mix tasks.

    ``logits_of(input_ids, attention_mask, task_ids)`` replaces the routed model's forward (the inference bench
    runs a task's merged model this way); ``model`` still gives the padding id, label counts and device."""
    tokenizer = model.tokenizer
    pad_id = tokenizer.pad_token_id if tokenizer is not None and tokenizer.pad_token_id is not None else 0
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # similar lengths share a batch
    probs = torch.zeros(len(ids), max(model.num_labels))  # [N, C_max]
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        batch, mask = pad_batch([list(ids[i]) for i in rows], pad_id, model.device)  # [b, S]
        task_ids = torch.tensor([tasks[i] for i in rows], dtype=torch.long, device=model.device)  # [b]
        logits = (
            model(batch, mask, task_ids).logits if logits_of is None else logits_of(batch, mask, task_ids)
        )  # [b, C]
        probs[rows, : logits.shape[1]] = torch.softmax(logits.float(), dim=-1).cpu()  # [b, C_max]
    return probs


def _predict_chunk(
    model: TaskGraphModel, tasks: list[int], texts: list[str], batch_size: int, names: dict[int, list[str] | None]
) -> list[dict[str, Any]]:
    generative = [i for i, t in enumerate(tasks) if model.spec.tasks[t].generative]
    if not generative:
        return _classify_chunk(model, tasks, texts, batch_size, names)
    from taskgraph.model.predict_text import predict_generative

    out: list[dict[str, Any]] = [{} for _ in texts]
    written = predict_generative(model, [tasks[i] for i in generative], [texts[i] for i in generative], batch_size)
    for i, record in zip(generative, written):
        out[i] = record
    taken = set(generative)
    others = [i for i in range(len(texts)) if i not in taken]
    if others:
        classified = _classify_chunk(model, [tasks[i] for i in others], [texts[i] for i in others], batch_size, names)
        for i, record in zip(others, classified):
            out[i] = record
    return out


def _classify_chunk(
    model: TaskGraphModel, tasks: list[int], texts: list[str], batch_size: int, names: dict[int, list[str] | None]
) -> list[dict[str, Any]]:
    ids = encode(model.tokenizer, texts, model.spec.model.max_length)
    probs = classify_ids(model, ids, tasks, batch_size)  # [N, C_max]
    out = []
    for task, row in zip(tasks, probs.tolist()):
        own = row[: model.num_labels[task]]
        label = max(range(len(own)), key=own.__getitem__)  # the first of equal maxima, as argmax
        record: dict[str, Any] = {"label": label}
        if names[task] is not None:
            record["label_name"] = names[task][label]
        record["probs"] = own
        out.append(record)
    return out


def _chunks(items: Iterable[T], size: int) -> Iterator[tuple[int, list[T]]]:
    chunk: list[T] = []
    start = 0
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield start, chunk
            start, chunk = start + size, []
    if chunk:
        yield start, chunk


def _one_task_per_text(texts: Iterable[Any], tasks: Iterable[int | str]) -> Iterator[tuple[Any, int | str]]:
    end = object()
    for n, (text, task) in enumerate(itertools.zip_longest(texts, tasks, fillvalue=end)):
        if text is end or task is end:
            raise ModelError(f"give one task per text: the tasks and the texts differ in number (from item {n} on)")
        yield text, task  # type: ignore[misc]
