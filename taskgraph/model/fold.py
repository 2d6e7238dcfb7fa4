"""One task of a routed model as a plain LoRA (``fold``) or as plain merged weights (``merge_task``).

Folding a routed task (docs/methods.md §4): at every adapted layer the task's mixture weights collapse
the inventory to one LoRA, ``A_t = concat_h Σ_k w[t,h,k] A[h,k]`` and ``B_t`` likewise, so
``W x + s · B_t A_t x`` is exactly what the routed model computes for that task. A layer whose gate
is closed for the task contributes nothing and is dropped. Merging then adds ``s · B_t A_t`` into
W and removes every adapter module: a plain transformers model with zero adapter overhead.

A quantized base (``model.quantize``) is not merged into: its int8 / nf4 weights would round most of ``ΔW`` away.
``merge_task`` refuses it with a message saying what to do instead, unless asked ``dequantize=True``: then the
plain model is a full-precision copy of the de-quantized base with ``ΔW`` added — what the quantized routed model
computes, up to rounding (:mod:`taskgraph.model.quantize`). ``fold`` (the exact LoRA) works on any base.

``merge_task`` was called ``merge_and_unload``; that name still works, with a :class:`TaskgraphWarning`. It is
not PEFT's ``merge_and_unload()``, which folds a model's one adapter into that model itself and returns it: a routed
model holds every task's adapter at once, so merging needs a task and returns a copy, leaving the routed model
serving every task.
"""

from __future__ import annotations

import copy
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from taskgraph.adapters.routed_lora import RoutedLoRALinear
from taskgraph.errors import ModelError, TaskgraphWarning
from taskgraph.model.lm_base import hidden_trunk
from taskgraph.model.modes import inference_mode_of
from taskgraph.model.pooling import pool
from taskgraph.model.quantize import copy_base, dequantize_base, fold_refusal
from taskgraph.routing.base import Routing

if TYPE_CHECKING:
    from taskgraph.model.taskgraph_model import TaskGraphModel


@dataclass
class FoldedModule:
    """One adapted module's plain LoRA, in PEFT's orientation.

    Args:
        A: ``[r', d_in]`` (PEFT ``lora_A.weight``).
        B: ``[d_out, r']`` (PEFT ``lora_B.weight``); the task's gate is already folded in.
        scaling: ``alpha / rank``; the module's update is ``ΔW = scaling · B @ A``.
        fan_in_fan_out: True when the base module stores its weight ``[in, out]`` (GPT-2 Conv1D).
    """

    A: Tensor
    B: Tensor
    scaling: float
    fan_in_fan_out: bool = False

    @property
    def rank(self) -> int:
        return self.A.shape[0]

    def delta_weight(self) -> Tensor:
        """``ΔW [d_out, d_in]`` (nn.Linear orientation)."""
        return self.scaling * (self.B @ self.A)  # [d_out, d_in]

    def __repr__(self) -> str:
        return (
            f"FoldedModule(A={tuple(self.A.shape)}, B={tuple(self.B.shape)}, scaling={self.scaling:g}"
            f"{', fan_in_fan_out' if self.fan_in_fan_out else ''})"
        )


@dataclass
class FoldedLoRA:
    """A task of a routed model as a plain LoRA plus that task's head.

    Args:
        task: the task's name.
        rank, alpha: the adapters' nominal rank and alpha (a module's rank is ``module.rank``).
        modules: qualified module name inside the base -> :class:`FoldedModule`, in layer order;
            layers whose gate is closed for the task are absent.
        head_weight: ``[C, D]`` and head_bias ``[C]``: the task's classification head.
        pooling: how the base's hidden states are pooled before the head.
        dropped: names of the adapted modules left out because their gate is closed.
    """

    task: str
    rank: int
    alpha: float
    modules: dict[str, FoldedModule]
    head_weight: Tensor
    head_bias: Tensor
    pooling: str
    dropped: list[str] = field(default_factory=list)

    @property
    def target_modules(self) -> list[str]:
        return list(self.modules)

    def __repr__(self) -> str:
        return (
            f"FoldedLoRA(task={self.task!r}, modules={len(self.modules)}, dropped={len(self.dropped)}, "
            f"rank={self.rank}, alpha={self.alpha:g}, labels={self.head_weight.shape[0]}, "
            f"pooling={self.pooling!r})"
        )


class MergedTaskModel(nn.Module):
    """A plain transformers base (adapter merged into its weights) + one task's head.

    ``forward(input_ids, attention_mask)`` returns the task's logits ``[B, C]``: the same numbers
    as the routed model for that task, with no adapter module left in the tree.

    Args:
        base: the plain transformers model.
        head: the task's ``nn.Linear`` head.
        pooling: ``mean``, ``last`` or ``cls``.
        task: the task's name (for repr).
    """

    def __init__(self, base: nn.Module, head: nn.Linear, pooling: str, task: str) -> None:
        super().__init__()
        self.base = base
        self.head = head
        self.pooling = pooling
        self.task = task

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor | None = None, token_type_ids: Tensor | None = None
    ) -> Tensor:
        mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask  # [B, S]
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        trunk = hidden_trunk(self.base)  # the base; a causal LM's decoder trunk; an encoder-decoder's encoder
        hidden = trunk(input_ids=input_ids, attention_mask=mask, **extra).last_hidden_state  # [B, S, D]
        pooled = pool(self.pooling, hidden, mask)  # [B, D]
        return self.head(pooled.to(self.head.weight.dtype))  # [B, C]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(task={self.task!r}, base={type(self.base).__name__}, "
            f"head={self.head.in_features}->{self.head.out_features}, pooling={self.pooling!r})"
        )


@torch.no_grad()
def task_routing(model: TaskGraphModel, task: int | str) -> Routing:
    """The inference routing of one task: gates ``[1, L]``, weights ``[1, L, H, K]``."""
    index = model.task_index(task)
    with inference_mode_of(model.router):
        return model.router(torch.tensor([index], device=model.device))


@torch.no_grad()
def fold(model: TaskGraphModel, task: int | str) -> FoldedLoRA:
    """One task of ``model`` as a plain LoRA (exact; closed layers dropped) plus its head."""
    index = model.task_index(task)
    routing = task_routing(model, index)
    modules: dict[str, FoldedModule] = {}
    dropped: list[str] = []
    for name, layer in model.adapted:
        factors = layer.fold(routing.weights[0, layer.index], float(routing.gates[0, layer.index]))
        if factors is None:
            dropped.append(name)
            continue
        a_t, b_t = factors  # [r', d_in], [d_out, r']
        modules[name] = FoldedModule(a_t, b_t, layer.scaling, layer.fan_in_fan_out)
    head = model.heads.heads[index]
    spec = model.spec
    return FoldedLoRA(
        task=model.task_names[index],
        rank=spec.adapters.rank,
        alpha=spec.adapters.alpha,
        modules=modules,
        head_weight=head.weight.detach().clone(),
        head_bias=head.bias.detach().clone(),
        pooling=spec.model.pooling,
        dropped=dropped,
    )


def _replace(root: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, attr = name.rpartition(".")
    setattr(root.get_submodule(parent), attr, module)


@torch.no_grad()
def unload(model: TaskGraphModel) -> nn.Module:
    """A copy of the plain base model: every routed layer replaced by a copy of the module it wraps (a quantized base
    stays quantized, copied exactly)."""
    base = copy_base(model.base)
    for name, module in list(base.named_modules()):
        if isinstance(module, RoutedLoRALinear):
            _replace(base, name, module.base)
    return base


@torch.no_grad()
def merge_task(model: TaskGraphModel, task: int | str, *, dequantize: bool = False) -> MergedTaskModel:
    """A plain transformers model with ``task``'s adapter added into W, plus the task's head.

    The routed model is left unchanged (it still serves every task). Closed layers keep their
    base weight. The returned module tree holds no :class:`RoutedLoRALinear`.

    Raises:
        ModelError: the base is quantized (``model.quantize``) and ``dequantize`` is False; with ``dequantize=True``
            the returned base is a full-precision copy of the de-quantized base (see the module docstring).
    """
    index = model.task_index(task)
    quantized = model.spec.model.quantize
    if quantized != "none" and not dequantize:
        raise ModelError(fold_refusal(quantized, f"merge_task({task!r})"))
    routing = task_routing(model, index)
    base = dequantize_base(unload(model)) if quantized != "none" else unload(model)
    for name, layer in model.adapted:
        weights, gate = routing.weights[0, layer.index], float(routing.gates[0, layer.index])
        module = base.get_submodule(name)  # the copy of the module the layer wraps
        delta = layer.delta_weight(weights, gate).to(module.weight.dtype)  # [d_out, d_in]
        module.weight.add_(delta.T if layer.fan_in_fan_out else delta)
    head = copy.deepcopy(model.heads.heads[index])
    return MergedTaskModel(base, head, model.spec.model.pooling, model.task_names[index]).eval()


def merge_and_unload(model: TaskGraphModel, task: int | str) -> MergedTaskModel:
    """The old name of :func:`merge_task`: the same model, and a :class:`TaskgraphWarning` naming the new name."""
    warn_merge_and_unload()
    return merge_task(model, task)


def warn_merge_and_unload() -> None:
    """The warning of the old name, pointing at the caller of ``merge_and_unload`` (function or method)."""
    warnings.warn(
        TaskgraphWarning(
            "merge_and_unload(task) is renamed merge_task(task): the same plain model of one task merged into the base "
            "weights, a copy (the routed model keeps serving every task), unlike PEFT's merge_and_unload(), which "
            "folds a model's one adapter into the model itself; the old name still works"
        ),
        stacklevel=3,
    )


def save_plain(base: nn.Module, folder: str | os.PathLike[str], tokenizer: Any | None = None) -> Path:
    """A plain transformers model (and its tokenizer) saved with ``save_pretrained`` (safetensors), quietly,
    every file with the mode of a new file (:func:`give_usual_modes`)."""
    from transformers.utils import logging as hf_logging

    out = Path(folder)
    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Writing model shards" bar in the CLI's output
    try:
        base.save_pretrained(str(out), safe_serialization=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(str(out))
    finally:
        if shown:
            hf_logging.enable_progress_bar()
    give_usual_modes(out)
    return out


def give_usual_modes(folder: Path) -> None:
    """Give every file directly in ``folder`` the mode a new file gets (``0666`` less the umask: ``0644`` under
    the usual ``022``): transformers writes ``model.safetensors`` through a private temp file, ``0600``, which
    another user reading a shared export could not open."""
    mask = os.umask(0)
    os.umask(mask)
    for path in folder.iterdir():
        if path.is_file() and not path.is_symlink():
            os.chmod(path, 0o666 & ~mask)
