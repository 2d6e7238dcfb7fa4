"""What ``python -m benchmarks quality`` runs: :class:`QualitySettings`, checked and turned into suites.

:meth:`QualitySettings.check` names every bad setting at once; :meth:`QualitySettings.build_suite` builds a suite
(:mod:`~benchmarks.quality.suites`) under the settings' budget and checks its cells' specs
(:func:`check_cell_specs`) before any cell trains. Running them is :mod:`benchmarks.quality.run`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from benchmarks.quality.planted_suites import (
    TINY_GEN_UNIVERSE,
    TINY_UNIVERSE,
    planted_few_suite,
    planted_gen_suite,
    planted_suite,
)
from benchmarks.quality.real_gen import heads_twin, real_gen_suite
from benchmarks.quality.real_suites import real_few_suite, real_suite
from benchmarks.quality.suites import (
    FEW_BUDGET,
    PLANTED_BUDGET,
    PLANTED_GEN_BUDGET,
    QUALITY_CHOICES,
    QUALITY_ROUTERS,
    REAL_BUDGET,
    REAL_FEW_BUDGET,
    REAL_GEN_BUDGET,
    SUITES,
    TINY_BUDGET,
    Budget,
    QualityError,
    Suite,
    with_overrides,
)

SUITE_THREADS: dict[str, int | None] = {
    "planted": 1,
    "planted-few": 1,
    "planted-gen": 1,
    "real": None,
    "real-few": None,
    "real-gen": None,
}  # None: every usable CPU


@dataclass(frozen=True)
class QualitySettings:
    """What ``python -m benchmarks quality`` runs (None: the suite's default, see :mod:`~benchmarks.quality.suites`).

    Args:
        suites: some of :data:`~benchmarks.quality.suites.SUITES` (``real-gen`` also runs its heads twin,
            :mod:`~benchmarks.quality.real_gen`).
        out: the output folder (``OUT/<suite>/...``).
        seeds: seeds reported per router (≥ 1; ≥ 3 for the targets' statistics; default 5, so a verdict rests on 5).
        select_seeds: seeds 0 … select_seeds − 1 train at every rate of the grid; each router's rate is chosen on
            their mean validation accuracy (≥ 1).
        routers: router kinds or variants (:data:`~benchmarks.quality.suites.ROUTER_VARIANTS`), in table order.
        steps, batch_size, lrs, shots, adapt_steps, max_length, train_examples, mhr_heads: budget overrides.
        device: ``cpu`` or ``cuda``.
        config: the real suite's spec (default ``configs/real-text.yaml``); held_out: its held-out tasks.
        tiny: a tiny planted universe and budget (tests, smoke runs).
        planted: ``(key, value)`` changes to the planted universe or its model (keys:
            :data:`~benchmarks.quality.planted_suites.UNIVERSE_KEYS`), on top of the tiny universe with ``tiny``.
        adapt: run the adaptation part.
        oracle: run the oracle-relearn cells of the planted suite (:mod:`~benchmarks.quality.oracle`).
        threads: torch threads while the bench runs (None: :data:`SUITE_THREADS` — the planted suite's tiny
            models run fastest on one thread and do not stall when other processes share the cores; the
            real suite uses every usable CPU).
        declare: the planted and planted-gen suites with every seen pair's relation declared (1 where two tasks
            share a planted skill, else 0), as planted-few always is.
        jobs: cells run at a time, each in its own process on ``threads // jobs`` threads
            (:mod:`~benchmarks.quality.pool`); 1: one after another in this process.
    """

    suites: tuple[str, ...]
    out: Path
    seeds: int = 5
    select_seeds: int = 3
    routers: tuple[str, ...] = QUALITY_ROUTERS
    steps: int | None = None
    batch_size: int | None = None
    lrs: tuple[float, ...] | None = None
    shots: tuple[int, ...] | None = None
    adapt_steps: int | None = None
    max_length: int | None = None
    train_examples: int | None = None
    mhr_heads: int | None = None
    device: str = "cpu"
    config: str | None = None
    held_out: tuple[str, ...] | None = None
    tiny: bool = False
    planted: tuple[tuple[str, Any], ...] = ()
    adapt: bool = True
    threads: int | None = None
    oracle: bool = True
    jobs: int = 1
    declare: bool = False

    def check(self) -> None:
        problems = []
        unknown = [s for s in self.suites if s not in SUITES]
        if unknown or not self.suites:
            problems.append(f"suite {unknown or list(self.suites)}: choose from {list(SUITES)} or 'all'")
        bad = [r for r in self.routers if r not in QUALITY_CHOICES]
        if bad or not self.routers or len(set(self.routers)) != len(self.routers):
            problems.append(
                f"routers {list(self.routers)}: give distinct kinds or variants from {list(QUALITY_CHOICES)}"
            )
        if self.seeds < 1:
            problems.append(f"seeds must be at least 1, got {self.seeds}")
        if self.select_seeds < 1:
            problems.append(f"select_seeds must be at least 1, got {self.select_seeds}")
        if self.threads is not None and self.threads < 1:
            problems.append(f"threads must be at least 1, got {self.threads}")
        if self.jobs < 1:
            problems.append(f"jobs must be at least 1, got {self.jobs}")
        if self.planted and not {"planted", "planted-few", "planted-gen"} & set(self.suites):
            problems.append(
                "--planted changes the planted universe; add --suite planted, planted-few, planted-gen or all"
            )
        if self.declare and not {"planted", "planted-gen"} & set(self.suites):
            problems.append(
                "--declare declares the planted relations of --suite planted or planted-gen (planted-few, real-few "
                "declare theirs always; real declares none)"
            )
        if self.device not in ("cpu", "cuda"):
            problems.append(f"device {self.device!r}: choose 'cpu' or 'cuda'")
        elif self.device == "cuda" and not torch.cuda.is_available():
            problems.append("device 'cuda' was asked for but torch sees no CUDA device; use --device cpu")
        if problems:
            raise QualityError("bench quality: " + "; ".join(problems))

    def budget(self, suite: str) -> Budget:
        base = {
            "planted": PLANTED_BUDGET,
            "planted-few": FEW_BUDGET,
            "planted-gen": PLANTED_GEN_BUDGET,
            "real-few": REAL_FEW_BUDGET,
            "real-gen": REAL_GEN_BUDGET,
        }.get(suite, REAL_BUDGET)
        if self.tiny:
            base = TINY_BUDGET if suite != "planted-few" else with_overrides(TINY_BUDGET, train_examples=16)
        return with_overrides(
            base,
            steps=self.steps,
            batch_size=self.batch_size,
            lrs=self.lrs,
            shots=self.shots,
            adapt_steps=self.adapt_steps,
            max_length=self.max_length,
            train_examples=self.train_examples,
            mhr_heads=self.mhr_heads,
        )

    def resolved_threads(self, suite: str) -> int:
        if self.threads is not None:
            return self.threads
        return SUITE_THREADS.get(suite) or len(os.sched_getaffinity(0))

    def build_suite(self, name: str) -> Suite:
        """The suite ``name`` under these settings, its cells' spec checked (QualityError) before any training."""
        suite = self._build_suite(name)
        check_cell_specs(suite, self.routers)
        if name == "real-gen":
            check_cell_specs(heads_twin(suite), self.routers)
        return suite

    def _build_suite(self, name: str) -> Suite:
        if name == "planted":
            universe = {**(TINY_UNIVERSE if self.tiny else {}), **dict(self.planted)}
            return planted_suite(self.budget(name), universe or None, declare=self.declare)
        if name == "planted-few":
            universe = {**(TINY_UNIVERSE if self.tiny else {}), **dict(self.planted)}
            return planted_few_suite(self.budget(name), universe or None)
        if name == "planted-gen":
            universe = {**(TINY_GEN_UNIVERSE if self.tiny else {}), **dict(self.planted)}
            return planted_gen_suite(self.budget(name), universe or None, declare=self.declare)
        if name == "real-gen":
            return real_gen_suite(self.budget(name), self.config)
        if name == "real-few":
            return real_few_suite(self.budget(name), self.config, self.held_out)
        return real_suite(self.budget(name), self.config, self.held_out)


def check_cell_specs(suite: Suite, routers: Sequence[str]) -> None:
    """Every router's seed-0 cell spec at the grid's first rate validates; else QualityError naming the suite and
    every problem (a bench config is input like any spec: exit 2, before a cell trains)."""
    from pydantic import ValidationError

    from taskgraph.errors import validation_problems
    from taskgraph.spec import Spec

    for router in routers:
        try:
            Spec.model_validate(suite.cell_spec(router, suite.budget.lrs[0], 0))
        except ValidationError as exc:
            raise QualityError(
                f"bench quality --suite {suite.name}: the {router} cells' spec is not valid: "
                f"{validation_problems(exc, root='spec')}"
            ) from None
