"""Zero-shot routing rows for a new task of a trained ``poly`` / ``mhr`` run, read off the seen tasks' rows.

Two baselines beside the graph router's zero-shot composition (docs/methods.md §1); neither trains anything:

* :func:`neighbour_logits` — Poly with neighbour-averaged routing logits: the relation-weighted mean of the
  related tasks' logits rows (the relations a user declares, used without a GNN);
* :func:`nearest_task_logits` — LoRAuter-style nearest-task routing: the k seen tasks most similar to the new one
  (the caller gives the similarities, e.g. the cosine of mean example embeddings), weighted by
  ``softmax(sim / temperature)``; the new row routes exactly as the weighted mixture of their routings.

Both are pure functions of a logits tensor; :func:`set_task_logits` writes a row into a model's router.

Poly's routing is **not** a softmax over the K skills: at inference it is ``w = σ(z) / Σ_k σ(z_k)``
(:func:`~taskgraph.routing.poly.poly_weights`). A mixture of routings ``p = Σ_j α_j w_j`` is therefore turned back
into logits by inverting that map, ``z_k = logit(c · p_k)`` with ``c = 1 / (2 max_k p_k)`` per (layer, head) (so the
largest logit is 0 and every ``c · p_k`` lies in (0, 1/2]): ``σ(z_k) / Σ σ(z) = p_k`` exactly, up to Poly's ε.

Owned skills (a task adapted MHR-μ style owns a skill: ``+∞`` in its row, ``−∞`` in every other row, see
:mod:`taskgraph.routing.poly`) stay owned: a new row is ``−∞`` on every owned skill, and mixture mass a neighbour puts
there is dropped (the rest renormalised). An entry of ``−∞`` in a neighbour's row (a skill it cannot use) takes no
part in the logits mean. A (layer, head) left with no skill to route to is a ModelError.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from taskgraph.errors import ModelError
from taskgraph.routing.poly import PolyRouter, poly_weights

if TYPE_CHECKING:
    from taskgraph.model import TaskGraphModel

ROW_ROUTERS = ("mhr", "poly")  # the routers that hold one logits row per task


def neighbour_logits(logits: Tensor, relate: dict[int, float]) -> Tensor:
    r"""The relation-weighted mean of the neighbours' routing logits rows.

    .. math::
        z_{new} = \frac{\sum_{j} r_j z_j}{\sum_j r_j}

    taken entry by entry over the neighbours whose entry is finite (``−∞``: a skill that neighbour cannot use);
    ``−∞`` where no neighbour's entry is finite and on every owned skill.

    Args:
        logits: ``[T, L, H, K]`` the router's logits (``L = 1`` with ``share_layers``).
        relate: ``{task id: weight ≥ 0}``, at least one weight positive.

    Returns:
        ``[L, H, K]`` the new task's logits row.

    Raises:
        ModelError: an unknown task id, a negative or non-finite weight, all weights zero, or a (layer, head)
            where no neighbour routes to a skill it may use.
    """
    ids, r = _relations(relate, logits.shape[0])
    z = logits.detach()[ids]  # [N, L, H, K]
    finite = torch.isfinite(z)  # [N, L, H, K]
    votes = r.to(z)[:, None, None, None] * finite  # [N, L, H, K] a neighbour's weight where its entry is finite
    total = votes.sum(0)  # [L, H, K]
    mean = (votes * torch.where(finite, z, torch.zeros_like(z))).sum(0) / total.clamp_min(1e-30)  # [L, H, K]
    row = mean.masked_fill((total == 0) | _owned(logits), -math.inf)  # [L, H, K]
    _check_routable(row, f"the neighbours {sorted(relate)}")
    return row


def nearest_task_logits(logits: Tensor, similarity: Tensor, k: int, temperature: float) -> Tensor:
    r"""LoRAuter-style routing: the logits row whose Poly routing is the mixture of the k nearest tasks' routings.

    .. math::
        p = \sum_{j \in \mathrm{top}_k(s)} \alpha_j\, w(z_j),\quad
        \alpha = \mathrm{softmax}(s_{\mathrm{top}_k} / \tau),\quad
        z_{new,k} = \mathrm{logit}\Big(\frac{p_k}{2 \max_{k'} p_{k'}}\Big)

    with ``w`` Poly's inference routing (:func:`~taskgraph.routing.poly.poly_weights`), so that
    ``w(z_new) = p`` (see the module docstring). With ``k = 1`` the row routes exactly as the nearest task.

    Args:
        logits: ``[T, L, H, K]`` the seen tasks' logits (pass only the rows a new task may be routed like).
        similarity: ``[T]`` finite similarity of the new task to each seen task (e.g. cosine of mean embeddings).
        k: how many nearest tasks to mix, ``1 ≤ k ≤ T``.
        temperature: τ > 0 of the softmax over the k similarities.

    Returns:
        ``[L, H, K]`` the new task's logits row (``−∞`` on skills no chosen task routes to, and on owned skills).

    Raises:
        ModelError: a bad ``k`` / ``temperature`` / ``similarity``, or a (layer, head) where the chosen tasks
            route only through skills they own.
    """
    t = logits.shape[0]
    if similarity.shape != (t,):
        raise ModelError(f"similarity must be [T] = [{t}] (one value per seen task), got {tuple(similarity.shape)}")
    if not bool(torch.isfinite(similarity).all()):
        raise ModelError("similarity holds a non-finite value; give a finite similarity for every seen task")
    if not 1 <= k <= t:
        raise ModelError(f"k={k}: choose 1 ≤ k ≤ {t} (the number of seen tasks)")
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ModelError(f"temperature={temperature}: must be a positive number")
    top, ids = similarity.detach().float().topk(k)  # [k], [k]
    alpha = torch.softmax(top / temperature, dim=0)  # [k]
    z = logits.detach()[ids.to(logits.device)].float()  # [k, L, H, K]
    w = poly_weights(z, temperature=1.0, sample=False)  # [k, L, H, K] each neighbour's inference routing
    p = torch.einsum("j,jlhk->lhk", alpha.to(w.device), w)  # [L, H, K]
    p = p.masked_fill(_owned(logits), 0.0)  # [L, H, K] no mass on a skill another task owns
    return mixture_logits(p).to(logits.dtype)


def mixture_logits(p: Tensor) -> Tensor:
    """Logits ``z`` with ``poly_weights(z) = p / Σ_k p`` (inference): ``logit(p_k / (2 max_k p_k))``, ``−∞`` where 0.

    Args:
        p: ``[..., K]`` non-negative routing mass (need not sum to 1).

    Returns:
        ``[..., K]``; the largest entry of every row is 0.

    Raises:
        ModelError: a row with no mass.
    """
    peak = p.amax(dim=-1, keepdim=True)  # [..., 1]
    _check_routable(torch.zeros_like(p).masked_fill(p <= 0, -math.inf), "the chosen tasks")
    q = p / (2 * peak.clamp_min(1e-30))  # [..., K] in [0, 1/2]
    return torch.log(q) - torch.log1p(-q)  # [..., K] logit(q); log(0) = −∞


def set_task_logits(model: TaskGraphModel, task: int, row: Tensor) -> None:
    """Write ``row`` as task ``task``'s routing logits in a ``poly`` / ``mhr`` model (no gradient, in place).

    Args:
        model: a model whose router holds one logits row per task.
        task: the task's id (e.g. the one :meth:`~TaskGraphModel.add_task_to_learn` returned).
        row: ``[L, H, K]`` (``[1, H, K]`` with ``share_layers``): the router's row shape.

    Raises:
        ModelError: another router kind, a task out of range, a row of the wrong shape, a NaN / ``+∞`` entry, or a
            finite entry on a skill another task owns.
    """
    router = model.router
    if not isinstance(router, PolyRouter):
        raise ModelError(
            f"set_task_logits writes a routing logits row, which only the routers {list(ROW_ROUTERS)} hold; "
            f"this model's router is {model.spec.router.kind!r}"
        )
    logits = router.logits  # [T, L, H, K]
    if not 0 <= task < logits.shape[0]:
        raise ModelError(
            f"task {task} is out of range: the router holds {logits.shape[0]} rows (0..{logits.shape[0] - 1})"
        )
    if tuple(row.shape) != tuple(logits.shape[1:]):
        raise ModelError(f"row must be {list(logits.shape[1:])} (the router's [L, H, K]), got {list(row.shape)}")
    if bool(torch.isnan(row).any() | torch.isposinf(row).any()):
        raise ModelError("row holds NaN or +inf; a new task's logits are finite or −inf (a skill it does not use)")
    others = torch.cat([logits[:task], logits[task + 1 :]]).detach()  # [T-1, L, H, K]
    if bool((_owned(others) & torch.isfinite(row.to(logits.device))).any()):
        raise ModelError(
            f"row gives task {task} a finite logit on a skill another task owns; those entries must be −inf"
        )
    with torch.no_grad():
        logits[task] = row.to(logits)


def _owned(logits: Tensor) -> Tensor:
    """``[L, H, K]`` bool: the skills some task owns (a ``+∞`` logit)."""
    return torch.isposinf(logits).any(0)


def _relations(relate: dict[int, float], num_tasks: int) -> tuple[Tensor, Tensor]:
    if not relate:
        raise ModelError("relate is empty: give at least one {task id: weight} neighbour")
    for task, weight in relate.items():
        if not 0 <= task < num_tasks:
            raise ModelError(f"relate: unknown task id {task}; the logits hold tasks 0..{num_tasks - 1}")
        if not (math.isfinite(weight) and weight >= 0):
            raise ModelError(f"relate: task {task} has weight {weight}; a relation weight is finite and ≥ 0")
    if sum(relate.values()) <= 0:
        raise ModelError(f"relate: every weight is 0 ({relate}); give at least one positive weight")
    ids = torch.tensor(sorted(relate), dtype=torch.long)  # [N]
    return ids, torch.tensor([float(relate[int(i)]) for i in ids])  # [N], [N]


def _check_routable(row: Tensor, who: str) -> None:
    """ModelError when some (layer, head) of ``row [..., K]`` is ``−∞`` on every skill."""
    dead = torch.isneginf(row).all(-1)  # [...]
    if bool(dead.any()):
        where = [tuple(i) for i in dead.nonzero().tolist()][:3]
        raise ModelError(
            f"{who} route to no skill a new task may use at (layer, head) {where}: they use only skills they own; "
            f"choose other tasks"
        )
