"""Running ``python -m benchmarks quality``: every router on the same data and budget, then few-/zero-shot adaptation.

    python -m benchmarks quality --suite planted --seeds 3 --out runs/quality      # or --suite real / all

Per suite (:mod:`benchmarks.quality.suites`), in three parts, every cell resumable and skipped
when finished (:mod:`benchmarks.quality.cells`):

1. **lr selection** — every router × every learning rate of the grid × the selection seeds 0 … S−1
   (``--select-seeds``, default 3); each router's rate is the one with the best validation mean accuracy
   averaged over those seeds (:func:`~benchmarks.quality.stats.select_lr`), so one seed cannot flip it;
2. **seeds** — the seeds 0 … N−1 not yet trained, of every router at its chosen rate (the selection seeds
   are reported seeds too; the record's ``selection`` says so, with its per-seed table);
3. **adaptation** — every trained (router, seed) adapted to every held-out task in every mode the
   router supports (:func:`taskgraph.adapt.supported_modes`) at every shot count.

Then the figures (:mod:`~benchmarks.quality.summary`), the pre-declared targets
(:mod:`~benchmarks.quality.targets`), ``OUT/<suite>/quality.md`` (:mod:`~benchmarks.quality.report`),
``quality.json`` and ``plots/*.png`` (:mod:`~benchmarks.quality.plots`), all written atomically.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from benchmarks.quality.cells import (
    AdaptCell,
    TrainCell,
    adapt_cell_dir,
    run_adapt_cell,
    run_train_cell,
    train_cell_dir,
)
from benchmarks.quality.oracle import ORACLE_SUITES, oracle_summary, run_oracle_cells
from benchmarks.quality.plots import plot_few_shot, plot_router_accuracy
from benchmarks.quality.pool import CellPool
from benchmarks.quality.real_gen import HEADS, beside, heads_twin, render_beside
from benchmarks.quality.report import render_suite
from benchmarks.quality.settings import QualitySettings
from benchmarks.quality.stats import select_lr
from benchmarks.quality.suites import (
    ROUTER_LR,
    Suite,
    router_kind,
)
from benchmarks.quality.summary import (
    adapt_pair,
    chosen_records,
    few_shot_rows,
    paired_rows,
    router_row,
    val_by_lr,
)
from benchmarks.quality.targets import (
    MU_BASELINES,
    few_targets,
    paper_targets,
    planted_targets,
    real_targets,
    transfer_targets,
)
from taskgraph.atomic import write_text
from taskgraph.bench import device_name
from taskgraph.run_folder import claim_container

Say = Callable[[str], None]
PAIRED_MODES = (
    (("graph", "zero-shot"), None),
    (("mhr", "mhr-mu"), ("mhr", "full")),
    (("mhr", "mhr-mu"), ("mhr", "routing")),
    (("graph", "routing"), ("mhr", "routing")),
    (("graph", "full"), ("mhr", "full")),
)  # None: the target's MHR-μ baseline


@dataclass
class Part:
    """Time and cell counts of one part of a suite."""

    wall_s: float = 0.0
    compute_s: float = 0.0
    ran: int = 0
    skipped: int = 0
    _start: float = field(default_factory=time.perf_counter, repr=False)

    def add(self, record: dict[str, Any], ran: bool, *keys: str) -> None:
        self.ran, self.skipped = self.ran + int(ran), self.skipped + int(not ran)
        self.compute_s += sum(float(record.get(k) or 0.0) for k in keys)

    def close(self) -> dict[str, Any]:
        self.wall_s = time.perf_counter() - self._start
        return {"wall_s": self.wall_s, "compute_s": self.compute_s, "ran": self.ran, "skipped": self.skipped}


def environment(device: str) -> dict[str, Any]:
    return {
        "device": device,
        "threads": torch.get_num_threads(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device_name": device_name(device),
    }


def _train(
    suite: Suite,
    settings: QualitySettings,
    keys: Sequence[tuple[str, float, int]],
    part: Part,
    train: dict[tuple[str, float, int], dict[str, Any]],
    pool: CellPool,
) -> None:
    """The training cells ``(router, lr, seed)`` of ``keys``, run in ``pool``; their records into ``train``."""
    cells = [TrainCell(suite.name, r, lr, s, train_cell_dir(settings.out, suite.name, r, lr, s)) for r, lr, s in keys]
    calls = [(c, suite.cell_spec(c.router, c.lr, c.seed), suite.base_dir, settings.device) for c in cells]
    for cell, (record, ran) in zip(cells, pool.run(run_train_cell, calls)):
        if not ran:
            pool.say(f"{cell.label}: done before, skipped")
        part.add(record, ran, "train_seconds", "eval_seconds")
        train[(cell.router, cell.lr, cell.seed)] = record


def _supported_modes() -> Callable[[str], Sequence[str]] | None:
    try:
        from taskgraph.adapt import supported_modes
    except ImportError:
        return None
    return lambda router: supported_modes(router_kind(router))  # a variant adapts as its kind


def _seed_range(first: int, stop: int) -> str:
    return f"seeds {first}..{stop - 1}" if stop - first > 1 else (f"seed {first}" if stop - first == 1 else "no seed")


def _choose_lrs(
    routers: Sequence[str],
    train: dict[tuple[str, float, int], dict[str, Any]],
    select_seeds: int,
    notes: list[str],
) -> dict[str, float]:
    """Each router's rate by its mean validation over the selection seeds (routers with no rate that trained on
    every selection seed are left out, with a note)."""
    chosen: dict[str, float] = {}
    for router in routers:
        try:
            chosen[router] = select_lr(val_by_lr(train, router, range(select_seeds)))
        except ValueError:
            notes.append(
                f"{router}: no learning rate trained on every selection seed ({_seed_range(0, select_seeds)}); "
                "left out of the tables"
            )
    return chosen


def _adapt_all(
    suite: Suite,
    settings: QualitySettings,
    chosen: dict[str, float],
    train: dict[tuple[str, float, int], dict[str, Any]],
    part: Part,
    notes: list[str],
    pool: CellPool,
) -> list[dict[str, Any]]:
    """Every (router, supported mode, shots, seed, held-out task) adaptation cell; their records."""
    modes_of = _supported_modes() if settings.adapt else None
    if settings.adapt and modes_of is None:
        notes.append("adaptation skipped: taskgraph.adapt is not available")
    if modes_of is None:
        return []
    calls = []
    for router, lr in chosen.items():
        for mode in modes_of(router):
            for shots in suite.budget.shots:
                for seed in range(settings.seeds):
                    if train.get((router, lr, seed), {}).get("error"):
                        continue  # no trained run to adapt
                    for task in suite.held_out:
                        cell = AdaptCell(
                            suite.name,
                            router,
                            lr,
                            mode,
                            shots,
                            seed,
                            task,
                            train_cell_dir(settings.out, suite.name, router, lr, seed),
                            adapt_cell_dir(settings.out, suite.name, router, lr, mode, shots, seed, task.name),
                        )
                        calls.append((cell, suite.budget.adapt_steps, suite.base_dir, settings.device))
    records = []
    for record, ran in pool.run(run_adapt_cell, calls):
        part.add(record, ran, "seconds")
        records.append(record)
    return records


def run_suite(suite: Suite, settings: QualitySettings, say: Say) -> dict[str, Any]:
    """Run (or finish) every cell of ``suite`` on the suite's torch threads, then write its report; returns the
    result dict."""
    before = torch.get_num_threads()
    threads = settings.resolved_threads(suite.name)
    torch.set_num_threads(threads)
    try:
        with CellPool(settings.jobs, threads, say) as pool:
            return _run_suite(suite, settings, pool)
    finally:
        torch.set_num_threads(before)  # the caller's setting, as it was


def _run_suite(suite: Suite, settings: QualitySettings, pool: CellPool) -> dict[str, Any]:
    started, load_start = time.perf_counter(), os.getloadavg()
    notes = list(suite.notes)
    train: dict[tuple[str, float, int], dict[str, Any]] = {}
    timing: dict[str, dict[str, Any]] = {}

    select = settings.select_seeds
    part = Part()
    keys = [(r, lr, s) for r in settings.routers for lr in suite.budget.lrs for s in range(select)]
    _train(suite, settings, keys, part, train, pool)
    timing[f"train: lr selection ({_seed_range(0, select)}, every lr)"] = part.close()
    chosen = _choose_lrs(settings.routers, train, select, notes)
    pool.say(f"[{suite.name}] chosen lr: " + ", ".join(f"{r} {lr:g}" for r, lr in chosen.items()))

    part = Part()
    _train(
        suite,
        settings,
        [(r, lr, s) for r, lr in chosen.items() for s in range(select, settings.seeds)],
        part,
        train,
        pool,
    )
    timing[f"train: {_seed_range(select, settings.seeds)} at the chosen lr"] = part.close()

    part = Part()
    adapt_records = _adapt_all(suite, settings, chosen, train, part, notes, pool)
    timing["adaptation (few-/zero-shot, held-out tasks)"] = part.close()

    oracle: list[dict[str, Any]] = []
    if settings.oracle and suite.name in ORACLE_SUITES:
        part = Part()
        oracle = run_oracle_cells(suite, settings.out, settings.seeds, settings.device, part.add, pool)
        timing["oracle-relearn ceiling (train under oracle routing, re-learn routing)"] = part.close()

    result = summarise(suite, settings, train, chosen, adapt_records, timing, notes, oracle)
    result["environment"] = {
        **environment(settings.device),
        "load_average_start": list(load_start),
        "load_average_end": list(os.getloadavg()),
    }
    result["timing"]["total"] = {
        "wall_s": time.perf_counter() - started,
        "compute_s": sum(t["compute_s"] for t in timing.values()),
        "ran": sum(t["ran"] for t in timing.values()),
        "skipped": sum(t["skipped"] for t in timing.values()),
    }
    write_suite(result, settings.out / suite.name)
    return result


def summarise(
    suite: Suite,
    settings: QualitySettings,
    train: dict[tuple[str, float, int], dict[str, Any]],
    chosen: dict[str, float],
    adapt: list[dict[str, Any]],
    timing: dict[str, dict[str, Any]],
    notes: list[str],
    oracle: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The suite's result dict from its cells' records (pure; see :mod:`benchmarks.quality.summary`)."""
    reported, select = range(settings.seeds), range(settings.select_seeds)
    rows = {
        r: router_row(r, lr, chosen_records(train, r, lr, reported), val_by_lr(train, r, select), suite.families)
        for r, lr in chosen.items()
    }
    shots = list(suite.budget.shots)
    ceiling = oracle_summary(oracle or [])
    if suite.name in ("planted", "planted-gen"):
        targets = planted_targets(rows, adapt, shots, ceiling) + transfer_targets(adapt, shots)
    elif suite.name in ("planted-few", "real-few"):
        targets = few_targets(rows) + transfer_targets(adapt, shots)
    else:
        targets = real_targets(rows)
    targets += paper_targets(rows, adapt, shots)
    few_paired = []
    for a, b in PAIRED_MODES:
        for n in shots:
            for base in [b] if b is not None else list(MU_BASELINES):
                pair = adapt_pair(adapt, a, base, n)
                if pair is not None:
                    few_paired.append(pair)
                    break
    return {
        "bench": "quality",
        **suite.describe(),
        "seeds": settings.seeds,
        "selection": {
            "seeds": list(select),
            "rule": "each router's adapters + heads rate: the best mean validation accuracy over the selection seeds "
            "(every seed finite; a tie: the smaller rate)",
            "selection_seeds_reported": [k for k in select if k in reported],
        },
        "routers_asked": list(settings.routers),
        "router_lr": dict(ROUTER_LR),
        "chosen_lr": chosen,
        "routers": list(rows.values()),
        "paired": paired_rows(rows),
        "few_shot": few_shot_rows(adapt),
        "few_shot_paired": few_paired,
        "targets": targets,
        "timing": dict(timing),
        "notes": notes,
        "oracle": ceiling,
    }


def write_suite(result: dict[str, Any], root: Path) -> None:
    """``quality.md``, ``quality.json`` and ``plots/*.png`` of one suite under ``root`` (atomic writes)."""
    plots = root / "plots"
    result["plots"] = [
        str(
            plot_router_accuracy(
                result["routers"],
                plots / "accuracy.png",
                f"{result['suite']}: accuracy per router (mean ± std over seeds)",
            )
        ),
        str(
            plot_few_shot(
                result["few_shot"], plots / "few_shot.png", f"{result['suite']}: held-out tasks, accuracy vs shots"
            )
        ),
    ]
    write_text(root / "quality.json", json.dumps(result, indent=2, default=str) + "\n")
    write_text(root / "quality.md", render_suite(result))


def run_quality(settings: QualitySettings, progress: Say | None = None) -> dict[str, Any]:
    """Every suite of ``settings``; ``{"bench": "quality", "suites": {name: result}}``."""
    settings.check()
    say = progress or (lambda _: None)
    suites = [settings.build_suite(name) for name in settings.suites]  # every config problem before any training
    sources = [settings.config] if settings.config is not None else []
    with claim_container(settings.out, kind="bench", sources=sources, legacy=("planted", "real")):
        results = {}
        for suite in suites:
            results[suite.name] = run_suite(suite, settings, say)
            if suite.name == "real-gen":  # the same tasks with classification heads, then side by side
                results[HEADS] = run_suite(heads_twin(suite), settings, say)
                results[suite.name]["beside"] = beside(results[suite.name], results[HEADS])
                write_text(settings.out / suite.name / "beside.md", render_beside(results[suite.name]["beside"]))
                write_suite(results[suite.name], settings.out / suite.name)
        return {"bench": "quality", "suites": results}
