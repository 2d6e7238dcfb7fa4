"""``attach_task``: a new task joins a trained graph router from what is known about it — no gradient step.

    index = model.attach_task("new", description="answer yes or no about sports", examples=["...", "..."])
    index = model.attach_task("new", relations={"sports": 0.8})          # from its relations alone

What it reads, by the router's ``router.features`` (:mod:`taskgraph.routing.task_features`):

* ``description`` — text (through the tokenizer) or the base's token ids, embedded by the frozen base
  (:func:`~taskgraph.model.task_features.embed_sequences`);
* ``examples`` — a few unlabeled inputs (texts, or token-id lists), the mean of their embeddings;
* ``relations`` — ``{trained task: weight in [0, 1]}``; when none are given they are **computed** from the features:
  the ``k`` trained tasks whose description / examples blocks are closest by cosine (``k``: ``relations.top_k``).

The new node's features (a zero free residual) go through the GNN with messages from its neighbours; its routing
is the read-out of that node, and no trained task's routing changes. A generative task (free text, or ``choices``
by rank classification) is served at once; a classification task gets a fresh head (fit it on a few labelled
examples: ``taskgraph adapt``'s head fit). The spec records the task, its relations and ``router.zero_shot``; the
side features are in the state dict, so a saved and loaded model routes it identically.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from taskgraph.errors import ModelError
from taskgraph.model.task_features import description_tokens, embed_sequences

if TYPE_CHECKING:
    from taskgraph.model.taskgraph_model import TaskGraphModel

Evidence = str | Sequence[int]  # a text, or the base's token ids


def attach_task(
    model: TaskGraphModel,
    name: str,
    *,
    description: Evidence | None = None,
    examples: Sequence[Evidence] | None = None,
    relations: Mapping[str, float] | None = None,
    k: int | None = None,
    num_labels: int = 2,
    family: str | None = None,
    data: Mapping[str, Any] | None = None,
    generation: Mapping[str, Any] | None = None,
) -> int:
    """Attach task ``name`` to ``model``'s graph router from its description, examples and / or relations; returns
    its id (see the module docstring).

    Raises:
        ModelError: not a graph router; evidence the router does not read (a description without ``description``
            among ``router.features``, ...); nothing to route from; an unknown task in ``relations``.
    """
    router = model.router
    if not hasattr(router, "nearest_tasks"):
        raise ModelError(
            f"attach needs the graph router (router.kind: graph); this run's router is {model.spec.router.kind!r}, "
            "which keeps one learned routing row per trained task: adapt it few-shot (taskgraph adapt) instead"
        )
    side = side_rows(model, name, description, examples)
    relate = dict(relations or {})
    for other, weight in relate.items():
        if other not in model.task_names[: router.relations.num_trained]:
            raise ModelError(
                f"attach {name!r}: relation to {other!r}, not a trained task of the run {model.task_names}"
            )
        if not 0.0 <= float(weight) <= 1.0:
            raise ModelError(f"attach {name!r}: relation {other}={weight}: a relation weight lies in [0, 1]")
    if not relate:
        if not side:
            raise ModelError(
                f"attach {name!r}: nothing to route it from; give its relations, or a description / examples when "
                f"router.features reads them (it is {router.params.features})"
            )
        near = router.nearest_tasks(side, k if k is not None else model.spec.relations.top_k)
        if not near:
            raise ModelError(f"attach {name!r}: no trained task's features point the same way; give its relations")
        relate = {model.task_names[i]: w for i, w in near.items()}
    text = description if isinstance(description, str) else None
    return model.add_task_from_relations(
        name,
        num_labels,
        {other: float(w) for other, w in relate.items()},
        text,
        family=family,
        data=data,
        generation=generation,
        side=side or None,
    )


def side_rows(
    model: TaskGraphModel, name: str, description: Evidence | None, examples: Sequence[Evidence] | None
) -> dict[str, Tensor]:
    """The new task's raw description and examples blocks ``{kind: [D]}``, as the trained tasks' were computed."""
    kinds = model.router.side_kinds
    out: dict[str, Tensor] = {}
    for kind, given in (("description", description), ("examples", examples)):
        if given is None:
            continue
        if kind not in kinds:
            raise ModelError(
                f"attach {name!r}: a {kind} was given but router.features is {model.router.params.features}; the "
                f"router reads no {kind} (train with {kind} in router.features)"
            )
    if description is not None:
        ids = description_tokens(model, description, name)
        out["description"] = embed_sequences(model, [ids])[0]  # [D]
    if examples is not None:
        seqs = [description_tokens(model, e, name) for e in examples]
        if not seqs:
            raise ModelError(f"attach {name!r}: examples is empty; give one or more inputs, or none at all")
        limit = model.router.params.examples
        out["examples"] = embed_sequences(model, seqs[:limit]).mean(0)  # [D]
    return {kind: row.to(torch.float32) for kind, row in out.items()}
