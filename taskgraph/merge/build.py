"""The merged model: one LoRA for every task, no routing, every merged task's head.

It is an ordinary :class:`TaskGraphModel` with the ``shared`` router (one skill per module, every gate
open), so ``taskgraph eval / predict / export`` read a merged run like any other: the spec keeps the
sources' ``model`` and ``training`` sections and the merged tasks (data blocks with absolute paths); the
adapters are one rank-R LoRA per module, ``R`` the largest merged rank (smaller ones padded with zeros,
exact), ``alpha = R`` so the scaling is 1 and ``B`` holds the whole update.

:func:`plain_merged_base` writes the same update into the base weights instead: a plain transformers model
with zero adapter overhead (``--fold-into-base``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from taskgraph.merge.lowrank import LowRank
from taskgraph.merge.sources import MergeSources
from taskgraph.model import TaskGraphModel, unload
from taskgraph.spec.models import Spec


def merged_spec(sources: MergeSources, rank: int, name: str | None = None) -> Spec:
    """The merged run's spec: the sources' model and training, ``shared`` router, rank-``rank`` adapters."""
    source = sources.model.spec
    kept = set(sources.task_names)
    declared = [list(r) for r in source.relations.declared if r[0] in kept and r[1] in kept]
    data: dict[str, Any] = {
        "name": name or f"{source.name}-merged",
        "model": source.model.model_dump(mode="json", exclude_none=True),
        "adapters": {"rank": rank, "alpha": float(rank), "dropout": 0.0, "skills": 1, "splits": 1, "linearized": False},
        "router": {"kind": "shared"},
        "relations": {"declared": declared, "learn": False},
        "tasks": [t.spec.model_dump(mode="json", exclude_none=True) for t in sources.tasks],
        "training": source.training.model_dump(mode="json", exclude_none=True),
    }
    return Spec.model_validate(data)


def merged_rank(merged: Mapping[str, LowRank]) -> int:
    """R: the largest rank among the merged modules (at least 1)."""
    return max([1, *(u.rank for u in merged.values())])


@torch.no_grad()
def build_merged_model(sources: MergeSources, merged: Mapping[str, LowRank], name: str | None = None) -> TaskGraphModel:
    """A :class:`TaskGraphModel` (``shared`` router) whose one LoRA per module is ``merged``, with every task's head."""
    rank = merged_rank(merged)
    source = sources.model
    model = TaskGraphModel(merged_spec(sources, rank, name), base=unload(source), tokenizer=source.tokenizer)
    model.to(source.device)
    for module, layer in model.adapted:
        update = merged[module].padded(rank)  # A [R, d_in], B [d_out, R]
        layer.A.copy_(update.A.T[None, None].to(layer.A))  # [1, 1, d_in, R]
        layer.B.copy_(update.B.T[None, None].to(layer.B))  # [1, 1, R, d_out]
    for head, task in zip(model.heads.heads, sources.tasks):
        head.weight.copy_(task.head_weight)
        head.bias.copy_(task.head_bias)
    return model.eval()


@torch.no_grad()
def plain_merged_base(model: TaskGraphModel, merged: Mapping[str, LowRank]) -> nn.Module:
    """A plain copy of the base with every module's merged update added into its weight (Conv1D: transposed)."""
    base = unload(model)
    for name, layer in model.adapted:
        if name not in merged:
            continue
        module = base.get_submodule(name)
        delta = merged[name].dense().to(module.weight)  # [d_out, d_in]
        module.weight.add_(delta.T if layer.fan_in_fan_out else delta)
    return base.eval()


def task_heads(sources: MergeSources) -> Sequence[tuple[torch.Tensor, torch.Tensor]]:
    """``[(weight, bias)]`` in task order."""
    return [(t.head_weight, t.head_bias) for t in sources.tasks]
