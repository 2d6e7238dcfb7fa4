"""A generative task's scores in ``taskgraph eval``, by what the task writes.

* a ``choices`` task — rank classification (:mod:`taskgraph.model.rank_choices`: the likeliest choice under the
  task's routing, one batched pass, no decoding): ``accuracy`` and ``macro_f1`` over its choices, as a
  classification task is scored;
* a free-text task — greedy routed generation (:func:`~taskgraph.model.generation.generate_ids`, the task's
  ``max_new_tokens``, batches of ``batch_size`` prompts): ``exact_match``, ``token_f1`` and ``rouge_l``
  (:mod:`taskgraph.metrics.text_overlap`). With a tokenizer both sides are texts: the completion decoded and cut
  before the task's first ``stop`` string, the gold target decoded from its tokens (so both pass the same
  tokenizer); without one (token-id data, the planted universe) both are token ids, the end token dropped.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from taskgraph.data import target_rows
from taskgraph.metrics import accuracy, macro_f1
from taskgraph.metrics.text_overlap import Answer, text_scores
from taskgraph.model.generation import Decoding, generate_ids, stop_text
from taskgraph.model.lm_base import end_token_id
from taskgraph.model.rank_choices import choice_passes, choice_scores

if TYPE_CHECKING:
    from taskgraph.data import TaskData
    from taskgraph.model.taskgraph_model import TaskGraphModel

FREE_TEXT_METRICS = ("exact_match", "token_f1", "rouge_l")


def prompts_of(data: TaskData) -> list[list[int]]:
    """The prompt token ids of every example (padding dropped)."""
    return [data.ids[i, : int(data.lengths[i])].tolist() for i in range(len(data))]


@torch.no_grad()
def score_generative_split(
    model: TaskGraphModel, data: TaskData, *, batch_size: int = 64, advance: Callable[[], None] | None = None
) -> dict[str, Any]:
    """``{"n", "accuracy", "macro_f1"}`` of a ``choices`` task, ``{"n", "exact_match", "token_f1", "rouge_l"}`` of a
    free-text task (see the module docstring); ``advance`` is called after each of its :func:`generative_split_batches`
    forward passes or generation batches (a progress report)."""
    prompts = prompts_of(data)
    if data.choices is not None:
        scores = choice_scores(model, data.task_id, prompts, [list(c) for c in data.choices], advance=advance)  # [N, C]
        pred = scores.argmax(dim=1)  # [N]
        return {
            "n": len(data),
            "accuracy": accuracy(pred, data.labels),
            "macro_f1": macro_f1(pred, data.labels, len(data.choices)),
        }
    predictions, golds = completions_and_golds(model, data, prompts, batch_size, advance)
    return {"n": len(data), **text_scores(predictions, golds)}


def generative_split_batches(model: TaskGraphModel, data: TaskData, batch_size: int) -> int:
    """The forward passes (``choices``) or generation batches (free text) :func:`score_generative_split` takes."""
    if data.choices is not None:
        return choice_passes(model, len(data), len(data.choices))
    return math.ceil(len(data) / batch_size)


def completions_and_golds(
    model: TaskGraphModel,
    data: TaskData,
    prompts: list[list[int]],
    batch_size: int,
    advance: Callable[[], None] | None = None,
) -> tuple[list[Answer], list[Answer]]:
    """Greedy completions and gold targets of a free-text task, both texts (with a tokenizer) or both token ids."""
    task = model.spec.tasks[data.task_id]
    end = end_token_id(model.base, model.tokenizer)
    ids = torch.full((len(prompts),), data.task_id, dtype=torch.long, device=model.device)  # [N]
    written: list[list[int]] = []
    for start in range(0, len(prompts), batch_size):
        rows = generate_ids(
            model,
            ids[start : start + batch_size],
            prompts[start : start + batch_size],
            [task.max_new_tokens] * len(prompts[start : start + batch_size]),
            Decoding(),
        )
        written += [row[:-1] if row and row[-1] == end else row for row in rows]
        if advance is not None:
            advance()
    golds = [row[:-1] if row and row[-1] == end else row for row in target_rows(data.targets)]
    if model.tokenizer is None:
        return list(written), list(golds)
    decode = model.tokenizer.decode
    return (
        [stop_text(decode(row, skip_special_tokens=True), task.stop)[0] for row in written],
        [decode(row, skip_special_tokens=True) for row in golds],
    )
