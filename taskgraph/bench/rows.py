"""The rows of the speed bench: how each configuration builds its model and its one timed step.

Every training row runs the same step on the same batch — forward, mean pooling, a per-task linear
head (:class:`~taskgraph.model.heads.TaskHeads`), cross-entropy, backward, ``AdamW.step`` — so the
rows differ only in what adapts the base model:

* ``peft-lora``: PEFT's LoRA on the target modules (the reference row);
* ``peft-poly``: PEFT's Poly (``PolyConfig``; ``n_splits`` > 1 is PEFT's multi-head routing);
* ``peft-mixed``: PEFT LoRA with one adapter per task and ``adapter_names=`` per example. PEFT refuses
  ``adapter_names`` in training mode, so this row runs in ``.eval()`` with gradients on (it belongs
  to the dropout-0 table only, where eval and train mode compute the same thing);
* ``floor``: no adapter at all, the base frozen, gradients still flowing back through every layer
  (the input embeddings' output requires grad): the least any adapter method can cost;
* ``taskgraph``: :class:`~taskgraph.model.TaskGraphModel` with a registered router, called the way
  training calls it (``model(input_ids, attention_mask, task_ids, labels).loss``).

A row with ``checkpointing`` checkpoints every transformer block of its base (non-reentrant
``torch.utils.checkpoint``): transformers' ``gradient_checkpointing_enable`` for the PEFT rows and the floor,
``training.gradient_checkpointing`` for taskgraph's (:mod:`taskgraph.model.grad_checkpointing`).

Inference rows (eval, no grad) compare a task merged into the weights
(:meth:`TaskGraphModel.merge_task`) with the plain base model under the same head.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from taskgraph.model import MergedTaskModel, TaskGraphModel, TaskHeads, mean_pool
from taskgraph.registry import ROUTERS
from taskgraph.spec.models import Spec

Step = Callable[[], None]
ROUTER_KINDS = tuple(ROUTERS.ordered())  # every registered router, the built-ins in table order


CHECKPOINTED = "-gc"  # the suffix of a checkpointed row's name: ``taskgraph-poly-gc/d0``


def row_key(name: str, dropout: float, checkpointing: bool = False) -> str:
    """A row's key: its name and the base model's dropout, e.g. ``taskgraph-mhr/d0.1`` (checkpointed:
    ``taskgraph-mhr-gc/d0.1``)."""
    return f"{name}{CHECKPOINTED if checkpointing else ''}/d{dropout:g}"


def checkpointed(row: Row) -> Row:
    """``row``'s twin with every block of its base checkpointed."""
    name, _, _ = row.key.rpartition("/d")
    return replace(
        row,
        key=row_key(name, row.dropout or 0.0, True),
        label=f"{row.label} + gradient checkpointing",
        checkpointing=True,
    )


def reference_key(dropout: float, checkpointing: bool = False) -> str:
    """The PEFT LoRA row every training row of that dropout (and checkpointing) is compared with."""
    return row_key("peft-lora", dropout, checkpointing)


@dataclass(frozen=True)
class Row:
    """One configuration of the bench.

    Args:
        key: unique id, e.g. ``taskgraph-mhr/d0.1`` (JSON key; the reference is ``peft-lora/d0.1``).
        label: the row's name in the tables.
        kind: ``peft-lora`` | ``peft-poly`` | ``peft-mixed`` | ``floor`` | ``taskgraph`` |
            ``base-infer`` | ``folded-infer``.
        dropout: the base model's dropout (hidden and attention), or None for inference rows.
        router: the taskgraph router kind (``taskgraph`` and ``folded-infer`` rows).
        heads: H of the adapters (taskgraph ``mhr``) or PEFT Poly's ``n_splits``.
        tasks: T, the number of tasks (task ids are drawn uniformly over them).
        linearized: taskgraph rows: L-LoRA adapters (``adapters.linearized``).
        checkpointing: every transformer block of the base checkpointed (gradient checkpointing).
        full_precision: the base left unquantized in a table whose bases are quantized (``--quantize``).
    """

    key: str
    label: str
    kind: str
    dropout: float | None
    router: str | None = None
    heads: int = 1
    tasks: int = 8
    linearized: bool = False
    checkpointing: bool = False
    full_precision: bool = False

    @property
    def training(self) -> bool:
        return self.kind not in ("base-infer", "folded-infer")


@dataclass(frozen=True)
class Shape:
    """The fixed sizes every row shares.

    Args:
        batch, seq: the batch is ``batch × seq`` random token ids with a full attention mask.
        rank, alpha, skills: LoRA rank r, alpha, and the inventory size K of Poly / MHR.
        targets: the adapted module names.
        labels: the label count of every task's head.
    """

    batch: int = 32
    seq: int = 64
    rank: int = 8
    alpha: float = 16.0
    skills: int = 8
    targets: tuple[str, ...] = ("query", "value")
    labels: int = 2


@dataclass
class Batch:
    """One batch: ``input_ids``, ``attention_mask`` ``[B, S]``, ``task_ids``, ``labels`` ``[B]``, and its distinct
    tasks ``[U]`` (on the host, as the training loop's collator leaves them) with each example's row ``inverse [B]``."""

    input_ids: Tensor
    attention_mask: Tensor
    task_ids: Tensor
    labels: Tensor
    tasks: Tensor
    inverse: Tensor

    @classmethod
    def on(cls, ids: Tensor, mask: Tensor, task_ids: Tensor, labels: Tensor, device: torch.device) -> Batch:
        """The batch of host tensors on ``device``, its distinct tasks found on the host."""
        tasks, inverse = torch.unique(task_ids, return_inverse=True)  # [U], [B]
        return cls(*(t.to(device) for t in (ids, mask, task_ids, labels)), tasks, inverse.to(device))

    @property
    def distinct_tasks(self) -> int:
        return int(self.tasks.numel())


@dataclass
class Env:
    """What every row is built with besides its base model.

    Args:
        batch: the batch of the row's task count.
        shape: the shared sizes.
        device: where the row runs.
        model_section: the spec's ``model`` section for taskgraph rows (``path`` or ``config``).
    """

    batch: Batch
    shape: Shape
    device: torch.device
    model_section: dict[str, Any]


def make_batch(shape: Shape, vocab: int, tasks: int, device: torch.device, seed: int) -> Batch:
    """A seeded batch; the token ids do not depend on ``tasks`` (so rows with other T see the same text)."""
    text = torch.Generator().manual_seed(seed)
    ids = torch.randint(min(1000, vocab // 2), vocab, (shape.batch, shape.seq), generator=text)  # [B, S]
    draw = torch.Generator().manual_seed(seed + 1)
    task_ids = torch.randint(0, tasks, (shape.batch,), generator=draw)  # [B]
    labels = torch.randint(0, shape.labels, (shape.batch,), generator=draw)  # [B]
    mask = torch.ones_like(ids)  # [B, S]
    return Batch.on(ids, mask, task_ids, labels, device)


def autocast(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on CUDA, nothing on CPU (fp32)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def head_loss(hidden: Tensor, batch: Batch, heads: TaskHeads) -> Tensor:
    """Mean pooling → each example's task head → cross-entropy (what TaskGraphModel computes)."""
    pooled = mean_pool(hidden, batch.attention_mask)  # [B, D]
    logits = heads(pooled, batch.tasks, batch.inverse)  # [B, C]
    return F.cross_entropy(logits.float(), batch.labels)


@dataclass
class TrainingStep:
    """One step: forward under autocast, backward, ``AdamW.step``, gradients set to None.

    ``loss`` alone is the forward (:mod:`taskgraph.bench.ops` counts the operations of ``loss`` + backward).
    """

    loss: Callable[[], Tensor]
    optimizer: torch.optim.Optimizer
    device: torch.device

    def __call__(self) -> None:
        with autocast(self.device):
            loss = self.loss()
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)


def training_step(loss_fn: Callable[[], Tensor], groups: list[dict[str, Any]], device: torch.device) -> Step:
    """A :class:`TrainingStep` with AdamW over ``groups``."""
    return TrainingStep(loss_fn, torch.optim.AdamW(groups), device)


def inference_step(model: nn.Module, batch: Batch, device: torch.device) -> Step:
    """One eval forward with no autograd."""
    model.eval()

    def step() -> None:
        with torch.no_grad(), autocast(device):
            model(batch.input_ids, batch.attention_mask)

    return step


def _checkpoint_blocks(base: nn.Module, row: Row) -> None:
    """Checkpoint every block of ``base`` when ``row`` asks for it (non-reentrant, as taskgraph's rows)."""
    if not row.checkpointing:
        return
    enable = getattr(base, "activation_checkpointing_enable", None)  # its name from transformers 5
    if enable is not None:
        enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def _trainable(module: nn.Module) -> list[nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]


def _heads(base: nn.Module, row: Row, shape: Shape, device: torch.device) -> TaskHeads:
    return TaskHeads(base.config.hidden_size, [shape.labels] * row.tasks).to(device)


def _peft_lora(row: Row, base: nn.Module, env: Env) -> Step:
    from peft import LoraConfig, get_peft_model

    batch, shape, device = env.batch, env.shape, env.device
    config = LoraConfig(r=shape.rank, lora_alpha=shape.alpha, lora_dropout=0.0, target_modules=list(shape.targets))
    _checkpoint_blocks(base, row)
    with warnings.catch_warnings():  # a torchao-quantized base: PEFT notes that it cannot merge (never asked here)
        warnings.filterwarnings("ignore", message="TorchaoLoraLinear was instantiated")
        model = get_peft_model(base, config).train()
    heads = _heads(base, row, shape, device)

    def loss() -> Tensor:
        hidden = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
        return head_loss(hidden, batch, heads)

    return training_step(loss, [{"params": _trainable(model) + _trainable(heads), "lr": 1e-3}], device)


def _peft_poly(row: Row, base: nn.Module, env: Env) -> Step:
    from peft import PolyConfig, get_peft_model

    batch, shape, device = env.batch, env.shape, env.device
    config = PolyConfig(
        r=shape.rank,
        target_modules=list(shape.targets),
        n_tasks=row.tasks,
        n_skills=shape.skills,
        n_splits=row.heads,
        poly_type="poly",
    )
    model = get_peft_model(base, config).train()
    heads = _heads(base, row, shape, device)
    tuner = model.base_model  # PolyModel: takes task_ids (what PEFT's task-specific wrappers call)

    def loss() -> Tensor:
        out = tuner(input_ids=batch.input_ids, attention_mask=batch.attention_mask, task_ids=batch.task_ids)
        return head_loss(out.last_hidden_state, batch, heads)

    return training_step(loss, [{"params": _trainable(model) + _trainable(heads), "lr": 1e-3}], device)


def _peft_mixed(row: Row, base: nn.Module, env: Env) -> Step:
    from peft import LoraConfig, get_peft_model

    batch, shape, device = env.batch, env.shape, env.device
    config = LoraConfig(r=shape.rank, lora_alpha=shape.alpha, lora_dropout=0.0, target_modules=list(shape.targets))
    model = get_peft_model(base, config, adapter_name="task0")
    for t in range(1, row.tasks):
        model.add_adapter(f"task{t}", config)
    for name, p in model.named_parameters():  # every task's adapter trains, not only the active one
        if ".lora_" in name:
            p.requires_grad_(True)
    model.eval()  # PEFT refuses adapter_names in training mode
    heads = _heads(base, row, shape, device)

    def loss() -> Tensor:
        names = [f"task{t}" for t in batch.task_ids.tolist()]  # one adapter name per example
        out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, adapter_names=names)
        return head_loss(out.last_hidden_state, batch, heads)

    return training_step(loss, [{"params": _trainable(model) + _trainable(heads), "lr": 1e-3}], device)


def _floor(row: Row, base: nn.Module, env: Env) -> Step:
    batch, shape, device = env.batch, env.shape, env.device
    base.requires_grad_(False)
    base.enable_input_require_grads()  # backward still runs through every layer
    _checkpoint_blocks(base, row)
    base.train()
    heads = _heads(base, row, shape, device)

    def loss() -> Tensor:
        hidden = base(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
        return head_loss(hidden, batch, heads)

    return training_step(loss, [{"params": _trainable(heads), "lr": 1e-3}], device)


def taskgraph_spec(row: Row, shape: Shape, model: dict[str, Any]) -> Spec:
    """The spec of a taskgraph row (``model`` is the spec's model section; the base is passed ready)."""
    return Spec.model_validate(
        {
            "name": "bench",
            "model": {**model, "target_modules": list(shape.targets), "pooling": "mean"},
            "adapters": {
                "rank": shape.rank,
                "alpha": shape.alpha,
                "dropout": 0.0,
                "skills": shape.skills,
                "splits": row.heads,
                "linearized": row.linearized,
            },
            "router": {"kind": row.router},
            "tasks": [{"name": f"task{t}", "num_labels": shape.labels} for t in range(row.tasks)],
            "training": {"gradient_checkpointing": row.checkpointing},
        }
    )


def _taskgraph(row: Row, base: nn.Module, env: Env) -> Step:
    batch = env.batch
    spec = taskgraph_spec(row, env.shape, env.model_section)
    model = TaskGraphModel(spec, base=base).train()
    lr = spec.training.lr
    groups = [{"params": ps, "lr": getattr(lr, name)} for name, ps in model.parameter_groups().items() if ps]

    def loss() -> Tensor:
        out = model(
            batch.input_ids,
            batch.attention_mask,
            batch.task_ids,
            labels=batch.labels,
            distinct=(batch.tasks, batch.inverse),
        )
        assert out.loss is not None
        return out.loss

    return training_step(loss, groups, env.device)


def _base_infer(row: Row, base: nn.Module, env: Env) -> Step:
    batch, shape, device = env.batch, env.shape, env.device
    head = nn.Linear(base.config.hidden_size, shape.labels).to(device)
    return inference_step(MergedTaskModel(base, head, "mean", "task0"), batch, device)


def _folded_infer(row: Row, base: nn.Module, env: Env) -> Step:
    spec = taskgraph_spec(row, env.shape, env.model_section)
    routed = TaskGraphModel(spec, base=base)
    with torch.no_grad():  # a trained-looking adapter (B = 0 would fold to the base weights exactly)
        for _, layer in routed.adapted:
            layer.B.normal_(0.0, 0.02)
    merged = routed.merge_task(0)
    del routed
    return inference_step(merged, env.batch, env.device)


BUILDERS: dict[str, Callable[[Row, nn.Module, Env], Step]] = {
    "peft-lora": _peft_lora,
    "peft-poly": _peft_poly,
    "peft-mixed": _peft_mixed,
    "floor": _floor,
    "taskgraph": _taskgraph,
    "base-infer": _base_infer,
    "folded-infer": _folded_infer,
}


def build_step(row: Row, base: nn.Module, env: Env) -> Step:
    """Build ``row``'s model on ``base`` (the row then owns it: pass a copy) and return its timed step."""
    if row.kind not in BUILDERS:
        raise ValueError(f"unknown bench row kind {row.kind!r}; choose from {sorted(BUILDERS)}")
    return BUILDERS[row.kind](row, base, env)
