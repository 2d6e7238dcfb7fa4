"""The suites of ``python -m benchmarks merge``: a pool of conflicting tasks, their model and every cell's budget.

* ``planted`` — 8 tasks of a planted universe (8 skills, 2–3 per task, random-init 2-layer BERT, rank-4 LoRA
  on query / value). Tasks need different skill tokens from one adapter: one shared LoRA underfits them
  (:mod:`taskgraph.data.planted`), so their updates conflict when merged.
* ``real`` — MiniLM-L6 on catalog tasks of *different* families (sentiment, subjectivity, topic, authorship,
  language): near-duplicate sentiment sets fuse losslessly either way and would prove nothing.

Every task gets a single-task LoRA and a single-task L-LoRA run from one shared initialisation per seed (the
same base, adapters section, router ``shared`` and ``training.seed``), ``budget.steps`` steps each. Each
mode's learning rate (adapters and heads) is chosen once, on seed 0's validation mean over the pool, from
its grid (L-LoRA trains B only, with A frozen at its seed, and wants larger steps). The "trained together"
rows train the same tasks with one multi-task router at the same total budget, ``T × budget.steps`` steps.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.quality.real_suites import config_label, find_real_config, task_family
from benchmarks.quality.suites import Budget, QualityError, cell_spec

MODES = ("lora", "llora")  # single-task LoRA and L-LoRA (adapters.linearized)
MODE_NAMES = {"lora": "LoRA", "llora": "L-LoRA"}
# (label, merge method, fixed parameters): every method of taskgraph.merge, plus merge-then-SVD at the LoRA rank
# ("ta-svd"), and the shared subspace merging its coordinates by TIES ("subspace-ties"). "rank" is the suite's.
BENCH_METHODS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("task-arithmetic", "task-arithmetic", {}),
    ("ties", "ties", {}),
    ("dare", "dare", {}),
    ("dare-ties", "dare-ties", {}),
    ("average", "average", {}),
    ("subspace", "subspace", {"rank": "r"}),
    ("subspace-ties", "subspace", {"rank": "r", "combine": "ties"}),
    ("ta-svd", "task-arithmetic", {"rank": "r"}),
)
TOGETHER_ROUTERS = ("shared", "poly", "graph")
TOGETHER_LR = 3e-2  # planted: the quality bench's choice for shared, poly and graph at batch 32 (README)
REAL_TASKS = ("rt-polarity", "bbc-news", "debate-party", "chat-language")  # sentiment, topic, authorship, language


class MergeBenchError(QualityError):
    """``python -m benchmarks merge`` was asked for a suite, sizes or output it cannot use."""


@dataclass(frozen=True)
class MergeBudget:
    """What every cell of a suite gets.

    Args:
        single: the single-task cells' budget (``steps`` per task; ``lrs`` unused, see ``mode_lrs``).
        mode_lrs: each mode's learning-rate grid (chosen on seed 0's validation).
        together_lr: the adapters + heads rate of the "trained together" cells.
        val_examples: cap on the validation rows scored per task when choosing λ / density / p (None: all); the
            test split is always scored whole (the single-task and trained-together cells score it whole too).
        grids: smaller hyper-parameter grids (``lambda_grid``, ``density_grid``, ``p_grid``) for every method that
            has them (None: the methods' own, :mod:`taskgraph.merge.params`).
    """

    single: Budget
    mode_lrs: dict[str, tuple[float, ...]]
    together_lr: float
    val_examples: int | None = None
    grids: dict[str, tuple[float, ...]] | None = None


PLANTED_MERGE_BUDGET = MergeBudget(
    Budget(steps=300, batch_size=32, lrs=(0.0,), shots=(1,), adapt_steps=1),
    {"lora": (1e-2, 3e-2, 1e-1), "llora": (3e-2, 1e-1, 3e-1, 1.0, 3.0)},
    TOGETHER_LR,
)
# Real: MiniLM forward passes dominate on CPU, so single-task runs are short (60 steps × 16 examples of ≤ 32 tokens),
# LoRA keeps the rate the quality bench chose for MiniLM (3e-3) while L-LoRA (A frozen) picks from two, and λ / density
# / p are chosen from smaller grids on 64 validation rows per task; every test split is scored whole (2,317 rows).
REAL_MERGE_BUDGET = MergeBudget(
    Budget(steps=60, batch_size=16, lrs=(0.0,), shots=(1,), adapt_steps=1, max_length=32, train_examples=2000),
    {"lora": (3e-3,), "llora": (1e-2, 3e-2)},
    3e-3,
    val_examples=64,
    grids={"lambda_grid": (0.3, 0.5, 0.7, 1.0, 1.5), "density_grid": (0.2, 0.5, 1.0), "p_grid": (0.3, 0.6)},
)
TINY_MERGE_BUDGET = MergeBudget(
    Budget(steps=8, batch_size=8, lrs=(0.0,), shots=(1,), adapt_steps=1), {"lora": (3e-2,), "llora": (1e-1,)}, 3e-2
)


@dataclass(frozen=True)
class MergeSuite:
    """A pool of tasks, the spec every cell starts from, and the budget.

    Args:
        name: ``planted`` or ``real``.
        base: a spec dict holding every pool task (model, adapters, training defaults).
        base_dir: where its relative paths resolve.
        families: ``{task: family}`` (real), empty for planted.
        budget: every cell's compute.
    """

    name: str
    base: dict[str, Any]
    base_dir: Path
    families: dict[str, str]
    budget: MergeBudget
    notes: tuple[str, ...] = field(default=())

    @property
    def tasks(self) -> list[str]:
        return [t["name"] for t in self.base["tasks"]]

    @property
    def rank(self) -> int:
        return int(self.base["adapters"]["rank"])

    def single_spec(self, task: str, mode: str, lr: float, seed: int) -> dict[str, Any]:
        """One task, router ``shared``, LoRA or L-LoRA, ``budget.single.steps`` steps from ``seed``."""
        spec = self._with_tasks([task])
        spec["adapters"] = {**spec["adapters"], "linearized": mode == "llora"}
        out = cell_spec(spec, self.budget.single, "shared", lr, seed)
        out["name"] = f"{self.name}-{mode}-{task}"
        return out

    def together_spec(self, tasks: Sequence[str], router: str, seed: int) -> dict[str, Any]:
        """The tasks trained together by ``router`` at the same total budget (``T × steps``)."""
        budget = Budget(**{**asdict(self.budget.single), "steps": len(tasks) * self.budget.single.steps})
        out = cell_spec(self._with_tasks(list(tasks)), budget, router, self.budget.together_lr, seed)
        out["name"] = f"{self.name}-together-{router}"
        return out

    def _with_tasks(self, names: list[str]) -> dict[str, Any]:
        spec = copy.deepcopy(self.base)
        by_name = {t["name"]: t for t in spec["tasks"]}
        spec["tasks"] = [by_name[n] for n in names]
        return spec

    def describe(self) -> dict[str, Any]:
        return {
            "suite": self.name,
            "tasks": self.tasks,
            "families": dict(self.families),
            "rank": self.rank,
            "single_budget": asdict(self.budget.single),
            "mode_lrs": {k: list(v) for k, v in self.budget.mode_lrs.items()},
            "together_lr": self.budget.together_lr,
            "val_examples": self.budget.val_examples,
            "grids": {k: list(v) for k, v in (self.budget.grids or {}).items()},
            "notes": list(self.notes),
        }


def planted_merge_suite(
    budget: MergeBudget = PLANTED_MERGE_BUDGET, *, tasks: int = 8, tiny: bool = False
) -> MergeSuite:
    """``tasks`` tasks of a planted universe (8 skills; tiny: 4 skills, a 16-wide BERT, for tests)."""
    from taskgraph.data import planted_spec, tiny_planted_spec

    if tiny:
        spec = tiny_planted_spec(tasks=tasks, hidden_size=16, name="planted")
    else:
        spec = planted_spec(skills=8, tasks=tasks, held_out=0, min_tasks_per_skill=1, name="planted")
    notes = (f"planted universe of {tasks} tasks over {8 if not tiny else 4} skills; every task is seen",)
    return MergeSuite("planted", spec, Path("."), {}, budget, notes)


def real_merge_suite(
    budget: MergeBudget = REAL_MERGE_BUDGET, config: str | None = None, tasks: Sequence[str] = REAL_TASKS
) -> MergeSuite:
    """The catalog tasks ``tasks`` of ``configs/real-text.yaml`` (MiniLM-L6), one per family where possible."""
    import yaml

    path = find_real_config(config)
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    entries = {t["name"]: dict(t) for t in raw["tasks"]}
    missing = [t for t in tasks if t not in entries]
    if missing:
        raise MergeBenchError(
            f"bench merge --suite real: tasks {missing} are not in {str(path)!r}; it has {list(entries)}"
        )
    chosen = [entries[t] for t in tasks]
    families = {t["name"]: str(task_family(t)) for t in chosen}
    for t in chosen:
        t["family"] = families[t["name"]]
    base = {**raw, "tasks": chosen, "relations": {"declared": []}}
    notes = (f"config {config_label(path)}; tasks {list(tasks)} (families {sorted(set(families.values()))})",)
    return MergeSuite("real", base, path.parent.resolve(), families, budget, notes)


def task_subsets(
    pool: Sequence[str], sizes: Sequence[int], per_size: int, seed: int = 0
) -> dict[int, list[tuple[str, ...]]]:
    """``{T: [subset, ...]}``: ``per_size`` distinct random subsets of the pool per size (one: the whole pool).

    The same subsets serve every mode, method and seed, so every comparison is paired.
    """
    import itertools
    import random

    rng = random.Random(seed)
    out: dict[int, list[tuple[str, ...]]] = {}
    for size in sizes:
        if not 2 <= size <= len(pool):
            raise MergeBenchError(
                f"bench merge --tasks {size}: a merge takes 2 to {len(pool)} tasks of the pool {list(pool)}"
            )
        every = list(itertools.combinations(pool, size))
        if len(every) <= per_size:
            out[size] = every
        else:
            out[size] = [every[i] for i in sorted(rng.sample(range(len(every)), per_size))]
    return out


def method_params(
    method: str, fixed: Mapping[str, Any], rank: int, grids: Mapping[str, tuple[float, ...]] | None = None
) -> dict[str, Any]:
    """A bench method's parameters: its fixed ones with ``"r"`` replaced by the suite's LoRA rank, and the suite's
    grids that ``method`` has."""
    from taskgraph.registry import MERGES

    fields = MERGES.get(method).params.model_fields
    return {
        **{k: v for k, v in (grids or {}).items() if k in fields},
        **{k: (rank if v == "r" else v) for k, v in fixed.items()},
    }
