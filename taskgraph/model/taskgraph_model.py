"""TaskGraphModel: a frozen base transformer + routed LoRA inventories + a router + per-task heads.

One forward serves a batch that mixes tasks::

    tasks, inverse = torch.unique(task_ids, return_inverse=True)   # once per batch
    routing = router(tasks)                                         # [U, L] gates, [U, L, H, K] weights
    with context.use(BatchRouting(routing, inverse)):               # read by every RoutedLoRALinear
        hidden = base(input_ids, attention_mask).last_hidden_state  # [B, S, D]
    logits = heads(pool(hidden, attention_mask), tasks, inverse)    # [B, C_max]

The distinct tasks and the example → task index are computed once per batch, here, not in every
layer; the router is asked only for the U distinct tasks, so routing cost does not grow with T.

The model inherits the methods that add a task after training (:class:`~taskgraph.model.new_tasks.NewTasks`) and
those that save, load, fold and predict (:class:`~taskgraph.model.shortcuts.ModelShortcuts`).
"""

from __future__ import annotations

import difflib
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from taskgraph.adapters.context import BatchRouting, RoutingContext
from taskgraph.adapters.fused import FusedFactors
from taskgraph.adapters.inject import inject_adapters
from taskgraph.data.text2text_encoding import LMInfo
from taskgraph.errors import ModelError
from taskgraph.model.base import hidden_size, load_base
from taskgraph.model.checkpoint import base_fingerprint
from taskgraph.model.device import to_device
from taskgraph.model.grad_checkpointing import enable_gradient_checkpointing
from taskgraph.model.heads import TaskHeads, head_widths
from taskgraph.model.lm_base import check_logit_transform, end_token_id, hidden_trunk, is_decoder, lm_kind_of
from taskgraph.model.lm_forward import lm_forward
from taskgraph.model.lora_import import apply_imports
from taskgraph.model.new_tasks import NewTasks
from taskgraph.model.output import TaskGraphOutput, TaskIds
from taskgraph.model.pooling import pool
from taskgraph.model.quantize import quantize_base
from taskgraph.model.shortcuts import ModelShortcuts
from taskgraph.precision import at_least_fp32
from taskgraph.registry import ROUTERS
from taskgraph.routing.base import Router, Routing
from taskgraph.spec.models import Spec


class TaskGraphModel(NewTasks, ModelShortcuts, nn.Module):
    """A multi-task classifier whose adapters are mixed per task by a router.

    Args:
        spec: the run's spec (model, adapters, router, tasks).
        base: a ready base transformer (default: loaded from ``spec.model``). Its weights are frozen
            and its target modules are wrapped in place; with ``model.quantize`` its linear layers are quantized
            first, in place (:mod:`taskgraph.model.quantize`).
        tokenizer: the tokenizer :func:`~taskgraph.model.predict.predict` uses (default: the one
            that comes with ``spec.model``, if any). A plain attribute, settable later.
        import_adapters: write the PEFT LoRA folders of ``spec.adapters.imports`` into their slots
            (:mod:`taskgraph.model.lora_import`); :meth:`from_pretrained` skips it, the saved weights
            already hold them. (default: ``True``)

    Attributes:
        adapted: ``[(qualified module name, RoutedLoRALinear)]`` in layer order ``l = 0 .. L-1``.
        fuse_layers: compute every adapted layer's factors of a batch at once (:mod:`taskgraph.adapters.fused`,
            the default) instead of in each layer's forward; both give the same result.
        routing_seed: when set, the seed of the router's random draws (see :meth:`_route`). (default: None)
        router, heads: the router and the :class:`TaskHeads`.
        context: the :class:`RoutingContext` shared by every adapted layer.
    """

    def __init__(
        self, spec: Spec, base: nn.Module | None = None, tokenizer: Any | None = None, *, import_adapters: bool = True
    ) -> None:
        super().__init__()
        self.spec = spec
        generative = any(t.generative for t in spec.tasks)
        if base is None:
            loaded = load_base(spec.model, seed=spec.training.seed, generative=generative)
            base, tokenizer = loaded.model, tokenizer if tokenizer is not None else loaded.tokenizer
        self.tokenizer = tokenizer
        self.base = base
        self.lm_kind = lm_kind_of(
            base
        )  # "causal" | "seq2seq": a language model (lm_forward); None: a classifier's base
        if generative and self.lm_kind is None:
            raise ModelError(
                f"the spec has generate tasks but the base is a {type(base).__name__}, which has no LM "
                f"head; give a causal or seq2seq language model (transformers' AutoModelForCausalLM / "
                f"AutoModelForSeq2SeqLM)"
            )
        if self.lm_kind == "causal":
            check_logit_transform(base)
        # a decoder's trunk builds a key / value cache unless told not to
        self._decoder = is_decoder(getattr(base, "config", None))
        # QLoRA: the frozen base's linear layers quantized before the adapters wrap them (taskgraph.model.quantize)
        quantize_base(base, spec.model.quantize, fingerprint=base_fingerprint)
        self.context = RoutingContext()
        router_cls: type[Router] = ROUTERS.get(spec.router.kind).obj
        num_tasks = len(spec.tasks)
        skills = router_cls.inventory_size(spec.adapters.skills, num_tasks)
        self.adapted = inject_adapters(base, list(spec.model.target_modules), spec.adapters, skills, self.context)
        if not self.adapted:
            raise ModelError(
                f"model.target_modules {spec.model.target_modules}: no module of "
                f"{type(base).__name__} matched; nothing to adapt"
            )
        self.router = router_cls.from_spec(spec, len(self.adapted), skills)
        self.router.bind_base(hidden_size(base))
        self.fused = FusedFactors([layer for _, layer in self.adapted])
        self.fuse_layers = True  # every layer's factors at once per batch; False: each layer mixes its own (equal)
        self.routing_seed: int | None = None  # set: the router's random draws come from this seed (data parallel)
        self.heads = TaskHeads(hidden_size(base), head_widths(spec.tasks))
        self._task_ids = {t.name: i for i, t in enumerate(spec.tasks)}
        self._freeze_base()
        if spec.training.gradient_checkpointing:  # each block recomputed in the backward, under its forward's routing
            enable_gradient_checkpointing(base, self.context)
        device = self._base_device()
        self.router.to(device)
        self.heads.to(device)
        if import_adapters and spec.adapters.imports:
            apply_imports(self, spec.adapters.imports)

    # ----------------------------------------------------------------- structure
    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.spec.tasks]

    @property
    def num_labels(self) -> list[int]:
        return list(self.heads.num_labels)

    @property
    def adapted_names(self) -> list[str]:
        """Qualified names (inside the base) of the adapted modules, in layer order."""
        return [name for name, _ in self.adapted]

    @property
    def num_layers(self) -> int:
        return len(self.adapted)

    @property
    def skills(self) -> int:
        """K, the inventory size of every adapted layer (1 for ``shared``, T for ``private``)."""
        return self.router.skills

    @property
    def device(self) -> torch.device:
        return self.heads.heads[0].weight.device

    def lm_info(self) -> LMInfo | None:
        """What encoding a generative task's examples needs of this model (its LM kind and end token); None for a
        classifier's base."""
        if self.lm_kind is None:
            return None
        return LMInfo(self.lm_kind, end_token_id(self.base, self.tokenizer))

    def generative_tasks(self, device: torch.device | None = None) -> Tensor:
        """``[T]`` bool: which tasks generate (``objective: generate``), by task id."""
        return torch.tensor([t.generative for t in self.spec.tasks], dtype=torch.bool, device=device)

    def task_index(self, task: int | str) -> int:
        """The id of a task given by name or id; ModelError naming the known tasks otherwise."""
        if isinstance(task, str):
            if task not in self._task_ids:
                close = difflib.get_close_matches(task, self.task_names, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise ModelError(f"unknown task {task!r}; {hint}known tasks are {self.task_names}")
            return self._task_ids[task]
        if isinstance(task, bool) or not isinstance(task, int):
            raise ModelError(
                f"a task is a name or an integer id, got {task!r} ({type(task).__name__}); "
                f"known tasks are {self.task_names}"
            )
        if not 0 <= task < len(self.task_names):
            raise ModelError(
                f"task id {task} is out of range: {len(self.task_names)} tasks "
                f"(ids 0..{len(self.task_names) - 1}: {self.task_names})"
            )
        return task

    def task_tensor(self, task_ids: TaskIds, batch_size: int, device: torch.device) -> Tensor:
        """``[B]`` long task ids from a tensor, a list of ids or names, or one id/name for the batch."""
        if isinstance(task_ids, (str, int)):
            index = self.task_index(task_ids)
            return torch.full((batch_size,), index, dtype=torch.long, device=device)
        if isinstance(task_ids, Tensor):
            if task_ids.is_floating_point() or task_ids.is_complex() or task_ids.dtype == torch.bool:
                raise ModelError(f"task_ids must be an integer tensor, got dtype {task_ids.dtype}")
            ids = task_ids.reshape(-1).long()  # [B]
            if ids.device.type == "cpu":  # checked where reading them costs no device sync
                if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= len(self.task_names)):
                    bad = sorted({i for i in ids.tolist() if not 0 <= i < len(self.task_names)})
                    raise ModelError(
                        f"task ids {bad} are out of range: {len(self.task_names)} tasks "
                        f"(ids 0..{len(self.task_names) - 1}: {self.task_names})"
                    )
            else:  # on an accelerator a host-side check would stall the step: an asynchronous device assert
                torch._assert_async(((ids >= 0) & (ids < len(self.task_names))).all(), "task ids out of range")
            ids = ids.to(device=device)  # [B]
        else:
            ids = torch.tensor([self.task_index(t) for t in task_ids], dtype=torch.long, device=device)
        if ids.shape[0] != batch_size:
            raise ModelError(
                f"task_ids has {ids.shape[0]} entries for a batch of {batch_size} examples; "
                "give one task per example (or one task for the whole batch)"
            )
        return ids

    # ----------------------------------------------------------------- parameter groups
    def adapter_parameters(self) -> list[nn.Parameter]:
        """The adapter inventories (A, B) of every adapted layer — the ``adapters`` optimizer group."""
        return [
            p
            for _, layer in self.adapted
            for n, p in layer.named_parameters()
            if not n.startswith("base.") and p.requires_grad
        ]

    def router_parameters(self) -> list[nn.Parameter]:
        """The router's parameters — the ``router`` optimizer group (a much larger learning rate)."""
        return [p for p in self.router.parameters() if p.requires_grad]

    def head_parameters(self) -> list[nn.Parameter]:
        """The per-task heads — the ``heads`` optimizer group."""
        return [p for p in self.heads.parameters() if p.requires_grad]

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """``{"adapters": ..., "router": ..., "heads": ...}``, keyed like ``spec.training.lr``."""
        return {
            "adapters": self.adapter_parameters(),
            "router": self.router_parameters(),
            "heads": self.head_parameters(),
        }

    def _freeze_base(self) -> None:
        trainable = {id(p) for p in self.adapter_parameters()}
        for p in self.base.parameters():
            if id(p) not in trainable:
                p.requires_grad_(False)

    def _base_device(self) -> torch.device:
        for p in self.base.parameters():
            return p.device
        return torch.device("cpu")

    # ----------------------------------------------------------------- forward
    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None,
        task_ids: TaskIds,
        labels: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        distinct: tuple[Tensor, Tensor] | None = None,
        targets: Tensor | None = None,
    ) -> TaskGraphOutput:
        """Classify a batch whose examples may belong to different tasks (and, on a language-model base, score the
        targets of its generative examples: :mod:`taskgraph.model.lm_forward`).

        ``distinct`` is ``(tasks [U], inverse [B])`` — the batch's distinct task ids (sorted) and each
        example's row among them — when the collator already computed them (:func:`~taskgraph.data.collate`
        does), so they are computed once per batch; otherwise they are computed here. ``tasks`` may stay on the
        host (a :class:`~taskgraph.data.Batch` keeps it there): the heads then read it without waiting
        for the device. On an accelerator, out-of-range task ids and labels are device asserts, not host checks.

        Shapes:
            input_ids, attention_mask, token_type_ids ``[B, S]``; task_ids ``[B]`` (or one task);
            labels ``[B]``; logits ``[B, C_max]``; targets (generative examples' target tokens, -100 elsewhere,
            :mod:`taskgraph.data.lm_inputs`) ``[B, S]`` for a causal LM, ``[B, T]`` for an encoder-decoder.
        """
        if self.lm_kind is not None:
            return lm_forward(self, input_ids, attention_mask, task_ids, labels, targets, token_type_ids, distinct)
        pooled, ids, routing, tasks, inverse = self._encode(
            input_ids, attention_mask, task_ids, token_type_ids, distinct
        )
        host = distinct is not None and distinct[0].device.type == "cpu"  # the heads read the ids without a sync
        logits = self.heads(pooled, distinct[0] if host else tasks, inverse)  # [B, C_max]
        loss = None if labels is None else self._loss(logits, labels, ids)
        return TaskGraphOutput(logits, loss, routing, tasks, inverse)

    def features(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None,
        task_ids: TaskIds,
        token_type_ids: Tensor | None = None,
        distinct: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        """The pooled representations ``[B, D]`` the heads read: the routed encoder without the heads.

        Fitting a head on frozen features (few-shot adaptation) reads these. Shapes as :meth:`forward`.
        """
        return self._encode(input_ids, attention_mask, task_ids, token_type_ids, distinct)[0]

    def _encode(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None,
        task_ids: TaskIds,
        token_type_ids: Tensor | None,
        distinct: tuple[Tensor, Tensor] | None,
    ) -> tuple[Tensor, Tensor, Routing, Tensor, Tensor]:
        """``(pooled [B, D], task ids [B], routing, tasks [U], inverse [B])``."""
        hidden, mask, ids, routing, tasks, inverse, _ = self.route_hidden(
            input_ids, attention_mask, task_ids, token_type_ids, distinct
        )
        pooled = pool(self.spec.model.pooling, hidden, mask)  # [B, D]
        return pooled, ids, routing, tasks, inverse

    def route_hidden(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None,
        task_ids: TaskIds,
        token_type_ids: Tensor | None,
        distinct: tuple[Tensor, Tensor] | None,
    ) -> tuple[Tensor, Tensor, Tensor, Routing, Tensor, Tensor, list[tuple[Tensor, Tensor]] | None]:
        """The routed base's last hidden states: ``(hidden [B, S, D], mask [B, S], task ids [B], routing, tasks [U],
        inverse [B], every layer's factors or None)`` — of the encoder or decoder trunk for a language model."""
        batch = input_ids.shape[0]
        if batch == 0 or input_ids.dim() != 2:
            raise ModelError(
                f"input_ids must be [batch, seq] with at least one example, got shape {tuple(input_ids.shape)}"
            )
        mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask  # [B, S]
        ids = self.task_tensor(task_ids, batch, input_ids.device)  # [B]
        if distinct is None:
            tasks, inverse = torch.unique(ids, return_inverse=True)  # [U], [B]
        else:
            tasks, inverse = (to_device(t, input_ids.device) for t in distinct)  # [U], [B]
        routing = self._route(tasks)  # gates [U, L], weights [U, L, H, K]
        extra: dict[str, Any] = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        if self._decoder:  # a cache here would never be read (generate keeps its own): not built
            extra["use_cache"] = False
        factors = self.fused(routing, inverse) if self.fuse_layers else None  # every layer's, once per batch
        with self.context.use(BatchRouting(routing, inverse, factors)):
            hidden = hidden_trunk(self.base)(
                input_ids=input_ids, attention_mask=mask, **extra
            ).last_hidden_state  # [B, S, D]
        return hidden, mask, ids, routing, tasks, inverse, factors

    def _route(self, tasks: Tensor) -> Routing:
        """The router's output for ``tasks [U]``; with :attr:`routing_seed` set its random draws (Poly's relaxed
        Bernoulli) come from that seed and the global random state is left as it was — how data-parallel
        training gives every process the same routing while each draws its own dropout."""
        if self.routing_seed is None:
            return self.router(tasks)
        devices = [tasks.device.index or 0] if tasks.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.routing_seed)
            return self.router(tasks)

    def _loss(self, logits: Tensor, labels: Tensor, ids: Tensor) -> Tensor:
        labels = labels.to(device=logits.device, dtype=torch.long).reshape(-1)  # [B]
        limits = self.heads.widths.to(logits.device)[ids]  # [B]
        bad = (labels < 0) | (labels >= limits)  # [B]
        if labels.device.type != "cpu":  # reading the check on the host would stall the step: a device assert
            torch._assert_async(~bad.any(), "a label is out of range for its task (data labels are checked on load)")
        elif bool(bad.any()):
            b = int(bad.nonzero()[0, 0])
            name = self.task_names[int(ids[b])]
            raise ModelError(
                f"label {int(labels[b])} of example {b} is out of range for task {name!r}, "
                f"which has {int(limits[b])} labels (0..{int(limits[b]) - 1})"
            )
        return F.cross_entropy(at_least_fp32(logits), labels)

    # ----------------------------------------------------------------- repr
    def extra_repr(self) -> str:
        a = self.spec.adapters
        quantized = "" if self.spec.model.quantize == "none" else f", quantize={self.spec.model.quantize}"
        return (
            f"tasks={len(self.task_names)}, layers={self.num_layers}, heads={a.heads}, "
            f"skills={self.skills}, rank={a.rank}, pooling={self.spec.model.pooling}{quantized}"
        )

    def __repr__(self) -> str:
        frozen = sum(p.numel() for p in self.base.parameters() if not p.requires_grad)
        groups = {k: sum(p.numel() for p in v) for k, v in self.parameter_groups().items()}
        targets = sorted({name.rsplit(".", 1)[-1] for name in self.adapted_names})
        return (
            f"{type(self).__name__}({self.extra_repr()},\n"
            f"  base={type(self.base).__name__}({frozen:,} frozen parameters),\n"
            f"  adapters={self.num_layers} x {type(self.adapted[0][1]).__name__} on {targets} "
            f"({groups['adapters']:,} parameters),\n"
            f"  router={self.router!r} ({groups['router']:,} parameters),\n"
            f"  heads={self.heads!r} ({groups['heads']:,} parameters),\n"
            f"  tasks={self.task_names}\n)"
        )
