"""What the frozen base says about a task: the description and examples blocks of the graph router's side features.

    fill_task_features(model, spec, train_data, base_dir)   # before training: every task's blocks
    embed_sequences(model, [[ids], ...])                    # [n, D]: one embedding per token sequence

A sequence's embedding is the **frozen base's** last hidden state (the trunk a head pools: the encoder of an
encoder-decoder, the decoder's trunk of a causal LM), mean-pooled over its tokens, with every adapter closed — the
same numbers before and after training, so a task attached later is embedded as the trained tasks were. A task's
``description`` block embeds its description (the source's token ids when it gives them —
:meth:`~taskgraph.data.base.Source.description_ids` — else the ``description:`` text through the tokenizer); its
``examples`` block is the mean embedding of its first ``router.examples`` training inputs (their labels unread).
The math of the blocks and how the router reads them: :mod:`taskgraph.routing.task_features`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from taskgraph.adapters.context import BatchRouting
from taskgraph.errors import ModelError
from taskgraph.model.lm_base import hidden_trunk
from taskgraph.precision import at_least_fp32
from taskgraph.routing.base import Routing

if TYPE_CHECKING:
    from taskgraph.data.task_data import TaskData
    from taskgraph.model.taskgraph_model import TaskGraphModel
    from taskgraph.spec.models import Spec

BATCH = 64  # sequences per forward


@torch.no_grad()
def embed_sequences(model: TaskGraphModel, sequences: Sequence[Sequence[int]]) -> Tensor:
    """``[n, D]`` float32: each token-id sequence's mean-pooled last hidden state of the frozen base, every adapter
    closed, in eval mode (the model's mode is restored after)."""
    if not sequences or any(len(s) == 0 for s in sequences):
        raise ModelError("embed_sequences: give one or more non-empty token-id sequences")
    trunk, device = hidden_trunk(model.base), model.device
    was_training = model.training
    model.eval()
    try:
        out = []
        for start in range(0, len(sequences), BATCH):
            chunk = sequences[start : start + BATCH]
            width = max(len(s) for s in chunk)
            ids = torch.zeros(len(chunk), width, dtype=torch.long)  # [b, S]
            mask = torch.zeros(len(chunk), width, dtype=torch.long)  # [b, S]
            for row, seq in enumerate(chunk):
                ids[row, : len(seq)] = torch.as_tensor(list(seq), dtype=torch.long)
                mask[row, : len(seq)] = 1
            ids, mask = ids.to(device), mask.to(device)
            with model.context.use(_closed(model, len(chunk), device)):
                hidden = at_least_fp32(trunk(input_ids=ids, attention_mask=mask).last_hidden_state)  # [b, S, D]
            weights = mask[..., None].float()  # [b, S, 1]
            out.append(((hidden * weights).sum(1) / weights.sum(1)).cpu())  # [b, D]
        return torch.cat(out)  # [n, D]
    finally:
        model.train(was_training)


def _closed(model: TaskGraphModel, batch: int, device: torch.device) -> BatchRouting:
    """A routing under which every adapter is closed (gates 0): the base alone."""
    layers, heads, skills = model.router.num_layers, model.router.heads, model.router.skills
    gates = torch.zeros(1, layers, device=device)  # [1, L]
    weights = torch.full((1, layers, heads, skills), 1.0 / skills, device=device)  # [1, L, H, K]
    return BatchRouting(Routing(gates, weights), torch.zeros(batch, dtype=torch.long, device=device), None)


def description_tokens(model: TaskGraphModel, text: str | Sequence[int] | None, task: str) -> list[int] | None:
    """A description as token ids: given ids as they are, text through the model's tokenizer; None stays None."""
    if text is None:
        return None
    if not isinstance(text, str):
        return [int(i) for i in text]
    if model.tokenizer is None:
        raise ModelError(
            f"task {task!r}: its description is text but the model has no tokenizer; give model.tokenizer, or the "
            "description as the base's token ids (a source's description_ids)"
        )
    ids = model.tokenizer(text, add_special_tokens=True, truncation=True, max_length=model.spec.model.max_length)
    return list(ids["input_ids"])


def task_descriptions(model: TaskGraphModel, spec: Spec, base_dir: str | Path) -> list[list[int] | None]:
    """Every task's description as token ids: its source's ``description_ids`` when it has them, else its
    ``description:`` text tokenized; None for a task with neither."""
    from taskgraph.data.base import build_source

    out = []
    for task in spec.tasks:
        ids = build_source(task, base_dir).description_ids() if task.data is not None else None
        out.append(ids if ids is not None else description_tokens(model, task.description, task.name))
    return out


def example_inputs(data: TaskData, limit: int) -> list[list[int]]:
    """The first ``limit`` inputs of a task's split as token-id lists (padding cut by their lengths)."""
    n = min(limit, len(data))
    return [data.ids[row, : int(data.lengths[row])].tolist() for row in range(n)]


def fill_task_features(
    model: TaskGraphModel, spec: Spec, train_data: Sequence[TaskData], base_dir: str | Path
) -> list[str]:
    """Compute the description and examples blocks of every trained task into the router (``router.features``);
    returns the blocks filled (none for a router without side features).

    Raises:
        ModelError: ``description`` is a feature but no task has a description.
    """
    kinds = [kind for kind in model.router.side_kinds if kind in ("description", "examples")]
    filled = []
    if "description" in kinds:
        texts = task_descriptions(model, spec, base_dir)
        missing = [t.name for t, ids in zip(spec.tasks, texts) if ids is None]
        if len(missing) == len(texts):
            raise ModelError(
                "router.features has description but no task has one: give each task a description: line, or drop "
                "description from router.features"
            )
        known = [i for i, ids in enumerate(texts) if ids is not None]
        rows = embed_sequences(model, [texts[i] for i in known])  # [n, D]
        model.router.side.set_block("description", rows, known)
        if missing:  # a task with no description reads as the average one (standardised: 0)
            gaps = [i for i, ids in enumerate(texts) if ids is None]
            model.router.side.set_block("description", rows.mean(0, keepdim=True).expand(len(gaps), -1), gaps)
        filled.append("description")
    if "examples" in kinds:
        limit = model.router.params.examples
        rows = torch.stack([embed_sequences(model, example_inputs(data, limit)).mean(0) for data in train_data])
        model.router.side.set_block("examples", rows, [data.task_id for data in train_data])  # [T, D]
        filled.append("examples")
    return filled
