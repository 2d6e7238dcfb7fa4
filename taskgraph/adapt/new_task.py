"""The new task of an adaptation: adding it to the model, its relations, its data splits and its refit head.

The pieces :func:`~taskgraph.adapt.adapt_run` runs in order (and :mod:`taskgraph.adapt.attach` reuses):
:func:`add_new_task` as the mode's plan says, with :func:`new_task_relations` for a graph router's node;
:func:`load_task_splits` and :func:`subset_rows` for its data and shots; :func:`refit_head` for phase 2.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch

from taskgraph.adapt.head_fit import ITERATIONS, L2, fit_head, pooled_features, set_head
from taskgraph.adapt.modes import AdaptationPlan
from taskgraph.data import TaskData, encode_examples, tokenizer_pad_id
from taskgraph.data.base import build_source
from taskgraph.errors import ModelError, opt
from taskgraph.model import TaskGraphModel
from taskgraph.spec.models import TaskSpec


def add_new_task(
    model: TaskGraphModel,
    plan: AdaptationPlan,
    task: str,
    num_labels: int,
    relate: Mapping[str, float],
    *,
    seed: int,
    family: str | None = None,
    data: Mapping[str, Any] | None = None,
    generation: Mapping[str, Any] | None = None,
) -> int:
    """Add the task as ``plan`` says (its new row, skill and head drawn under ``torch.manual_seed(seed)``)."""
    torch.manual_seed(seed)
    if plan.add == "relations":
        return model.add_task_from_relations(
            task, num_labels, dict(relate), family=family, data=data, generation=generation
        )
    return model.add_task_to_learn(
        task,
        num_labels,
        own_skill=plan.own_skill,
        skill_init=plan.skill_init,
        family=family,
        data=data,
        generation=generation,
    )


def new_task_relations(
    model: TaskGraphModel, plan: AdaptationPlan, relate: Mapping[str, float] | None, task: str
) -> dict[str, float]:
    """The new node's relations (graph router); ModelError for relations a static router cannot use."""
    given = dict(relate or {})
    for name, weight in given.items():
        if name not in model.task_names:
            raise ModelError(
                f"{opt('relate')} {name}={weight}: unknown task {name!r}; the run's tasks are {model.task_names}"
            )
        if not (isinstance(weight, (int, float)) and 0.0 <= float(weight) <= 1.0):
            raise ModelError(f"{opt('relate')} {name}={weight}: a relation weight lies in [0, 1]")
    if plan.add != "relations":
        if given:
            raise ModelError(
                f"{opt('relate')} seeds the new node of a graph router; router {model.spec.router.kind!r} routes "
                f"task {task!r} by a learned row and has no relations: drop {opt('relate')}"
            )
        return {}
    if given:
        return {name: float(w) for name, w in given.items()}
    if not plan.routing:
        raise ModelError(
            f"zero-shot routing needs the new task's relations: give {opt('relate')} TASK=W (W in [0, 1]) for one "
            f"or more of the run's tasks {model.task_names}"
        )
    trained = model.router.relations.num_trained
    return {name: float(model.spec.relations.density) for name in model.task_names[:trained]}


def refit_head(model: TaskGraphModel, index: int, shots: TaskData, labels: int) -> dict[str, Any]:
    """Fit task ``index``'s head from scratch on the frozen model's pooled features of ``shots``; returns its record."""
    features = pooled_features(model, shots, pad_id=tokenizer_pad_id(model.tokenizer))  # [N, D]
    weight, bias = fit_head(features, shots.labels, labels)
    set_head(model, index, weight, bias)
    return {
        "method": "l2-logistic-regression on standardised frozen features (L-BFGS, float64)",
        "l2": L2,
        "iterations": ITERATIONS,
        "parameters": int(weight.numel() + bias.numel()),
    }


def load_task_splits(model: TaskGraphModel, spec: TaskSpec, index: int) -> dict[str, TaskData]:
    """A task's train / val / test splits encoded for ``model`` (its data block's paths absolute), as task ``index``."""
    source = build_source(spec, ".")  # the block's paths are absolute
    vocab = model.base.get_input_embeddings().num_embeddings
    lm = model.lm_info()
    out = {}
    for split in ("train", "val", "test"):
        examples = source.load(split)
        out[split] = encode_examples(
            examples,
            index,
            tokenizer=model.tokenizer,
            max_length=model.spec.model.max_length,
            pad_id=tokenizer_pad_id(model.tokenizer),
            vocab_size=vocab,
            target=None if lm is None else lm.for_task(spec),
        )
    return out


def subset_rows(data: TaskData, rows: list[int]) -> TaskData:
    idx = torch.tensor(rows, dtype=torch.long)  # [N]
    lengths = data.lengths[idx]  # [N]
    width = int(lengths.max())
    targets = None if data.targets is None else data.targets[idx].clone()  # [N, T]
    return dataclasses.replace(
        data, ids=data.ids[idx, :width].clone(), lengths=lengths, labels=data.labels[idx].clone(), targets=targets
    )
