"""``RelationMatrix``: learnable task–task relation weights on a sparse candidate edge set.

Our design (docs/methods.md §1 gives only the paper's abstract; the equations are ours):

* **Candidate edges.** While the number of trained tasks T₀ is small (``T₀ ≤ dense_limit``) every
  unordered pair is a candidate, ``E = T₀(T₀−1)/2``. Beyond that the candidates are the declared
  pairs plus, for every task, its ``top_k`` nearest tasks by cosine similarity of an embedding
  (the router passes its GNN task embeddings), recomputed every ``refresh_every`` training steps.
  Nothing of size T×T is ever built: the neighbour search runs in row blocks.
* **Slots.** The candidates live in a fixed number of *slots* (``E_cap = |declared| + T₀·k`` in the
  sparse mode), so parameter shapes never change and an optimizer keeps working across refreshes.
  A refresh keeps every surviving pair in its slot (its θ and optimizer moments stay meaningful),
  frees the slots of dropped pairs and gives them to new pairs at the neutral value.
* **Values.** One parameter per undirected pair, ``R_ij = σ(θ_ij)`` — symmetric by construction,
  in (0, 1). Declared pairs start at their declared value ``R⁰_ij``, every other pair at the
  density target ρ (so the density penalty is zero at the start). ``learn=False`` freezes θ.
* **Regularisers** (pure functions below): the density penalty ``λ_R (mean(R) − ρ)²`` pulls the
  *mean* towards ρ — it cannot drive every weight to 0, its minimum is at mean(R) = ρ — and the
  declared pull ``λ_p Σ_declared (R_ij − R⁰_ij)²`` keeps declared pairs near what the user said.
* **Zero-shot tasks** added after training (:meth:`RelationMatrix.add_task`) get their declared
  pairs appended as new slots; their messages flow only *into* the new task (see
  :meth:`RelationMatrix.directed`), so adding a task never changes the routing of the others.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from taskgraph.errors import ModelError
from taskgraph.precision import at_least_fp32

EPS = 1e-4  # declared values are clamped to [EPS, 1 − EPS] before the logit
KNN_BLOCK = 1024  # rows per block of the blocked neighbour search


# ----------------------------------------------------------------------------- pure functions
def relation_logit(value: float | Tensor) -> Tensor:
    """``θ = logit(clamp(R, ε, 1 − ε))``: the parameter that gives relation weight ``value``."""
    r = torch.as_tensor(value, dtype=torch.get_default_dtype()).clamp(EPS, 1.0 - EPS)
    return torch.log(r) - torch.log1p(-r)


def all_pairs(num_tasks: int) -> Tensor:
    """Every unordered pair ``i < j`` of ``num_tasks`` tasks: ``[2, T(T−1)/2]`` long, row-major order."""
    return torch.triu_indices(num_tasks, num_tasks, offset=1)  # [2, T(T-1)/2]


def canonical_pairs(index: Tensor) -> Tensor:
    """Undirected pairs as sorted unique ``(min, max)`` columns, self-pairs dropped: ``[2, E']``."""
    lo, hi = index.min(dim=0).values, index.max(dim=0).values  # [E], [E]
    keep = lo != hi
    pairs = torch.stack([lo[keep], hi[keep]])  # [2, E]
    return torch.unique(pairs, dim=1)  # [2, E'] sorted


def knn_pairs(embeddings: Tensor, k: int, block: int = KNN_BLOCK) -> Tensor:
    """The ``k`` nearest tasks of every task by cosine similarity, as undirected pairs.

    Runs in blocks of ``block`` rows (memory ``O(block · T)``, never ``T × T``).

    Args:
        embeddings: ``[T, d]`` task embeddings.
        k: neighbours per task (capped at T − 1).

    Returns:
        ``[2, E']`` canonical pairs (``i < j``, unique), ``E' ≤ T · k``.
    """
    num = embeddings.shape[0]
    k = min(k, num - 1)
    if k <= 0:
        return torch.zeros(2, 0, dtype=torch.long, device=embeddings.device)
    x = torch.nn.functional.normalize(at_least_fp32(embeddings.detach()), dim=-1)  # [T, d]
    rows, cols = [], []
    for start in range(0, num, block):
        sim = x[start : start + block] @ x.T  # [b, T]
        ids = torch.arange(start, start + sim.shape[0], device=x.device)  # [b]
        sim[torch.arange(sim.shape[0], device=x.device), ids] = -math.inf  # not itself
        nbr = sim.topk(k, dim=1).indices  # [b, k]
        rows.append(ids[:, None].expand_as(nbr).reshape(-1))
        cols.append(nbr.reshape(-1))
    return canonical_pairs(torch.stack([torch.cat(rows), torch.cat(cols)]))  # [2, E']


def masked_mean(x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """``(mean of x [E] over mask [E], count)``, the mean 0 when nothing is masked in — computed on the device, never
    reading the mask on the host (boolean indexing would wait for the device every training step)."""
    count = mask.sum()  # []
    return torch.where(mask, x, torch.zeros_like(x)).sum() / count.clamp(min=1), count


def density_penalty(r: Tensor, target: float, strength: float, mask: Tensor | None = None) -> Tensor:
    """``λ_R · (mean(R) − ρ)²`` over the relation weights ``r [E]`` (those in ``mask [E]``, if given); 0 when there
    are none.

    Its minimum is at ``mean(R) = ρ``: it keeps the graph at a chosen density instead of
    pushing every weight to 0 as an L1 penalty would.
    """
    mean, count = masked_mean(r, torch.ones_like(r, dtype=torch.bool) if mask is None else mask)
    return torch.where(count > 0, strength * (mean - target) ** 2, torch.zeros_like(mean))


def declared_pull(r: Tensor, prior: Tensor, declared: Tensor, strength: float) -> Tensor:
    """``λ_p · Σ_declared (R_ij − R⁰_ij)²``: ``r [E]``, ``prior [E]``, ``declared [E]`` bool."""
    diff = torch.where(declared, r - prior, torch.zeros_like(r))  # [E]
    return strength * (diff**2).sum()


# ----------------------------------------------------------------------------- the module
class RelationMatrix(nn.Module):
    r"""Learnable symmetric relation weights ``R_ij = σ(θ_ij) ∈ (0, 1)`` on candidate pairs.

    Args:
        num_tasks: T₀, the trained tasks (zero-shot tasks are added later by :meth:`add_task`).
        declared: ``(i, j, R⁰)`` declared relations between trained tasks (``i ≠ j``).
        learn: whether θ is trained. (default: ``True``)
        density: ρ, the target mean weight; undeclared pairs start there. (default: ``0.5``)
        top_k: nearest tasks per task in the sparse mode. (default: ``8``)
        refresh_every: training steps between refreshes of the sparse candidates. (default: ``100``)
        dense_limit: all pairs are candidates while ``T₀ ≤ dense_limit``. (default: ``64``)
        embeddings: ``[T₀, d]`` embeddings for the first sparse candidate set (default: none, then
            the first candidates are only the declared pairs until the first refresh).

    Shapes:
        - **slots:** ``index [2, E_cap]`` (``i < j``), ``active [E_cap]``, ``theta [E_cap]``,
          ``prior [E_cap]`` (R⁰, 0 where undeclared), ``declared [E_cap]`` bool.
        - :meth:`weights`: ``(index [2, E], R [E])`` over the active slots.
    """

    def __init__(
        self,
        num_tasks: int,
        declared: Sequence[tuple[int, int, float]] = (),
        *,
        learn: bool = True,
        density: float = 0.5,
        top_k: int = 8,
        refresh_every: int = 100,
        dense_limit: int = 64,
        embeddings: Tensor | None = None,
    ) -> None:
        super().__init__()
        if num_tasks < 1:
            raise ModelError(f"a relation matrix needs at least one task, got {num_tasks}")
        self.num_tasks = self.num_trained = num_tasks
        self.density, self.top_k, self.refresh_every = float(density), int(top_k), int(refresh_every)
        self.dense = num_tasks <= dense_limit
        pairs = {}
        for i, j, w in declared:
            if not (0 <= i < num_tasks and 0 <= j < num_tasks) or i == j:
                raise ModelError(
                    f"declared relation ({i}, {j}) is not a pair of distinct task ids in 0..{num_tasks - 1}"
                )
            pairs[(min(i, j), max(i, j))] = float(w)
        if self.dense:
            index = all_pairs(num_tasks)  # [2, E_cap]
        else:  # declared pairs in fixed slots, then T·k slots for neighbours
            fixed = torch.tensor(sorted(pairs), dtype=torch.long).reshape(-1, 2).T  # [2, D]
            index = torch.cat([fixed, torch.zeros(2, num_tasks * self.top_k, dtype=torch.long)], dim=1)
        cap = index.shape[1]
        prior, is_declared = torch.zeros(cap), torch.zeros(cap, dtype=torch.bool)
        slot = {(int(a), int(b)): s for s, (a, b) in enumerate(index.T.tolist())}
        for pair, w in pairs.items():
            prior[slot[pair]], is_declared[slot[pair]] = w, True
        active = torch.ones(cap, dtype=torch.bool) if self.dense else is_declared.clone()
        self.register_buffer("index", index)  # [2, E_cap]
        self.register_buffer("active", active)  # [E_cap]
        self.register_buffer("prior", prior)  # [E_cap]
        self.register_buffer("declared", is_declared)  # [E_cap]
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))  # training forwards seen
        theta = torch.where(is_declared, relation_logit(prior), relation_logit(self.density))  # [E_cap]
        self.theta = nn.Parameter(theta, requires_grad=learn)
        self._slot_plan: _SlotPlan | None = None
        if not self.dense and embeddings is not None:
            self.refresh(embeddings)

    # ---- reading --------------------------------------------------------------------------
    @property
    def learn(self) -> bool:
        """Whether θ is a trained parameter (``relations.learn``)."""
        return self.theta.requires_grad

    def weights(self) -> tuple[Tensor, Tensor]:
        """The active pairs and their weights: ``(index [2, E] with i < j, R [E])``; R differentiable."""
        plan = self._plan()
        if plan.slots is None:
            return plan.index, torch.sigmoid(self.theta)
        return plan.index, torch.sigmoid(self.theta.index_select(0, plan.slots))

    def directed(self, index: Tensor, r: Tensor) -> tuple[Tensor, Tensor]:
        """Message edges ``(edge_index [2, E'], R [E'])`` of the pairs ``index [2, E]`` (i < j) with weights
        ``r [E]`` (from :meth:`weights`): both directions of every pair, except that a pair joining a
        trained task to a zero-shot task carries messages only into the zero-shot task."""
        plan = self._plan()
        if index is plan.index:  # the active pairs: their message edges are known until the slots change
            return plan.messages, r.index_select(0, plan.pick)
        edge_index, pick = _message_edges(index, self.num_trained)
        return edge_index, r.index_select(0, pick)

    def _plan(self) -> _SlotPlan:
        """The active slots and their message edges, recomputed only when the slots changed (a refresh, a
        task added, another device): no host synchronisation and a handful of operations fewer every step."""
        key = (self.index, self.active, self.index._version, self.active._version, self.num_trained)
        cached = self._slot_plan
        if (
            cached is None
            or len(cached.key) != len(key)
            or any(a is not b if isinstance(a, Tensor) else a != b for a, b in zip(cached.key, key))
        ):
            with torch.no_grad():
                slots = None if bool(self.active.all()) else self.active.nonzero().squeeze(1)  # [E]
                index = self.index if slots is None else self.index.index_select(1, slots)  # [2, E]
                messages, pick = _message_edges(index, self.num_trained)  # [2, E'], [E']
            cached = self._slot_plan = _SlotPlan(key, slots, index, messages, pick)
        return cached

    def regularizer(self, regularization: float, pull: float) -> Tensor:
        """``density_penalty + declared_pull`` over the active slots; 0 when θ is frozen."""
        if not self.learn:
            return self.theta.new_zeros(())
        r = torch.sigmoid(self.theta)  # [E_cap]
        on = self.active
        density = density_penalty(r, self.density, regularization, mask=on)
        return density + declared_pull(r, self.prior, self.declared & on, pull)

    # ---- sparse candidates ----------------------------------------------------------------
    def refresh_due(self) -> bool:
        """Whether the next training forward should refresh the sparse candidates (never when dense)."""
        return not self.dense and int(self.steps) % self.refresh_every == 0

    def tick(self) -> None:
        """Count one training forward."""
        self.steps += 1

    @torch.no_grad()
    def refresh(self, embeddings: Tensor) -> None:
        """Recompute the sparse candidates: declared pairs + each trained task's ``top_k`` nearest.

        Slot-stable: pairs that stay keep their slot and θ; new pairs take freed slots at the
        neutral value ρ. Zero-shot tasks keep exactly the pairs they were given.

        Args:
            embeddings: ``[T, d]`` (only the rows of trained tasks are used).
        """
        if self.dense:
            return
        trained = self.num_trained
        wanted = knn_pairs(embeddings[:trained], self.top_k)  # [2, E'] canonical

        def code(idx: Tensor) -> Tensor:  # [2, E] pairs -> [E] one integer per ordered pair
            return idx[0] * self.num_tasks + idx[1]

        slot_code = code(self.index)  # [E_cap]
        fixed = self.declared | (self.index[1] >= trained)  # declared or zero-shot: never replaced
        wanted = wanted[:, ~torch.isin(code(wanted), slot_code[fixed])]  # [2, E''] the neighbour pairs
        stay = self.active & ~fixed & torch.isin(slot_code, code(wanted))  # [E_cap]
        new = wanted[:, ~torch.isin(code(wanted), slot_code[stay])]  # [2, N]
        free = (~fixed & ~stay).nonzero().squeeze(1)  # [F], F ≥ N by the slot budget
        take = free[: new.shape[1]]
        self.index[:, take] = new
        self.theta[take] = relation_logit(self.density).to(self.theta)
        self.active[free] = False
        self.active[take] = True

    # ---- zero-shot tasks ------------------------------------------------------------------
    @torch.no_grad()
    def add_task(self, relate: dict[int, float]) -> int:
        """Append a zero-shot task related to existing tasks ``{id: R⁰}``; returns its id.

        Each relation becomes a declared slot (θ = logit R⁰, pulled towards R⁰ if trained later).
        """
        new = self.num_tasks
        bad = [i for i in relate if not 0 <= i < new]
        if bad:
            raise ModelError(f"add_task: related task ids {bad} are out of range 0..{new - 1}")
        pairs = torch.tensor([[i, new] for i in relate], dtype=torch.long).reshape(-1, 2).T  # [2, n]
        values = torch.tensor([float(w) for w in relate.values()])  # [n]
        n, dev = pairs.shape[1], self.index.device
        self.index = torch.cat([self.index, pairs.to(dev)], dim=1)
        self.active = torch.cat([self.active, torch.ones(n, dtype=torch.bool, device=dev)])
        self.prior = torch.cat([self.prior, values.to(dev)])
        self.declared = torch.cat([self.declared, torch.ones(n, dtype=torch.bool, device=dev)])
        theta = torch.cat([self.theta.detach(), relation_logit(values).to(self.theta)])
        self.theta = nn.Parameter(theta, requires_grad=self.learn)
        self.num_tasks = new + 1
        return new

    def extra_repr(self) -> str:
        mode = "all pairs" if self.dense else f"top_k={self.top_k}, refresh_every={self.refresh_every}"
        return (
            f"tasks={self.num_tasks}, trained={self.num_trained}, slots={self.index.shape[1]}, "
            f"active={int(self.active.sum())}, {mode}, density={self.density:g}, learn={self.learn}"
        )


@dataclass(frozen=True)
class _SlotPlan:
    """What :meth:`RelationMatrix._plan` caches: the key it was made for, the active slots (None: all), their
    pairs ``[2, E]``, the message edges ``[2, E']`` and each message edge's pair ``[E']``."""

    key: tuple[object, ...]
    slots: Tensor | None
    index: Tensor
    messages: Tensor
    pick: Tensor


def _message_edges(index: Tensor, num_trained: int) -> tuple[Tensor, Tensor]:
    """Both directions of every pair ``index [2, E]`` (i < j), except into a trained task from a zero-shot one:
    ``(edge_index [2, E'], pick [E'])`` with ``pick`` each edge's pair."""
    src, dst = index  # src < dst, so a mixed pair always has the zero-shot task at dst
    back = (dst < num_trained) | (src >= num_trained)  # [E] the reverse exists unless only dst is zero-shot
    pairs = torch.arange(index.shape[1], device=index.device)  # [E]
    return torch.cat([index, index.flip(0)[:, back]], dim=1), torch.cat([pairs, pairs[back]])  # [2, E'], [E']
