"""The merged model: one LoRA for every task, no routing, every merged task's head.

It is an ordinary :class:`TaskGraphModel` with the ``shared`` router (one skill per module, every gate
open), so ``taskgraph eval / predict / export`` read a merged run like any other: the spec keeps the
sources' ``model`` and ``training`` sections and the merged tasks (data blocks with absolute paths); the
adapters are one rank-R LoRA per module, ``R`` the largest merged rank (smaller ones padded with zeros,
exact), ``alpha = R`` so the scaling is 1 and ``B`` holds the whole update.

:func:`plain_merged_base` writes the same update into the base weights instead: a plain transformers model
with zero adapter overhead (``--fold-into-base``).

The merged spec decides which base loads (:func:`~taskgraph.model.base.load_base`): the language model itself when a
merged task generates, else the base of a classifier. Merging only the classification tasks of a language-model
run therefore builds the merged model on the classifier's base holding the LM's weights (:func:`classifier_base`:
a causal LM's trunk, an encoder-decoder's encoder), its modules' updates found under the LM's names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from taskgraph.merge.lowrank import LowRank
from taskgraph.merge.params import MergeError
from taskgraph.merge.sources import MergeSources
from taskgraph.model import TaskGraphModel, unload
from taskgraph.model.base import ENCODER_CLASSES
from taskgraph.model.lm_base import lm_kind_of
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
    model = TaskGraphModel(merged_spec(sources, rank, name), base=merged_base(sources), tokenizer=source.tokenizer)
    model.to(source.device)
    updates = for_model(model, merged)
    for module, layer in model.adapted:
        update = updates[module].padded(rank)  # A [R, d_in], B [d_out, R]
        layer.A.copy_(update.A.T[None, None].to(layer.A))  # [1, 1, d_in, R]
        layer.B.copy_(update.B.T[None, None].to(layer.B))  # [1, 1, R, d_out]
    for head, task in zip(model.heads.heads, sources.tasks):
        head.weight.copy_(task.head_weight)
        head.bias.copy_(task.head_bias)
    return model.eval()


@torch.no_grad()
def plain_merged_base(model: TaskGraphModel, merged: Mapping[str, LowRank]) -> nn.Module:
    """A plain copy of the base with every module's merged update added into its weight (Conv1D: transposed).

    Raises:
        MergeError: the base is quantized (``model.quantize``): an update is not folded into int8 / nf4 weights.
    """
    check_foldable(model)
    base = unload(model)
    updates = for_model(model, merged)
    for name, layer in model.adapted:
        if name not in updates:
            continue
        module = base.get_submodule(name)
        delta = updates[name].dense().to(module.weight)  # [d_out, d_in]
        module.weight.add_(delta.T if layer.fan_in_fan_out else delta)
    return base.eval()


def check_foldable(model: TaskGraphModel) -> None:
    """MergeError when ``model``'s base is quantized: ``--fold-into-base`` would round the update away."""
    kind = model.spec.model.quantize
    if kind != "none":
        raise MergeError(
            f"--fold-into-base: the base is quantized (model.quantize: {kind}), and adding the merged update into "
            f"{kind} weights would round most of it away, so taskgraph does not fold into a quantized base; merge "
            "without --fold-into-base (the merged run keeps the update as one LoRA on the quantized base), then "
            "export it (taskgraph export RUN --format peft) and merge that into the full-precision base"
        )


def merged_base(sources: MergeSources) -> nn.Module:
    """A copy of the sources' plain base — as the merged spec loads it: :func:`classifier_base` of a language model
    when no merged task generates."""
    base = unload(sources.model)
    if sources.model.lm_kind is None or any(t.spec.generative for t in sources.tasks):
        return base
    return classifier_base(base)


@torch.no_grad()
def classifier_base(lm: nn.Module) -> nn.Module:
    """The base a spec of classification tasks builds from ``lm``'s config, holding ``lm``'s weights: a causal LM's
    trunk (``GPT2Model`` of ``GPT2LMHeadModel``), an encoder-decoder's encoder model (``T5EncoderModel``).

    Raises:
        MergeError: an encoder-decoder whose encoder taskgraph does not load alone (every task must then generate).
    """
    if lm_kind_of(lm) == "causal":
        return lm.base_model
    config = lm.config
    if config.model_type not in ENCODER_CLASSES:
        raise MergeError(
            f"the tasks chosen all classify, so the merged run would load the encoder of the {config.model_type!r} "
            f"language model alone, which taskgraph does for {sorted(ENCODER_CLASSES)} only; merge a generative task "
            "of the run with them (--tasks)"
        )
    import transformers

    weight = next(lm.parameters())
    encoder = getattr(transformers, ENCODER_CLASSES[config.model_type])(config).to(weight.device, weight.dtype)
    state = lm.state_dict()
    encoder.load_state_dict({key: state[key] for key in encoder.state_dict()})
    return encoder


def for_model(model: TaskGraphModel, merged: Mapping[str, LowRank]) -> dict[str, LowRank]:
    """``merged`` under ``model``'s adapted module names: the same name, or the one source name ending in
    ``.<name>`` (the merged model's base is a source language model's trunk: ``h.0.attn.c_attn`` is the LM's
    ``transformer.h.0.attn.c_attn``). Modules ``merged`` lacks are left out."""
    out: dict[str, LowRank] = {}
    for name in model.adapted_names:
        found = [name] if name in merged else [key for key in merged if key.endswith(f".{name}")]
        if len(found) > 1:
            raise MergeError(f"adapted module {name!r} of the merged model matches {found[:3]} of the sources")
        if found:
            out[name] = merged[found[0]]
    return out


def scoring_model(sources: MergeSources) -> TaskGraphModel:
    """The merged model with every adapter zero: a merge's generative tasks are scored on it, with the merged
    update written into the weights its adapters wrap (:class:`~taskgraph.merge.evaluate.MergedScorer`)."""
    zero = {
        name: LowRank(torch.zeros(1, d_in), torch.zeros(d_out, 1)) for name, (d_out, d_in) in sources.shapes.items()
    }
    return build_merged_model(sources, zero)


def task_heads(sources: MergeSources) -> Sequence[tuple[torch.Tensor, torch.Tensor]]:
    """``[(weight, bias)]`` in task order."""
    return [(t.head_weight, t.head_bias) for t in sources.tasks]
