"""LoraHub (Huang et al., 2023): a new task's skill weights found by a gradient-free search on a few shots.

LoraHub composes a new task's LoRA from a library of modules with one weight per module, found by CMA-ES on a
handful of labelled examples, minimising the few-shot loss plus an L1 penalty ``0.05 · Σ|w|``; its default budget is
40 evaluations. Its composition mixes the factors, ``A = Σ_e w_e A_e``, ``B = Σ_e w_e B_e`` — exactly what a Poly
routing row does with one weight per skill, shared across every layer and head (LoraHub composes whole modules).

**What is searched: the row's logits, not unnormalised weights.** Our Poly mixes with ``w = σ(z) / Σ_k σ(z_k)``
(:func:`~taskgraph.routing.poly.poly_weights`): weights on the simplex. LoraHub's weights are unnormalised (its
bounds are ±1.5, negative allowed). We search one logit per skill, ``z ∈ [−bound, bound]^K`` starting at 0 (the
uniform mix), and the row is ``z`` broadcast to ``[L, H, K]``. So:

* the result *is* a routing row of the router — written with :func:`~taskgraph.adapt.neighbour_routing.set_task_logits`,
  saved by ``save_pretrained``, folded and exported as any task, scored by ``taskgraph eval`` with no override of the
  router (an unnormalised result could not be stored as a Poly row at all);
* the candidates are the mixtures the Poly run was trained to mix: scale lives in the skills, not in the routing;
* LoraHub's L1 on normalised weights would be the constant 1, so the penalty is put on the searched logits,
  ``l1 · Σ_k |z_k|``: as LoraHub's pulls its weights to its start (w = 0, no module), ours pulls the row to its
  start (z = 0, the uniform mix). The coefficient is LoraHub's, 0.05.

The objective is the model's own loss on the shots in eval mode (sigmoid routing, no dropout): a generative task's
target NLL, mean per example, as :mod:`taskgraph.adapt.run`'s phase 1 computes it. A classification task is refused:
its loss needs a head fitted on features that change with every candidate row.

The first evaluation is the start (the uniform row), so the best loss found is never above the uniform row's.
Skills another task owns (``+∞`` in its row) are not searched and stay ``−∞``. The search is seeded: CMA-ES draws from
numpy's global generator, which is saved before and restored after.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from taskgraph.data import collate, tokenizer_pad_id
from taskgraph.errors import ModelError
from taskgraph.model import forward_batch
from taskgraph.routing.poly import PolyRouter

if TYPE_CHECKING:
    from taskgraph.data import TaskData
    from taskgraph.model import TaskGraphModel

INSTALL = "pip install 'taskgraph[lorahub]'  (or: pip install cma)"
MAX_EVALUATIONS = 40  # LoraHub's default number of inference steps
L1 = 0.05  # LoraHub's L1 coefficient


@dataclass
class LoraHubResult:
    """What :func:`lorahub_search` found.

    Args:
        row: ``[L, H, K]`` (``[1, H, K]`` with ``share_layers``) the best logits row.
        weights: ``[K]`` the skills' mixture weights that row gives (sum 1; 0 on owned skills).
        record: ``{"evaluations", "best_loss", "best_objective", "uniform_loss", "l1", "bound", "sigma0",
            "seed", "searched_skills"}``.
    """

    row: Tensor
    weights: Tensor
    record: dict[str, Any] = field(default_factory=dict)


def skill_row(z: Tensor, searched: Tensor, shape: tuple[int, int, int]) -> Tensor:
    """One logit per searched skill broadcast to a routing row, ``−∞`` on the others.

    Args:
        z: ``[S]`` logits of the searched skills.
        searched: ``[K]`` bool, the S skills searched (the others are owned by other tasks).
        shape: the row's ``(L, H, K)``.

    Returns:
        ``[L, H, K]``.
    """
    full = torch.full((shape[2],), -math.inf, dtype=z.dtype, device=z.device)  # [K]
    full[searched] = z
    return full.expand(shape).clone()  # [L, H, K]


def l1_penalty(z: Tensor, l1: float) -> float:
    """LoraHub's L1 term on the searched logits, ``l1 · Σ|z|`` (see the module docstring)."""
    return float(l1 * z.abs().sum())


@torch.no_grad()
def shot_loss(model: TaskGraphModel, task: int, shots: TaskData, batch_size: int = 32) -> float:
    """The model's mean loss per example on ``shots`` of task ``task``, eval mode, no gradient.

    The loss is the model's own: a generative task's target NLL (:func:`~taskgraph.model.forward_batch`).
    """
    pad_id = tokenizer_pad_id(model.tokenizer)
    n, total = len(shots), 0.0
    for start in range(0, n, batch_size):
        rows = list(range(start, min(n, start + batch_size)))
        batch = collate([(task, r) for r in rows], {task: shots}, pad_id).to(model.device)
        total += float(forward_batch(model, batch).loss) * len(rows)
    return total / n


def lorahub_search(
    model: TaskGraphModel,
    task: int,
    shots: TaskData,
    *,
    max_evaluations: int = MAX_EVALUATIONS,
    l1: float = L1,
    seed: int = 0,
    bound: float = 5.0,
    sigma0: float = 1.0,
    batch_size: int = 32,
) -> LoraHubResult:
    """Search task ``task``'s routing row with CMA-ES on its few shots (LoraHub; see the module docstring).

    The model's row for ``task`` is left as it was found (and the model in the train / eval mode it was in); write
    the result with ``set_task_logits(model, task, result.row)``.

    Args:
        model: a ``poly`` / ``mhr`` model holding a row for ``task`` (:meth:`~TaskGraphModel.add_task_to_learn`).
        task: the new task's id; a generative task.
        shots: its few labelled examples (their targets are scored).
        max_evaluations: loss evaluations in all, the start included. (default: ``40``, LoraHub's)
        l1: the L1 coefficient on the searched logits. (default: ``0.05``, LoraHub's)
        seed: seeds CMA-ES.
        bound: the search box ``[−bound, bound]`` of every logit (a weight ratio of at most ``e^bound``).
            (default: ``5.0``)
        sigma0: CMA-ES's initial step size. (default: ``1.0``)
        batch_size: shots per forward pass. (default: ``32``)

    Raises:
        ModelError: another router, a classification task, a task that owns a skill, a budget below 1, no shots, or
            cma is not installed (naming the package).
    """
    router = model.router
    if not isinstance(router, PolyRouter):
        raise ModelError(
            f"LoraHub searches a routing logits row, which only the routers ['mhr', 'poly'] hold; this model's "
            f"router is {model.spec.router.kind!r}"
        )
    if not 0 <= task < router.num_tasks:
        raise ModelError(f"task {task} is out of range: the router holds {router.num_tasks} rows")
    if not model.spec.tasks[task].generative:
        raise ModelError(
            f"LoraHub here searches generative tasks (the shots' target NLL); task {model.task_names[task]!r} "
            f"classifies, and its loss needs a head fitted to features that change with every candidate row"
        )
    if max_evaluations < 1 or len(shots) == 0:
        raise ModelError(f"LoraHub needs max_evaluations ≥ 1 and shots, got {max_evaluations} and {len(shots)} shots")
    cma = _import_cma()
    logits = router.logits  # [T, L, H, K]
    original = logits[task].detach().clone()  # [L, H, K]
    if bool(torch.isposinf(original).any()):
        raise ModelError(f"task {task} owns a skill (MHR-μ); its routing is fixed, there is nothing to search")
    shape = tuple(original.shape)
    searched = ~torch.isposinf(logits.detach()).any(0).any(0).any(0)  # [K] skills no task owns
    size = int(searched.sum())

    def objective(z: Tensor) -> tuple[float, float]:  # z: [S] -> (loss, loss + penalty)
        with torch.no_grad():
            logits[task] = skill_row(z.to(logits), searched.to(logits.device), shape)
        loss = shot_loss(model, task, shots, batch_size)
        return loss, loss + l1_penalty(z, l1)

    was_training, rng = model.training, np.random.get_state()
    model.eval()
    try:
        start = torch.zeros(size, dtype=torch.float64)  # [S] the uniform row
        uniform_loss, best_objective = objective(start)
        best, best_loss, evaluations = start, uniform_loss, 1
        if size >= 2:  # pycma searches two or more dimensions; one free skill leaves nothing to weigh
            options = {"seed": seed + 1, "bounds": [-bound, bound], "verbose": -9, "maxfevals": max_evaluations}
            es = cma.CMAEvolutionStrategy(start.tolist(), sigma0, options)  # seed + 1: pycma reads 0 as "by the clock"
            while evaluations < max_evaluations:
                candidates = es.ask()
                values = []
                for x in candidates[: max_evaluations - evaluations]:
                    z = torch.tensor(x, dtype=torch.float64)  # [S]
                    loss, value = objective(z)
                    evaluations += 1
                    values.append(value)
                    if value < best_objective:
                        best, best_loss, best_objective = z, loss, value
                if len(values) < len(candidates):
                    break  # the budget ends inside this generation
                es.tell(candidates, values)
    finally:
        with torch.no_grad():
            logits[task] = original
        model.train(was_training)
        np.random.set_state(rng)
    row = skill_row(best.to(logits.dtype), searched, shape).to(logits.device)  # [L, H, K]
    weights = torch.zeros(shape[2], dtype=torch.float64)  # [K]
    weights[searched] = torch.softmax(torch.nn.functional.logsigmoid(best), 0)  # σ(z) / Σσ(z)
    record = {
        "evaluations": evaluations,
        "best_loss": best_loss,
        "best_objective": best_objective,
        "uniform_loss": uniform_loss,
        "l1": l1,
        "bound": bound,
        "sigma0": sigma0,
        "seed": seed,
        "searched_skills": size,
    }
    return LoraHubResult(row, weights, record)


def _import_cma() -> Any:
    try:
        import cma
    except ImportError as exc:
        raise ModelError(
            f"LoraHub's search uses CMA-ES from the cma package, which is not installed: {INSTALL}"
        ) from exc
    return cma
