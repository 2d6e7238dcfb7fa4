"""TaskGraphModel: a frozen base transformer + routed LoRA inventories + a router + per-task heads.

One forward serves a batch that mixes tasks::

    tasks, inverse = torch.unique(task_ids, return_inverse=True)   # once per batch
    routing = router(tasks)                                         # [U, L] gates, [U, L, H, K] weights
    with context.use(BatchRouting(routing, inverse)):               # read by every RoutedLoRALinear
        hidden = base(input_ids, attention_mask).last_hidden_state  # [B, S, D]
    logits = heads(pool(hidden, attention_mask), tasks, inverse)    # [B, C_max]

The distinct tasks and the example → task index are computed once per batch, here, not in every
layer; the router is asked only for the U distinct tasks, so routing cost does not grow with T.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from taskgraph.adapters.context import BatchRouting, RoutingContext
from taskgraph.adapters.fused import FusedFactors
from taskgraph.adapters.inject import inject_adapters
from taskgraph.data.encoding import encode
from taskgraph.data.text2text_encoding import LMInfo
from taskgraph.errors import ModelError, validation_problems
from taskgraph.model.base import hidden_size, load_base
from taskgraph.model.checkpoint import base_fingerprint, load_checkpoint, save_checkpoint
from taskgraph.model.device import to_device
from taskgraph.model.fold import FoldedLoRA, MergedTaskModel, fold, merge_task, warn_merge_and_unload
from taskgraph.model.footprint import check_positions
from taskgraph.model.grad_checkpointing import enable_gradient_checkpointing
from taskgraph.model.heads import TaskHeads, head_widths
from taskgraph.model.lm_base import check_logit_transform, end_token_id, hidden_trunk, is_decoder, lm_kind_of
from taskgraph.model.lm_forward import lm_forward
from taskgraph.model.lora_import import apply_imports, import_lora
from taskgraph.model.output import TaskGraphOutput, TaskIds
from taskgraph.model.pooling import pool
from taskgraph.model.predict import predict
from taskgraph.model.quantize import quantize_base
from taskgraph.registry import ROUTERS
from taskgraph.routing.base import Router, Routing
from taskgraph.spec.models import Spec

SKILL_INITS = ("lora", "average")  # how a skill appended to every inventory starts (add_task_to_learn)


class TaskGraphModel(nn.Module):
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
        return F.cross_entropy(logits.float(), labels)

    # ----------------------------------------------------------------- tasks added after training
    def add_task_from_relations(
        self,
        name: str,
        num_labels: int,
        relate: dict[str, float],
        description: str | None = None,
        *,
        family: str | None = None,
        data: Mapping[str, Any] | None = None,
        generation: Mapping[str, Any] | None = None,
        side: dict[str, Tensor] | None = None,
    ) -> int:
        """Add a task unseen in training, routed zero-shot through its relations; returns its id.

        The router gives the task a node related to the existing tasks ``relate`` (``{name:
        weight in [0, 1]}``) and routes it by message passing from them (graph router only; the
        static routers raise ModelError and nothing changes — see :meth:`add_task_to_learn`). The task
        gets a fresh head (fit it on a few examples with the encoder frozen). The spec records the
        task (with ``family`` and its ``data`` block, if given), its relations and
        ``router.zero_shot``, so ``save_pretrained`` / ``from_pretrained`` rebuild it. The
        description is recorded; ``side``: the task's side-feature blocks (``router.features``; what
        :meth:`attach_task` computes from a description and examples). ``generation``: the
        task's generative keys (``{"objective": "generate", "choices": [...], "template": ..., "max_new_tokens": ...}``;
        its ``num_labels`` then follows its choices and it has no head).
        """
        data_spec = self._spec_with_task(name, num_labels, description, family, data, generation)
        ids = {self.task_index(other): weight for other, weight in relate.items()}
        index = (  # static routers raise here, before anything changed
            self.router.add_task_from_relations(ids, side=side) if side else self.router.add_task_from_relations(ids)
        )
        data_spec["relations"]["declared"] += [[other, name, float(w)] for other, w in relate.items()]
        data_spec["router"]["zero_shot"] = [
            *data_spec["router"].get("zero_shot", []),
            name,
        ]  # how the router rebuilds it
        return self._register_task(Spec.model_validate(data_spec), name, num_labels, index)

    def attach_task(
        self,
        name: str,
        *,
        description: str | Sequence[int] | None = None,
        examples: Sequence[str | Sequence[int]] | None = None,
        relations: Mapping[str, float] | None = None,
        k: int | None = None,
        num_labels: int = 2,
        family: str | None = None,
        data: Mapping[str, Any] | None = None,
        generation: Mapping[str, Any] | None = None,
    ) -> int:
        """Attach a new task to the graph router from its description, examples and / or relations, with no gradient
        step; returns its id (:func:`taskgraph.model.attach.attach_task`)."""
        from taskgraph.model.attach import attach_task

        return attach_task(
            self,
            name,
            description=description,
            examples=examples,
            relations=relations,
            k=k,
            num_labels=num_labels,
            family=family,
            data=data,
            generation=generation,
        )

    def add_task_to_learn(
        self,
        name: str,
        num_labels: int,
        *,
        own_skill: bool = False,
        skill_init: str = "lora",
        description: str | None = None,
        family: str | None = None,
        data: Mapping[str, Any] | None = None,
        generation: Mapping[str, Any] | None = None,
    ) -> int:
        """Add a task whose routing is learned from a few examples (few-shot); returns its id.

        The router gives it a routing row (:meth:`Router.add_task_to_learn`): ``poly`` / ``mhr`` a
        trainable logits row, ``mhr-mu`` / ``shared`` nothing to learn, ``private`` a skill of its own.
        ``own_skill`` gives a ``poly`` / ``mhr`` task one skill per layer that only it uses (exactly
        one-hot routing; the other tasks weigh it exactly 0). When the inventories grow, the new skill
        of every layer starts as LoRA does (``skill_init="lora"``: A uniform ±1/√d_in, B = 0) or as the
        uniform average of the layer's skills (``"average"``, per head, A and B separately: MHR-μ).
        The task gets a fresh head. The spec lists the task (and ``adapters.skills`` follows a grown
        inventory), so ``save_pretrained`` / ``from_pretrained`` rebuild the same shapes. The graph
        router raises ModelError (use :meth:`add_task_from_relations`); nothing changes when anything raises.
        ``generation`` as :meth:`add_task_from_relations`.
        """
        if skill_init not in SKILL_INITS:
            raise ModelError(f"skill_init {skill_init!r}: choose from {list(SKILL_INITS)}")
        data_spec = self._spec_with_task(name, num_labels, description, family, data, generation)
        spec = Spec.model_validate(data_spec)
        skills = self.router.skills
        index = self.router.add_task_to_learn(own_skill)  # raises before anything changed
        if self.router.skills != skills:
            assert self.router.skills == skills + 1, (skills, self.router.skills)
            for _, layer in self.adapted:
                layer.append_skill(skill_init)
            router_cls: type[Router] = ROUTERS.get(spec.router.kind).obj
            if router_cls.inventory_size(spec.adapters.skills, len(spec.tasks)) != self.router.skills:
                data_spec["adapters"]["skills"] = self.router.skills  # poly / mhr: K is the spec's skills
                spec = Spec.model_validate(data_spec)
        return self._register_task(spec, name, num_labels, index)

    def _spec_with_task(
        self,
        name: str,
        num_labels: int,
        description: str | None,
        family: str | None,
        data: Mapping[str, Any] | None,
        generation: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The spec as a dict with the task appended, checked whole; ModelError for a taken name or an invalid task."""
        from taskgraph.spec.models import TaskSpec

        if name in self._task_ids:
            raise ModelError(f"task {name!r} already exists; known tasks are {self.task_names}")
        task: dict[str, Any] = {"name": name, "num_labels": num_labels}
        task.update({k: v for k, v in (("description", description), ("family", family)) if v})
        if data is not None:
            task["data"] = dict(data)
        if generation:
            task.update(generation)
            if task.get("objective") == "generate":
                task.pop("num_labels")  # it follows the choices
        if task.get("objective") == "generate" and self.lm_kind is None:
            raise ModelError(f"cannot add generative task {name!r}: this model's base has no LM head")
        try:
            TaskSpec.model_validate(task)
        except ValueError as exc:
            raise ModelError(f"cannot add task {name!r}: {validation_problems(exc, root='the task')}") from None
        spec = self.spec.model_dump(mode="json", exclude_none=True)
        spec["tasks"].append(task)
        try:
            checked = Spec.model_validate(spec)  # e.g. an unknown data source or its parameters
        except ValueError as exc:
            problems = validation_problems(exc, root="the spec")
            raise ModelError(f"cannot add task {name!r}: the spec with it is invalid: {problems}") from None
        try:  # a saved model must rebuild from its spec: its prompt and target fit the base's positions
            check_positions(checked, getattr(self.base, "config", None))
        except ModelError as exc:
            raise ModelError(f"cannot add task {name!r}: {exc}") from None
        return spec

    def _register_task(self, spec: Spec, name: str, num_labels: int, index: int) -> int:
        self.heads.add_task(head_widths(spec.tasks[-1:])[0])
        self.spec = spec
        self._task_ids[name] = index
        assert index == len(self.spec.tasks) - 1 == len(self.heads.heads) - 1 == self.router.num_tasks - 1
        return index

    # ----------------------------------------------------------------- persistence, fold, predict
    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``model.safetensors`` + ``manifest.json`` (see :mod:`taskgraph.model.checkpoint`)."""
        return save_checkpoint(self, directory)

    @classmethod
    def from_pretrained(
        cls,
        directory: str | Path,
        base: nn.Module | None = None,
        tokenizer: Any | None = None,
        device: str | torch.device | None = None,
    ) -> TaskGraphModel:
        """Rebuild a saved model; CheckpointError when the folder, weights or base do not match.

        ``adapters.imports`` are not read again: the saved weights hold them (and what training made of them).
        """
        build = functools.partial(cls, import_adapters=False)
        return load_checkpoint(build, directory, base=base, tokenizer=tokenizer, device=device)  # type: ignore[arg-type]

    def import_lora(self, folder: str | Path, *, skill: int | None = None, task: str | None = None) -> None:
        """Write a PEFT LoRA folder into skill slot ``skill`` of every inventory, or into ``task``'s own adapter
        (router ``private``); ModelError when it does not fit (see :func:`taskgraph.model.lora_import.import_lora`)."""
        import_lora(self, folder, skill=skill, task=task)

    def fold(self, task: int | str) -> FoldedLoRA:
        """This task as a plain LoRA (see :func:`taskgraph.model.fold.fold`)."""
        return fold(self, task)

    def merge_task(self, task: int | str, *, dequantize: bool = False) -> MergedTaskModel:
        """A plain transformers model with this task's adapter folded into W, plus its head; this model is left
        unchanged, serving every task (see :func:`taskgraph.model.fold.merge_task`; a quantized base needs
        ``dequantize=True``)."""
        return merge_task(self, task, dequantize=dequantize)

    def merge_and_unload(self, task: int | str) -> MergedTaskModel:
        """The old name of :meth:`merge_task`: the same model, and a :class:`~taskgraph.errors.TaskgraphWarning`."""
        warn_merge_and_unload()
        return merge_task(self, task)

    def encode(self, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """``input_ids [B, S]`` and ``attention_mask [B, S]`` of ``texts`` for :meth:`forward`: the model's tokenizer,
        truncated at ``model.max_length``, right-padded, on the model's device (ModelError without a tokenizer)."""
        from taskgraph.model.predict import pad_batch

        if self.tokenizer is None:
            raise ModelError(
                "this model has no tokenizer: give model.tokenizer in the spec (a local folder), or set "
                "model.tokenizer to a transformers tokenizer"
            )
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        return pad_batch(encode(self.tokenizer, list(texts), self.spec.model.max_length), pad, self.device)

    def predict(self, task: int | str, texts: Sequence[str], batch_size: int = 256) -> list[dict[str, Any]]:
        """Labels and probabilities for raw texts (see :func:`taskgraph.model.predict.predict`)."""
        return predict(self, task, texts, batch_size=batch_size)

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
