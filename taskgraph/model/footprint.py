"""What a spec's model will be before any weight exists: the base built on the meta device (no memory), the
adapters' injection plan, parameter counts and an estimate of the memory training needs.

    plan = plan_model(spec)              # ModelError for what would fail when the model is built
    plan.check_memory(spec)              # ModelError when the estimate exceeds the machine's free memory

``taskgraph validate`` and ``taskgraph train`` run it before anything is allocated (a 131,072-wide hidden
size is refused in milliseconds, not after the machine ran out of memory); a checkpoint's manifest is
checked with it against the tensors the checkpoint really holds (:mod:`taskgraph.model.checkpoint`).

The memory estimate (float32): every parameter once, the trainable ones three times more (gradient, AdamW's
two moments), and the activations of one batch after the Megatron estimate ``s·b·h·(34 + 5·a·s/h)`` bytes
per layer in half precision, doubled for float32 (Korthikanti et al., 2022); under
``training.gradient_checkpointing`` every layer keeps only its float32 input ``4·s·b·h`` bytes and one layer's
activations are alive at a time. It is an estimate: within a factor of about two of what torch allocates, good
enough to refuse a spec that cannot fit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from taskgraph.errors import ModelError
from taskgraph.spec.models import Spec

MEMORY_CHECK_ENV = "TASKGRAPH_MEMORY_CHECK"  # "0" turns the free-memory check off
GiB = 1024**3


@dataclass(frozen=True)
class AdaptedModule:
    """One linear module the adapters wrap: its qualified name in the base and its shape."""

    name: str
    d_in: int
    d_out: int


@dataclass(frozen=True)
class Footprint:
    """The model a spec describes, counted without building it."""

    base_class: str
    base_params: int
    hidden: int
    layers: int
    attention_heads: int
    vocab_size: int | None
    max_positions: int | None
    adapted: tuple[AdaptedModule, ...]
    skills: int
    adapter_params: int
    router_params: int
    head_params: int

    @property
    def trainable_params(self) -> int:
        """Adapters, router and heads."""
        return self.adapter_params + self.router_params + self.head_params

    @property
    def total_params(self) -> int:
        return self.base_params + self.trainable_params

    def train_bytes(self, batch_size: int, seq_len: int, checkpointing: bool = False) -> int:
        """Estimated bytes of one training step in float32 (see the module docstring); ``checkpointing``: under
        gradient checkpointing."""
        weights = 4 * self.total_params
        optimizer = 12 * self.trainable_params  # gradient + AdamW m, v
        s, b, h, a = seq_len, batch_size, max(self.hidden, 1), max(self.attention_heads, 1)
        per_layer = int(2 * s * b * h * (34 + 5 * a * s / h))
        activations = self.layers * 4 * s * b * h + per_layer if checkpointing else self.layers * per_layer
        return weights + optimizer + activations

    def check_memory(self, spec: Spec, device: str = "cpu") -> None:
        """ModelError when training ``spec`` needs more memory than ``device`` has free (``TASKGRAPH_MEMORY_CHECK=0``
        turns the check off)."""
        if os.environ.get(MEMORY_CHECK_ENV, "1").strip() == "0":
            return
        need = self.train_bytes(spec.training.batch_size, spec.model.max_length, spec.training.gradient_checkpointing)
        have, where = available_memory(device)
        if have is not None and need > have:
            raise ModelError(
                f"training this spec needs about {need / GiB:,.1f} GiB ({self.total_params:,} parameters, "
                f"{self.trainable_params:,} trainable; batch {spec.training.batch_size} × {spec.model.max_length} "
                f"tokens) but {where} has {have / GiB:,.1f} GiB free; lower model size, adapters.rank / skills, "
                f"training.batch_size or model.max_length ({MEMORY_CHECK_ENV}=0 skips this check)"
            )

    def __repr__(self) -> str:
        return (
            f"Footprint({self.base_class}, base={self.base_params:,}, adapted={len(self.adapted)}, "
            f"K={self.skills}, trainable={self.trainable_params:,})"
        )


def available_memory(device: str = "cpu") -> tuple[int | None, str]:
    """Free bytes on ``device`` (None when unknown) and a name for it."""
    if str(device).startswith("cuda") and torch.cuda.is_available():
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free), f"the GPU {device}"
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "this machine"
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "this machine"
    except (ValueError, OSError, AttributeError):
        return None, "this machine"


def meta_base(spec: Spec) -> nn.Module:
    """The base model of ``spec.model`` with every tensor on the meta device (its config is read, no weight)."""
    from taskgraph.model.base import (
        _check_encoder_decoder,
        _instantiate,
        build_config,
        config_with_vocabulary,
        load_tokenizer,
        resolve_path,
    )

    model_spec = spec.model
    if model_spec.config is not None:
        tokenizer = (
            load_tokenizer(model_spec.tokenizer)
            if model_spec.tokenizer and "vocab_size" not in model_spec.config
            else None
        )
        config, where = build_config(config_with_vocabulary(model_spec.config, tokenizer)), "model.config"
    else:
        from transformers import AutoConfig

        assert model_spec.path is not None
        directory = resolve_path(model_spec.path)
        where = f"model path {model_spec.path!r}"
        try:
            config = AutoConfig.from_pretrained(directory, local_files_only=True)
        except (OSError, ValueError, TypeError) as exc:
            raise ModelError(
                f"{where}: not a transformers model directory (reading config.json failed: {exc})"
            ) from None
    generative = any(t.generative for t in spec.tasks)
    if model_spec.warm_start == "encoder-decoder":
        from transformers import EncoderDecoderConfig

        decoder = config.to_dict()
        decoder.update(is_decoder=True, add_cross_attention=True)
        config = EncoderDecoderConfig.from_encoder_decoder_configs(config, type(config).from_dict(decoder))
    _check_encoder_decoder(config, where, generative)
    try:
        with torch.device("meta"):
            return _instantiate(config, generative)
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, RuntimeError, AssertionError) as exc:
        raise ModelError(
            f"{where}: transformers cannot build a {config.model_type!r} model from it: {type(exc).__name__}: {exc}"
        ) from None


def plan_model(spec: Spec) -> Footprint:
    """Count the model ``spec`` describes and check what building it would check, allocating nothing.

    Raises:
        ModelError: an unknown model type or a config transformers rejects (e.g. attention heads that do not
            divide the hidden size), a bad target-module regex, no module matching ``target_modules``,
            ``adapters.splits`` not dividing an adapted module's dimensions, ``model.max_length`` above the
            model's position embeddings, ``training.gradient_checkpointing`` on a base that does not support it.
    """
    from taskgraph.adapters.inject import TargetMatcher, linear_module_names
    from taskgraph.adapters.routed_lora import ADAPTABLE, linear_dims
    from taskgraph.model.heads import head_widths
    from taskgraph.registry import ROUTERS

    base = meta_base(spec)
    matcher = TargetMatcher(list(spec.model.target_modules))
    found = [(n, m) for n, m in base.named_modules() if n and isinstance(m, ADAPTABLE) and matcher(n)]
    if not found:
        names = linear_module_names(base)
        sample = sorted({n.rsplit(".", 1)[-1] for n in names})[:20]
        raise ModelError(
            f"model.target_modules {list(spec.model.target_modules)}: no linear module of the "
            f"{type(base).__name__} matches; its linear modules are named {sample}"
        )
    if spec.training.gradient_checkpointing and not getattr(base, "supports_gradient_checkpointing", False):
        raise ModelError(
            f"training.gradient_checkpointing: {type(base).__name__} does not support gradient checkpointing; "
            "set training.gradient_checkpointing: false"
        )
    adapted = tuple(AdaptedModule(n, *linear_dims(m)) for n, m in found)
    heads = spec.adapters.splits
    uneven = [a for a in adapted if a.d_in % heads or a.d_out % heads]
    if uneven:
        a = uneven[0]
        raise ModelError(
            f"adapters.splits {heads} must divide the input and output width of every adapted module; "
            f"{a.name} is {a.d_in} → {a.d_out}"
        )
    config = getattr(base, "config", None)
    max_positions = check_positions(spec, config)
    router_cls = ROUTERS.get(spec.router.kind).obj
    tasks = len(spec.tasks)
    skills = router_cls.inventory_size(spec.adapters.skills, tasks)
    rank = spec.adapters.rank
    copies = 2 if spec.adapters.linearized else 1  # L-LoRA keeps the frozen initial A0, B0 beside A, B
    adapter_params = sum(copies * skills * rank * (a.d_in + a.d_out) for a in adapted)
    hidden = _first_int(config, "hidden_size", "d_model", "n_embd") or adapted[0].d_in
    labels = sum(head_widths(spec.tasks))
    return Footprint(
        base_class=type(base).__name__,
        base_params=sum(p.numel() for p in base.parameters()),
        hidden=hidden,
        layers=_first_int(config, "num_hidden_layers", "n_layer", "num_layers") or 1,
        attention_heads=_first_int(config, "num_attention_heads", "n_head", "num_heads") or 1,
        vocab_size=_first_int(config, "vocab_size"),
        max_positions=max_positions,
        adapted=adapted,
        skills=skills,
        adapter_params=adapter_params,
        router_params=_router_params(spec, len(adapted), skills),
        head_params=hidden * labels + labels,
    )


def _router_params(spec: Spec, layers: int, skills: int) -> int:
    """Routing rows of every task, layer, head and skill, plus the graph router's embeddings and GNN (estimate)."""
    tasks, heads = len(spec.tasks), spec.adapters.splits
    rows = tasks * layers * heads * skills
    gnn = getattr(spec.router, "gnn", None) or spec.router.own_fields().get("gnn") or {}
    width = int(gnn.get("hidden", 64)) if isinstance(gnn, dict) else 64
    if spec.router.kind == "graph":
        return (tasks + layers * skills + layers) * width + 8 * width * width + tasks * min(tasks, 64)
    return rows


def _first_int(config: Any, *names: str) -> int | None:
    for name in names:
        value = getattr(config, name, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def check_positions(spec: Spec, config: Any) -> int | None:
    """The base's position embeddings (``config``: its config; None when it says none); ModelError when
    ``model.max_length`` (+ the longest ``max_new_tokens`` on a decoder) passes them."""
    max_positions = _first_int(config, "max_position_embeddings", "n_positions", "n_ctx")
    if max_positions is None and getattr(config, "encoder", None) is not None:  # a BERT2BERT: the prompt's encoder
        max_positions = _first_int(config.encoder, "max_position_embeddings", "n_positions", "n_ctx")
    if max_positions is not None and spec.model.max_length > max_positions:
        raise ModelError(
            f"model.max_length {spec.model.max_length} is longer than the model's "
            f"{max_positions} position embeddings; lower model.max_length"
        )
    new_tokens = max((t.max_new_tokens for t in spec.tasks if t.generative), default=0)
    causal = new_tokens and not getattr(config, "is_encoder_decoder", False)
    if causal and max_positions is not None and spec.model.max_length + new_tokens > max_positions:
        raise ModelError(
            f"model.max_length {spec.model.max_length} + max_new_tokens {new_tokens} (a prompt and its "
            f"target share a decoder's {max_positions} positions) is too long; lower either"
        )
    return max_positions
