"""Predictions of generative tasks for :func:`taskgraph.model.predict`: completions, or the chosen choice.

The rows of a chunk that belong to generative tasks come here, each with its own task:

* a free-text task's rows are decoded greedily by the routed :func:`~taskgraph.model.generation.generate`, in
  batches of ``batch_size`` prompts of similar length that may mix tasks (each row routed by its own task, its
  task's ``max_new_tokens`` and ``stop``): ``{"completion": text, "stopped": "end" | "stop" | "length"}``;
* a ``choices`` task's rows are ranked (:func:`~taskgraph.model.rank_choices.choice_scores`: the likeliest choice,
  one batched pass per task, no decoding): ``{"label": index, "label_name": text, "scores": [per choice]}``, the
  scores being the choices' length-normalised log-likelihoods — ``label_name`` as a classifier's record names its
  label; the same text is also under ``choice``, its former name, kept for a deprecation period.

A prompt is the text as given (a task's template is the caller's to render: ``taskgraph predict`` renders it
from each record's fields), cut to its last ``model.max_length`` tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from taskgraph.data.encoding import tokenize_targets
from taskgraph.model.generation import generate
from taskgraph.model.lm_base import end_token_id
from taskgraph.model.lm_text import encode_prompts
from taskgraph.model.rank_choices import choice_scores

if TYPE_CHECKING:
    from taskgraph.model.taskgraph_model import TaskGraphModel


@torch.no_grad()
def predict_generative(
    model: TaskGraphModel, tasks: Sequence[int], texts: Sequence[str], batch_size: int
) -> list[dict[str, Any]]:
    """One record per text (see the module docstring), in input order; every task in ``tasks`` generates."""
    prompts = encode_prompts(model, list(texts))
    out: list[dict[str, Any]] = [{} for _ in texts]
    free = [i for i, t in enumerate(tasks) if not model.spec.tasks[t].choices]
    for task in sorted({t for t in tasks if model.spec.tasks[t].choices}):
        rows = [i for i, t in enumerate(tasks) if t == task]
        choices = model.spec.tasks[task].choices
        tokens = tokenize_targets(model.tokenizer, choices, end_token_id(model.base, model.tokenizer))
        scores = choice_scores(model, task, [prompts[i] for i in rows], tokens)  # [n, C]
        for i, row in zip(rows, scores.tolist()):
            best = max(range(len(row)), key=row.__getitem__)  # the first of equal maxima, as argmax
            out[i] = {"label": best, "label_name": choices[best], "choice": choices[best], "scores": row}
    free.sort(key=lambda i: len(prompts[i]))  # similar lengths share a batch: short left padding
    for start in range(0, len(free), batch_size):
        rows = free[start : start + batch_size]
        for i, done in zip(rows, generate(model, [tasks[i] for i in rows], [prompts[i] for i in rows])):
            out[i] = {"completion": done.text, "stopped": done.stopped}
    return out
