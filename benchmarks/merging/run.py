"""``python -m benchmarks merge``: fold → merge against single-task and trained-together models.

    python -m benchmarks merge --suite planted --seeds 3 --tasks 2,4,8 --out runs/merge-bench

Per suite (:mod:`benchmarks.merging.suites`), every cell resumable (:mod:`benchmarks.merging.cells`):

1. **single-task runs** — every pool task, LoRA and L-LoRA, from one shared initialisation per seed; each
   mode's learning rate chosen on the validation mean over the pool, averaged over the selection seeds 0 … S−1
   (every rate of its grid runs on each of them; ``select_seeds``, default 3);
2. **merges** — for each mode and seed, every method (:data:`~benchmarks.merging.suites.BENCH_METHODS`)
   over ``--subsets`` random task subsets per size T (the whole pool once at the largest T); hyper-parameters
   chosen on the validation split; the test split scored; plus every task's head on the bare base
   ("heads only", ΔW = 0);
3. **trained together** — the first subset of each T trained by each multi-task router at the same total
   budget (T × the single-task steps).

Then the figures (:mod:`~benchmarks.merging.summary`), the pre-declared targets, ``OUT/<suite>/merge.md``,
``merge.json`` and ``plots/normalised_accuracy.png`` (:mod:`~benchmarks.merging.report`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from benchmarks.merging.cells import (
    BenchCell,
    merge_dir,
    run_merge_cell,
    single_dir,
    subset_tag,
    together_dir,
)
from benchmarks.merging.suites import (
    BENCH_METHODS,
    MODES,
    PLANTED_MERGE_BUDGET,
    REAL_MERGE_BUDGET,
    TINY_MERGE_BUDGET,
    TOGETHER_ROUTERS,
    MergeBenchError,
    MergeSuite,
    method_params,
    planted_merge_suite,
    real_merge_suite,
    task_subsets,
)
from benchmarks.quality.cells import run_train_cell
from benchmarks.quality.run import Part, environment
from benchmarks.quality.stats import select_lr
from benchmarks.quality.summary import selection_table
from taskgraph.atomic import write_text
from taskgraph.merge import MergeSession
from taskgraph.run_folder import claim_container
from taskgraph.sweep import read_record

Say = Callable[[str], None]
SUITES = ("planted", "real")
DEFAULT_SIZES = {"planted": (2, 4, 8), "real": (2, 4)}


@dataclass(frozen=True)
class MergeBenchSettings:
    """What ``python -m benchmarks merge`` runs.

    Args:
        suite: ``planted`` or ``real``.
        out: the output folder (``OUT/<suite>/...``).
        seeds: seeds of every single-task run (≥ 3 for the intervals).
        select_seeds: seeds 0 … select_seeds − 1 run every rate of a mode's grid; the mode's rate is the best
            validation mean over the pool averaged over them.
        sizes: the task counts T merged (default: the suite's, up to the whole pool).
        subsets: random task subsets per T below the whole pool.
        methods: the bench methods' labels (:data:`BENCH_METHODS`).
        routers: the "trained together" routers (empty: none).
        steps: single-task steps (default: the suite's budget).
        tiny: a tiny planted universe and budget (tests, smoke runs).
        threads: torch threads while the bench runs (default 1).
        config: the real suite's spec (default ``configs/real-text.yaml``).
    """

    suite: str
    out: Path
    seeds: int = 5
    select_seeds: int = 3
    sizes: tuple[int, ...] | None = None
    subsets: int = 3
    methods: tuple[str, ...] = tuple(label for label, _, _ in BENCH_METHODS)
    routers: tuple[str, ...] = TOGETHER_ROUTERS
    steps: int | None = None
    tiny: bool = False
    threads: int = 1
    device: str = "cpu"
    config: str | None = None

    def check(self) -> None:
        problems = []
        if self.suite not in SUITES:
            problems.append(f"suite {self.suite!r}: choose from {list(SUITES)}")
        if min(self.seeds, self.select_seeds, self.subsets, self.threads) < 1:
            problems.append(
                "seeds, select_seeds, subsets and threads must be at least 1, got "
                f"{self.seeds}, {self.select_seeds}, {self.subsets}, {self.threads}"
            )
        known = [label for label, _, _ in BENCH_METHODS]
        bad = [m for m in self.methods if m not in known]
        if bad or not self.methods:
            problems.append(f"methods {bad or []}: choose from {known}")
        if any(r not in TOGETHER_ROUTERS for r in self.routers):
            problems.append(f"routers {list(self.routers)}: choose from {list(TOGETHER_ROUTERS)}")
        if self.steps is not None and self.steps < 1:
            problems.append(f"steps must be at least 1, got {self.steps}")
        if problems:
            raise MergeBenchError("bench merge: " + "; ".join(problems))

    def build_suite(self) -> MergeSuite:
        from dataclasses import replace

        if self.tiny:
            budget = TINY_MERGE_BUDGET
        else:
            budget = PLANTED_MERGE_BUDGET if self.suite == "planted" else REAL_MERGE_BUDGET
        if self.steps is not None:
            budget = replace(budget, single=replace(budget.single, steps=self.steps))
        if self.suite == "planted":
            return planted_merge_suite(budget, tasks=max(self.sizes or (4 if self.tiny else 8,)), tiny=self.tiny)
        return real_merge_suite(budget, self.config)


def run_merge_bench(settings: MergeBenchSettings, progress: Say | None = None) -> dict[str, Any]:
    """Run (or finish) every cell, write the report; returns the result dict (see the module docstring)."""
    settings.check()
    suite = settings.build_suite()
    sizes = settings.sizes or tuple(s for s in DEFAULT_SIZES[suite.name] if s <= len(suite.tasks))
    subsets = task_subsets(suite.tasks, sizes, settings.subsets)
    say = progress or (lambda _: None)
    before = torch.get_num_threads()
    with claim_container(settings.out, kind="bench", sources=[suite.base_dir] if suite.name == "real" else []):
        torch.set_num_threads(settings.threads)
        try:
            return _run(suite, settings, subsets, say)
        finally:
            torch.set_num_threads(before)


def _run(
    suite: MergeSuite, settings: MergeBenchSettings, subsets: dict[int, list[tuple[str, ...]]], say: Say
) -> dict[str, Any]:
    from benchmarks.merging.report import write_report
    from benchmarks.merging.summary import summarise, time_target

    started, load_start = time.perf_counter(), os.getloadavg()
    out, timing = settings.out, {}

    part = Part()
    single: dict[tuple[str, float, int, str], dict[str, Any]] = {}
    select = range(settings.select_seeds)
    for mode in MODES:
        for lr in suite.budget.mode_lrs[mode]:
            for seed in select:
                for task in suite.tasks:
                    _single(suite, settings, mode, lr, seed, task, single, part, say)
    selection = {mode: pool_val_by_lr(single, mode, suite.budget.mode_lrs[mode], select) for mode in MODES}
    chosen = {mode: select_lr(by_lr) for mode, by_lr in selection.items()}
    say(f"[{suite.name}] chosen lr: " + ", ".join(f"{m} {lr:g}" for m, lr in chosen.items()))
    for mode, lr in chosen.items():
        for seed in range(settings.select_seeds, settings.seeds):
            for task in suite.tasks:
                _single(suite, settings, mode, lr, seed, task, single, part, say)
    timing["single-task runs"] = part.close()

    part = Part()
    merges: list[dict[str, Any]] = []
    heads: dict[tuple[str, int], dict[str, float]] = {}
    methods = [m for m in BENCH_METHODS if m[0] in settings.methods]
    for mode, lr in chosen.items():
        for seed in range(settings.seeds):
            runs = {t: single_dir(out, suite.name, mode, lr, seed, t) for t in suite.tasks}
            group = _lazy(lambda runs=runs: MergeSession(list(runs.values()), val_examples=suite.budget.val_examples))
            folder = merge_dir(out, suite.name, mode, seed)
            heads[(mode, seed)] = _heads_only(folder / "heads-only.json", group)
            for size, sets in subsets.items():
                for index, tasks in enumerate(sets):
                    for label, method, fixed in methods:
                        path = folder / subset_tag(size, index) / f"{label}.json"
                        params = method_params(method, fixed, suite.rank, suite.budget.grids)
                        record, ran = run_merge_cell(
                            path, group, tasks, label, method, params, say, where=f"[{suite.name}] {mode} seed {seed} "
                        )
                        part.add(record, ran, "seconds")
                        merges.append({**record, "mode": mode, "seed": seed, "size": size, "subset": index})
    timing["merges"] = part.close()

    part = Part()
    together: list[dict[str, Any]] = []
    for router in settings.routers:
        for seed in range(settings.seeds):
            for size, sets in subsets.items():
                tag = subset_tag(size, 0)
                cell = BenchCell(
                    suite.name,
                    router,
                    suite.budget.together_lr,
                    seed,
                    together_dir(out, suite.name, router, seed, tag),
                    what=f"together {router} {tag}",
                )
                record, ran = run_train_cell(
                    cell, suite.together_spec(sets[0], router, seed), suite.base_dir, settings.device, say
                )
                part.add(record, ran, "train_seconds", "eval_seconds")
                together.append({**record, "size": size, "subset": 0, "tasks": list(sets[0])})
    timing["trained together"] = part.close()

    result = summarise(suite, settings.seeds, chosen, single, heads, merges, together, subsets)
    result["selection"] = {
        "seeds": list(select),
        "rule": "each mode's rate: the best validation mean over the pool, averaged over the selection seeds",
        "val_by_lr": {m: selection_table(by_lr) for m, by_lr in selection.items()},
    }
    total = time.perf_counter() - started
    result["timing"] = {**timing, "total": {"wall_s": total, "compute_s": sum(t["compute_s"] for t in timing.values())}}
    result["targets"].append(time_target(sum(t["compute_s"] for t in timing.values()), total))
    result["environment"] = {
        **environment(settings.device),
        "load_average_start": list(load_start),
        "load_average_end": list(os.getloadavg()),
    }
    write_report(result, out / suite.name)
    return result


def _single(
    suite: MergeSuite,
    settings: MergeBenchSettings,
    mode: str,
    lr: float,
    seed: int,
    task: str,
    single: dict[tuple[str, float, int, str], dict[str, Any]],
    part: Part,
    say: Say,
) -> None:
    cell = BenchCell(
        suite.name,
        mode,
        lr,
        seed,
        single_dir(settings.out, suite.name, mode, lr, seed, task),
        what=f"single {mode} {task}",
    )
    record, ran = run_train_cell(cell, suite.single_spec(task, mode, lr, seed), suite.base_dir, settings.device, say)
    if record.get("error"):
        raise MergeBenchError(
            f"{cell.label} failed: {record['error']}; every merge needs every single-task run "
            f"(delete {str(cell.path)!r} to retry)"
        )
    part.add(record, ran, "train_seconds", "eval_seconds")
    single[(mode, lr, seed, task)] = record


def pool_val_by_lr(
    single: Mapping[tuple[str, float, int, str], Mapping[str, Any]],
    mode: str,
    lrs: Sequence[float],
    seeds: Sequence[int],
) -> dict[float, dict[int, float | None]]:
    """``{lr: {seed: validation mean accuracy over the pool's single-task runs}}`` of ``mode`` (None: no run)."""
    by_lr: dict[float, dict[int, float | None]] = {}
    for lr in lrs:
        by_lr[lr] = {}
        for seed in seeds:
            accs = [r["val"]["mean"]["accuracy"] for (m, x, k, _), r in single.items() if (m, x, k) == (mode, lr, seed)]
            by_lr[lr][seed] = sum(accs) / len(accs) if accs else None
    return by_lr


def _lazy(build: Callable[[], MergeSession]) -> Callable[[], MergeSession]:
    """``build`` called once, on first use (a finished group's runs are never loaded)."""
    held: list[MergeSession] = []

    def get() -> MergeSession:
        if not held:
            held.append(build())
        return held[0]

    return get


def _heads_only(path: Path, group: Callable[[], MergeSession]) -> dict[str, float]:
    held = read_record(path)
    if held is not None:
        return {k: float(v) for k, v in held.items()}
    scores = group().heads_only()
    write_text(path, json.dumps(scores, indent=2) + "\n")
    return scores
