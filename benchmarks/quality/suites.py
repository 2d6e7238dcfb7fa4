"""The suites of ``python -m benchmarks quality``: which tasks train, which are held out, and every cell's spec.

A suite is a spec with its **seen** tasks (the multi-task training set), the **held-out** tasks
(few-/zero-shot adaptation only) and a budget. Every router trains the same seen tasks on the same
splits with the same budget; only the router, the learning rate and the seed change from cell to cell.
This file holds what every suite shares (budgets, router variants, the cell spec); the suites are built in
:mod:`~benchmarks.quality.planted_suites` (planted, planted-few, planted-gen),
:mod:`~benchmarks.quality.real_suites` (real, real-few) and :mod:`~benchmarks.quality.real_gen`.

* ``planted`` — :func:`~taskgraph.data.planted.planted_spec` (default universe: 8 skills, 24 tasks,
  the last 4 held out; a random-init 2-layer BERT). Ground truth: the task × skill incidence.
* ``planted-few`` — few examples per task, many tasks, relations the user would know (issue 15's first regime):
  the planted universe with 44 tasks (40 seen; 8 skills), at most :data:`FEW_TRAIN_EXAMPLES` training examples per
  task (``--train-examples``; validation and test stay whole), and every seen pair *declared* — weight 1 where the
  two tasks share a planted skill, 0 where they do not — in every cell's spec. Only the graph router reads
  declared relations; Poly, MHR, shared and private cannot use them. (Declared pairs are left out of relation
  AUROC, so with all of them declared no AUROC is scored.)
* ``real-few`` — the real suite with few examples per task and the families declared (issue 15's first regime on
  real text): at most :data:`REAL_FEW_TRAIN_EXAMPLES` training rows per seen task (``--train-examples``; validation
  and test stay whole) and every seen pair declared — weight 1 within a family, 0 across — in every cell's spec;
  the held-out tasks are members of seen families (compositional transfer: zero-shot from the family, few-shot).
* ``planted-gen`` — the second planted universe (issue 15): :mod:`taskgraph.data.planted_gen`, the planted inputs
  with text-to-text targets — the tokens of the task's own skills that lie in the first half, in order — on a
  random-init tiny GPT-2 (no head: the routing alone tells the tasks apart). A task cannot be solved without its
  exact skills (another skill's tokens in the target are wrong tokens), so here the loss rewards the true
  factorisation; :data:`GEN_UNIVERSE` (12 tasks over 6 skills), none held out. Accuracy is exact match.
* ``real`` — ``configs/real-text.yaml`` (MiniLM-L6 and catalog text tasks with a ``family``), with
  two tasks held out unless ``held_out`` names them: the last task (in the file) of each of the first
  two of :data:`HELD_OUT_FAMILIES` that have at least two tasks, so a task of its family stays seen
  (the catalog has one topic task, so that is sentiment and authorship). Declared relations are dropped: relation recovery is measured
  against the families with none given.

Router *variants* (:data:`ROUTER_VARIANTS`) are a kind plus fixed ``router:`` keys, e.g. ``graph-strong`` =
``{kind: graph, smoothness: 3.0}``: a cell of the variant is the kind's cell with those keys (the kind's router
rate, heads and adaptation modes), so a mechanism is measured on and off under the same rules. The variants of the
options retired on 2026-12-07 (``graph-none``, ``-gradient``, ``-routing``, ``-update``, ``-sparse``,
``-warm-sparse``, ``-contrast-sparse``) are gone with them: their rows stay in the
committed records and docs/graph-prior.md, and re-running them is no longer possible.

Fairness rules, the same for every router and seed:

* **Learning rates.** The adapters and the heads share one rate from the grid (``Budget.lrs``),
  chosen per router on the mean validation accuracy over the selection seeds (``--select-seeds``, default 3). The router's own group uses a fixed rate per
  kind, :data:`ROUTER_LR` (Poly / MHR's 0.1 from the authors' code; the graph router's 3e-3, chosen by the rule
  of docs/graph-prior.md §13); routers with no parameters never use theirs.
* **Adapter scaling.** Every router runs the same :class:`~taskgraph.adapters.RoutedLoRALinear`
  with the spec's ``alpha / r`` (PEFT's Poly would scale by ``1 / r``: that alone, at equal lr,
  makes it look worse). Same r, alpha, K and target modules everywhere.
* **Equal parameters.** ``mhr`` splits the same inventory into ``Budget.mhr_heads`` heads (same
  adapter parameters as ``poly``); every other router has one head. ``shared`` has K = 1 and
  ``private`` K = T by definition; the tables print every router's trainable parameters.
* **Zero-shot relations** (the graph router only: it is the one router that can route an unseen
  task from its relations). The learned R cannot know a task it never saw, so the held-out task is
  given its relations: planted, every seen task sharing a skill with it, weight 1 (the ground
  truth — fine for routing, never used for the relation metric, which scores seen pairs only);
  real, every seen task of its family, weight 1. The few-shot modes (``full``, ``routing``) get no
  relations (``adapt_run``'s default for the graph: every trained task at ``relations.density``), so
  every router adapts from the same information there.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from taskgraph.errors import TaskgraphError
from taskgraph.registry import ROUTERS

SUITES = (
    "planted",
    "planted-few",
    "planted-gen",
    "real",
    "real-few",
    "real-gen",
)  # real-gen: benchmarks.quality.real_gen
QUALITY_ROUTERS = tuple(ROUTERS.ordered())  # every registered router, the built-ins in table order
# A variant: (kind, its fixed router keys). Measured on and off beside the kind's own row.
ROUTER_VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "graph-strong": ("graph", {"smoothness": 3.0}),
    "graph-contrast": ("graph", {"contrast": 1.0, "contrast_margin": 1.0}),
    "graph-warm": ("graph", {"warm_start": "relations"}),  # needs declared relations: planted-few
    "graph-warm-contrast": ("graph", {"warm_start": "relations", "contrast": 1.0, "contrast_margin": 1.0}),
    # the router's own rate 3e-3 (VARIANT_ROUTER_LR): measured beside graph at 1e-2, it became graph's rate
    # (docs/graph-prior.md §13); kept so the records' graph-slow rows re-run as they were
    "graph-slow": ("graph", {}),
}
QUALITY_CHOICES = QUALITY_ROUTERS + tuple(ROUTER_VARIANTS)  # what --routers accepts
# the router group's rate per kind; graph 3e-3, not 1e-2: docs/graph-prior.md §13 (1e-2 made its training chaotic)
ROUTER_LR: dict[str, float] = {"poly": 1e-1, "mhr": 1e-1, "graph": 3e-3}
VARIANT_ROUTER_LR: dict[str, float] = {"graph-slow": 3e-3}  # a variant's router rate, where not its kind's
UNUSED_ROUTER_LR = 1e-2  # routers with no parameters (shared, private, mhr-mu): the spec default, never used
OLD_SPLITS_KEY = "heads"  # a config's adapters.splits under its taskgraph 0.1 name (the spec reads both)


class QualityError(TaskgraphError):
    """The quality bench was asked for a suite, budget or output folder it cannot use."""


@dataclass(frozen=True)
class Budget:
    """The compute every cell of a suite gets (recorded in the output).

    Args:
        steps: training steps of every (router, lr, seed) cell.
        batch_size: examples per step (mixed tasks).
        lrs: the grid of the adapters + heads learning rate.
        shots: few-shot sizes of the adaptation cells.
        adapt_steps: adaptation steps (``adapt_run(steps=...)``).
        max_length: tokens per example (real suite; None keeps the config's).
        train_examples: cap on training examples per task (real suite; None: all).
        mhr_heads: H of the ``mhr`` router.
    """

    steps: int
    batch_size: int
    lrs: tuple[float, ...]
    shots: tuple[int, ...]
    adapt_steps: int
    max_length: int | None = None
    train_examples: int | None = None
    mhr_heads: int = 4

    def check(self, where: str) -> None:
        problems = []
        if self.steps < 1 or self.batch_size < 1 or self.adapt_steps < 1:
            problems.append(
                f"steps, batch_size and adapt_steps must be at least 1, got {self.steps}, "
                f"{self.batch_size}, {self.adapt_steps}"
            )
        if not self.lrs or any(not lr > 0 for lr in self.lrs) or len(set(self.lrs)) != len(self.lrs):
            problems.append(f"lrs must be distinct positive rates, got {list(self.lrs)}")
        if not self.shots or any(n < 1 for n in self.shots):
            problems.append(f"shots must be positive counts, got {list(self.shots)}")
        if self.mhr_heads < 1:
            problems.append(f"mhr_heads must be at least 1, got {self.mhr_heads}")
        if problems:
            raise QualityError(f"bench quality ({where}): " + "; ".join(problems))


# Planted lr grid: measured on seed 0 at 1500 steps, every router sat at chance at 1e-3 and collapsed at 1e-1
# (shared / poly / mhr val 0.39 / 0.36 / 0.41); the optimum lies inside 3e-3 .. 3e-2 for each (graph, private,
# mhr-mu: 1e-2; shared, poly, mhr: 3e-2), so this grid brackets every router's best rate.
PLANTED_BUDGET = Budget(steps=1500, batch_size=32, lrs=(3e-3, 1e-2, 3e-2), shots=(16, 64), adapt_steps=100)
# Real lr grid: with {1e-3, 3e-3} every router picked 3e-3, the edge (seed 0, 200 steps; val 0.80-0.82 at 3e-3
# against 0.77-0.78 at 1e-3), so the grid reaches 1e-2.
REAL_BUDGET = Budget(
    steps=200, batch_size=16, lrs=(1e-3, 3e-3, 1e-2), shots=(16, 64), adapt_steps=30, max_length=48, train_examples=2000
)
# Few rows per task (real-few): the real budget, at most 128 training rows per task (the range is 64-256).
REAL_FEW_TRAIN_EXAMPLES = 128
REAL_FEW_BUDGET = replace(REAL_BUDGET, train_examples=REAL_FEW_TRAIN_EXAMPLES)
# bench quality --suite real-gen: 120 steps of 16 (about 400 examples a task) at the two rates text-gen used; rank
# classification of ~1,100 val and ~1,100 test rows per cell dominates the time, so the grid stays at two rates.
REAL_GEN_BUDGET = Budget(
    steps=120, batch_size=16, lrs=(3e-3, 1e-2), shots=(16,), adapt_steps=1, max_length=48, train_examples=2000
)
# Few examples per task (planted-few): the planted budget, at most 64 training examples per task.
FEW_TRAIN_EXAMPLES = 64
FEW_BUDGET = Budget(
    steps=1500,
    batch_size=32,
    lrs=(3e-3, 1e-2, 3e-2),
    shots=(16, 64),
    adapt_steps=100,
    train_examples=FEW_TRAIN_EXAMPLES,
)
TINY_BUDGET = Budget(steps=6, batch_size=8, lrs=(1e-3, 1e-2), shots=(4,), adapt_steps=3)
# planted-gen (the second planted universe, benchmarks.quality.planted_suites): 2,000 steps of 32.
PLANTED_GEN_BUDGET = Budget(steps=2000, batch_size=32, lrs=(3e-3, 1e-2, 3e-2), shots=(16,), adapt_steps=1)


@dataclass(frozen=True)
class HeldOutTask:
    """A task kept out of training, adapted few-/zero-shot.

    Args:
        name, num_labels, data: as in a spec's task entry (``data`` is its ``data:`` block).
        family: its family (real suite), else None.
        relate: ``{seen task: weight}`` given to the graph router's zero-shot routing.
    """

    name: str
    num_labels: int
    data: dict[str, Any]
    family: str | None
    relate: dict[str, float]


@dataclass(frozen=True)
class Suite:
    """A suite: the seen-task spec every cell starts from, the held-out tasks and the budget.

    Args:
        name: ``planted`` or ``real``.
        base: the spec dict of the seen tasks (router, learning rates and seed are set per cell).
        base_dir: where the spec's relative data paths resolve.
        held_out: the adaptation tasks.
        families: ``{seen task: family}`` (real suite; empty for planted).
        budget: every cell's compute.
        notes: how the suite was built, for the report.
        declared: relations every cell's spec declares (``planted-few``; empty: none, relations are learned).
    """

    name: str
    base: dict[str, Any]
    base_dir: Path
    held_out: tuple[HeldOutTask, ...]
    families: dict[str, str]
    budget: Budget
    notes: tuple[str, ...] = field(default=())
    declared: tuple[tuple[str, str, float], ...] = field(default=())

    @property
    def seen_tasks(self) -> list[str]:
        return [t["name"] for t in self.base["tasks"]]

    def cell_spec(self, router: str, lr: float, seed: int) -> dict[str, Any]:
        """The spec dict of cell (router, lr, seed); see the module docstring for the rules."""
        return cell_spec(self.base, self.budget, router, lr, seed, self.declared)

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary: budget, seen and held-out tasks, notes."""
        return {
            "suite": self.name,
            "budget": asdict(self.budget),
            "seen_tasks": self.seen_tasks,
            "held_out": [asdict(t) for t in self.held_out],
            "families": dict(self.families),
            "router_lr": dict(ROUTER_LR),
            "notes": list(self.notes),
            "declared": len(self.declared),
        }


def router_lr(router: str) -> float:
    """The router group's rate of a bench router name: the variant's own (:data:`VARIANT_ROUTER_LR`), else its
    kind's (:data:`ROUTER_LR`)."""
    return VARIANT_ROUTER_LR.get(router) or ROUTER_LR.get(router_kind(router), UNUSED_ROUTER_LR)


def router_kind(router: str) -> str:
    """The router kind of a bench router name (a kind, or a variant of :data:`ROUTER_VARIANTS`)."""
    return ROUTER_VARIANTS[router][0] if router in ROUTER_VARIANTS else router


def cell_spec(
    base: Mapping[str, Any],
    budget: Budget,
    router: str,
    lr: float,
    seed: int,
    declared: Sequence[tuple[str, str, float]] = (),
) -> dict[str, Any]:
    """``base`` with ``router``'s kind (and a variant's keys) and heads, one rate ``lr`` for adapters and heads, the
    router's fixed rate, ``seed`` (initialisation and sampling), the budget's steps and batch, the relations
    ``declared`` (default: none)."""
    spec = copy.deepcopy(dict(base))
    kind = router_kind(router)
    previous = dict(spec.get("router") or {})
    section = {k: previous[k] for k in ("temperature", "gate_threshold") if k in previous}
    if kind == "graph" and previous.get("kind") == "graph":  # the config's own graph settings
        section.update({k: v for k, v in previous.items() if k not in ("kind", "temperature", "gate_threshold")})
    section.update(ROUTER_VARIANTS[router][1] if router in ROUTER_VARIANTS else {})
    spec["router"] = {"kind": kind, **section}
    adapters = {k: v for k, v in dict(spec.get("adapters") or {}).items() if k != OLD_SPLITS_KEY}
    spec["adapters"] = {**adapters, "splits": budget.mhr_heads if kind == "mhr" else 1}
    spec["relations"] = {**dict(spec.get("relations") or {}), "declared": [list(d) for d in declared]}
    training = dict(spec.get("training") or {})
    training.update(
        {
            "steps": budget.steps,
            "batch_size": budget.batch_size,
            "seed": seed,
            "lr": {"adapters": lr, "heads": lr, "router": router_lr(router)},
            "eval_every": budget.steps,
            "checkpoint_every": max(1, min(100, budget.steps // 4)),
            "keep_checkpoints": 1,
        }
    )
    if budget.train_examples is not None:
        training["train_examples"] = budget.train_examples
    spec["training"] = training
    if budget.max_length is not None:
        spec["model"] = {**dict(spec["model"]), "max_length": budget.max_length}
    spec["name"] = f"{spec.get('name', 'quality')}-{router}"
    return spec


def declare_every_pair(names: Sequence[str], related: Callable[[str, str], bool]) -> tuple[tuple[str, str, float], ...]:
    """Every unordered pair of ``names`` as a declared relation: weight 1.0 where ``related(a, b)``, else 0.0."""
    return tuple((a, b, 1.0 if related(a, b) else 0.0) for i, a in enumerate(names) for b in names[i + 1 :])


def with_overrides(budget: Budget, **changes: Any) -> Budget:
    """``budget`` with every change that is not None."""
    return replace(budget, **{k: v for k, v in changes.items() if v is not None})
