r"""The oracle-relearn ceiling of allocation precision on a planted universe.

How well can *any* router recover the planted allocation when the adapters are the planted skills? Two phases,
one model (a ``poly`` router, K ≥ S adapters per layer, the spec's model and data):

1. **Oracle training.** Routing is fixed to the truth: skill k of every layer is adapter k, and task t's
   logits are ``+c`` on its skills and ``−c`` elsewhere (c = :data:`ORACLE_LOGIT`, so the relaxed-Bernoulli
   sample and the sigmoid both give ``w_t = 1[S_t] / |S_t|``). Adapters and heads train ``train_steps``
   steps (AdamW, the spec's rates and schedule); the router does not train.
2. **Re-learn.** Adapters and heads are frozen; the routing logits restart from U(−1e-3, 1e-3) (Poly's
   initialisation) and only they train, ``relearn_steps`` steps at ``router_lr``.

The allocation precision of the re-learned routing (:func:`~taskgraph.metrics.allocation_precision`, per
(layer, head) and the mean) is the ceiling a router can reach in this universe and architecture when the
adapters are right (its figure on the planted universes: docs/graph-prior.md §1 and §11).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from taskgraph.data import TaskData, collate, tokenizer_pad_id
from taskgraph.errors import ModelError
from taskgraph.metrics import allocation_precision
from taskgraph.model import TaskGraphModel, forward_batch
from taskgraph.model.learned import learned_routing
from taskgraph.routing.poly import INIT_RANGE
from taskgraph.spec import Spec
from taskgraph.train import MultiTaskSampler, load_model_data
from taskgraph.train.evaluate import evaluate
from taskgraph.train.optim import lr_multiplier

ORACLE_LOGIT = 30.0  # c: σ(±c + logistic noise) is 1 / 0 up to ~e^-30 per draw
ROUTER_LR = 0.1  # Poly's router rate (the authors' code; the quality bench's ROUTER_LR["poly"])


@dataclass
class OracleRelearn:
    """What :func:`oracle_relearn` measured.

    Args:
        precision: allocation precision of the re-learned routing, mean over (layer, head).
        per_layer_head: ``[L][H]`` the same per adapted layer and head (``layers`` names them).
        random: random routing's expected precision (``|S_t| / K``).
        oracle_val, relearn_val, relearn_test: mean accuracy after phase 1 (val) and phase 2 (val, test).
        relation_auroc: AUROC of the re-learned routing cosine against the planted relations (all pairs).
    """

    precision: float
    per_layer_head: list[list[float]]
    random: float
    oracle_val: float
    relearn_val: float
    relearn_test: float
    relation_auroc: float | None
    layers: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def oracle_logits(incidence: np.ndarray, num_layers: int, heads: int, skills: int) -> torch.Tensor:
    """Routing logits ``[T, L, H, K]`` that give every task exactly its planted skills (adapter k = skill k)."""
    tasks, planted = incidence.shape
    if skills < planted:
        raise ModelError(f"oracle routing needs at least as many adapters as planted skills: K={skills} < S={planted}")
    on = torch.zeros(tasks, skills, dtype=torch.bool)  # [T, K]
    on[:, :planted] = torch.as_tensor(incidence, dtype=torch.bool)
    logits = torch.where(on, ORACLE_LOGIT, -ORACLE_LOGIT)  # [T, K]
    return logits[:, None, None, :].expand(tasks, num_layers, heads, skills).clone()  # [T, L, H, K]


def oracle_relearn(
    spec: Spec,
    incidence: np.ndarray,
    *,
    train_steps: int,
    relearn_steps: int,
    seed: int,
    router_lr: float = ROUTER_LR,
    base_dir: str | os.PathLike[str] = ".",
    device: str = "cpu",
) -> OracleRelearn:
    """Train ``spec``'s model under oracle routing, then re-learn routing alone (see the module docstring).

    Args:
        spec: a planted spec (its router is replaced by ``poly`` with the same temperature).
        incidence: ``[T, S]`` the planted task × skill truth, in ``spec.tasks`` order.
        train_steps, relearn_steps: steps of phase 1 and phase 2 (batch: ``spec.training.batch_size``).
        seed: initialisation, sampling and the re-learn's initial logits.
        router_lr: the routing logits' rate in phase 2.
    """
    from taskgraph.metrics import pair_auroc, routing_cosine

    raw = spec.model_dump()
    raw["router"] = {"kind": "poly", "temperature": spec.router.temperature}
    spec = Spec.model_validate(raw)
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    model = TaskGraphModel(spec).to(device)
    pad_id = tokenizer_pad_id(model.tokenizer)
    data = load_model_data(model, spec, Path(base_dir), splits=("train", "val", "test"))
    train_under_oracle(model, incidence, data["train"], spec, train_steps, seed, pad_id, device)
    oracle_val = evaluate(model, data["val"], pad_id=pad_id, device=device).mean_acc
    relearn_routing(model, data["train"], spec, relearn_steps, seed + 1, pad_id, device, router_lr)
    weights = learned_routing(model).weights  # [T, L, H, K]
    result = allocation_precision(weights, incidence)
    if result is None:
        raise ModelError("oracle_relearn: allocation precision is undefined (K < S or no task has a skill)")
    inc = incidence.astype(np.int64)
    related = (inc @ inc.T) > 0  # [T, T]
    np.fill_diagonal(related, False)
    return OracleRelearn(
        precision=result.precision,
        per_layer_head=result.per_layer_head,
        random=result.random,
        oracle_val=oracle_val,
        relearn_val=evaluate(model, data["val"], pad_id=pad_id, device=device).mean_acc,
        relearn_test=evaluate(model, data["test"], pad_id=pad_id, device=device).mean_acc,
        relation_auroc=pair_auroc(routing_cosine(weights), related, np.zeros_like(related)) if related.any() else None,
        layers=list(model.adapted_names),
    )


def train_under_oracle(
    model: TaskGraphModel,
    incidence: np.ndarray,
    train: list[TaskData],
    spec: Spec,
    steps: int,
    seed: int,
    pad_id: int,
    device: str,
) -> None:
    """Phase 1: fix a poly model's routing to the planted skills (router frozen), train adapters and heads."""
    router = model.router
    if (
        not isinstance(getattr(router, "logits", None), torch.nn.Parameter)
        or router.heads != 1
        or incidence.shape[0] != router.num_tasks
    ):
        raise ModelError(
            f"oracle routing needs a one-head poly router and one incidence row per task; got "
            f"{type(router).__name__} with {router.heads} heads, {incidence.shape[0]} rows for "
            f"{router.num_tasks} tasks"
        )
    with torch.no_grad():
        router.logits.copy_(oracle_logits(incidence, router.num_layers, 1, router.skills))
    router.logits.requires_grad_(False)
    lr, decay = spec.training.lr, spec.training.weight_decay
    _fit(
        model,
        [
            {"params": model.adapter_parameters(), "lr": lr.adapters, "weight_decay": decay},
            {"params": model.head_parameters(), "lr": lr.heads, "weight_decay": decay},
        ],
        train,
        spec,
        steps,
        seed,
        pad_id,
        device,
    )


def relearn_routing(
    model: TaskGraphModel,
    train: list[TaskData],
    spec: Spec,
    steps: int,
    seed: int,
    pad_id: int,
    device: str,
    router_lr: float = ROUTER_LR,
) -> None:
    """Phase 2: freeze adapters and heads, restart the routing logits at Poly's initialisation, train them alone."""
    for p in (*model.adapter_parameters(), *model.head_parameters()):
        p.requires_grad_(False)
    logits = model.router.logits
    with torch.no_grad():
        logits.uniform_(-INIT_RANGE, INIT_RANGE)
    logits.requires_grad_(True)
    _fit(model, [{"params": [logits], "lr": router_lr, "weight_decay": 0.0}], train, spec, steps, seed, pad_id, device)


def _fit(
    model: TaskGraphModel,
    groups: list[dict[str, Any]],
    train: list[TaskData],
    spec: Spec,
    steps: int,
    seed: int,
    pad_id: int,
    device: str,
) -> None:
    """AdamW on ``groups`` for ``steps`` mixed-task batches (the spec's batch size, warm-up + cosine schedule)."""
    params = [p for g in groups for p in g["params"]]
    base = [g["lr"] for g in groups]
    optimizer = torch.optim.AdamW(groups, betas=(0.9, 0.999), eps=1e-8)
    sampler = MultiTaskSampler(
        [len(t) for t in train], spec.training.sampling, spec.training.sampling_temperature, seed=seed
    )
    clip = spec.training.grad_clip or float("inf")
    model.train()
    for step in range(steps):
        factor = lr_multiplier(step, steps, spec.training.warmup_steps)
        for group, rate in zip(optimizer.param_groups, base):
            group["lr"] = rate * factor
        batch = collate(sampler.sample(spec.training.batch_size), train, pad_id).to(device)
        optimizer.zero_grad(set_to_none=True)
        out = forward_batch(model, batch)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, clip)
        optimizer.step()
