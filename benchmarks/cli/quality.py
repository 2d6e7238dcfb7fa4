"""``python -m benchmarks quality [--suite planted|planted-few|planted-gen|real|real-few|real-gen|all] --out DIR``.

Every (router, lr, seed) is a resumable cell under ``OUT``; a re-run skips finished cells (see :mod:`benchmarks.quality`).
"""

from __future__ import annotations

import argparse
from typing import Any

from benchmarks.cli.argtypes import floats, ints, key_value, names, output_path, positive_int, seeds, threads
from benchmarks.cli.output import json_checked, progress, report


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from benchmarks.quality.planted_suites import UNIVERSE_KEYS
    from benchmarks.quality.suites import (
        FEW_BUDGET,
        PLANTED_BUDGET,
        PLANTED_GEN_BUDGET,
        QUALITY_ROUTERS,
        REAL_BUDGET,
        REAL_FEW_BUDGET,
        REAL_GEN_BUDGET,
        ROUTER_VARIANTS,
    )

    def budget(b: Any) -> str:
        length = f", max_length {b.max_length}" if b.max_length else ""
        return (
            f"{b.steps} steps × batch {b.batch_size}{length}, lrs {','.join(f'{x:g}' for x in b.lrs)}, "
            f"shots {','.join(map(str, b.shots))}, {b.adapt_steps} adaptation steps"
        )

    p = sub.add_parser(
        "quality",
        help="accuracy of every router on the same data and budget; few-/zero-shot; targets",
        description="Every (router, lr, seed) is a resumable cell under OUT; finished cells are skipped on a "
        f"re-run (see benchmarks.quality). Defaults: planted {budget(PLANTED_BUDGET)}; planted-few "
        f"the same with at most {FEW_BUDGET.train_examples} training examples per task; real "
        f"{budget(REAL_BUDGET)}; real-few the same with at most {REAL_FEW_BUDGET.train_examples} rows per task; "
        f"planted-gen {budget(PLANTED_GEN_BUDGET)} (no adaptation); "
        f"real-gen {budget(REAL_GEN_BUDGET)} (no adaptation).",
    )
    p.add_argument(
        "--suite",
        choices=["planted", "planted-few", "planted-gen", "real", "real-few", "real-gen", "all"],
        default="planted",
        help="default: planted; planted-few: 40 tasks, few examples each, every pair's relation declared; "
        "planted-gen: the planted universe as text-to-text, each target the task's own skills' tokens (the loss "
        "rewards the true factorisation); "
        "real-few: the real tasks with few rows each, every pair's relation declared (1 within a family); "
        "real-gen: the real tasks as text-to-text with choices (configs/real-gen.yaml), beside the same tasks "
        "with heads; all: planted and real",
    )
    p.add_argument("--out", required=True, help="output folder: OUT/<suite>/{train,adapt,quality.md,...}")
    p.add_argument(
        "--seeds", type=seeds, default=5, help="seeds reported per router, the selection seeds among them (default: 5)"
    )
    p.add_argument(
        "--select-seeds",
        type=seeds,
        default=3,
        help="seeds 0..N-1 train at every rate of the grid; each router's rate is the best mean validation over "
        "them (default: 3)",
    )
    p.add_argument(
        "--json",
        metavar="OUT",
        type=output_path,
        default=None,
        help="also write every figure of every suite to this file",
    )
    p.add_argument(
        "--routers",
        type=names,
        default=QUALITY_ROUTERS,
        help=f"comma-separated router kinds (default: {','.join(QUALITY_ROUTERS)}) or variants "
        f"({','.join(ROUTER_VARIANTS)})",
    )
    p.add_argument("--steps", type=positive_int, default=None, help="training steps per cell (default: the suite's)")
    p.add_argument("--batch-size", type=positive_int, default=None, help="examples per step (default: the suite's)")
    p.add_argument("--lrs", type=floats, default=None, help="adapters + heads lr grid, e.g. 1e-3,3e-3")
    p.add_argument("--shots", type=ints, default=None, help="few-shot sizes, e.g. 16,64 (default: 16,64)")
    p.add_argument("--adapt-steps", type=positive_int, default=None, help="adaptation steps (default: the suite's)")
    p.add_argument("--no-adapt", action="store_true", help="skip the few-/zero-shot part")
    p.add_argument("--max-length", type=positive_int, default=None, help="tokens per example (real suite)")
    p.add_argument(
        "--train-examples",
        type=positive_int,
        default=None,
        help="at most this many training examples per task (default: real 2000, real-few "
        f"{REAL_FEW_BUDGET.train_examples}, planted-few {FEW_BUDGET.train_examples}, planted all)",
    )
    p.add_argument("--mhr-heads", type=positive_int, default=None, help="heads of the mhr router (default: 4)")
    p.add_argument(
        "--config",
        default=None,
        help="the real suite's spec (default: configs/real-text.yaml; real-gen: configs/real-gen.yaml)",
    )
    p.add_argument(
        "--held-out",
        type=names,
        default=None,
        help="real and real-few suites: comma-separated held-out tasks (default: the last task of the first two of "
        "sentiment, topic, authorship that have two tasks or more)",
    )
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="default: cpu")
    p.add_argument(
        "--threads",
        type=threads,
        default=None,
        help="torch threads (default: planted 1 — its tiny models are fastest so and do not stall on a "
        "busy machine; real: every usable CPU)",
    )
    p.add_argument(
        "--jobs",
        type=positive_int,
        default=1,
        help="cells run at a time, each in its own process on threads / jobs torch threads (default: 1; on 2 cores "
        "--jobs 2 roughly halves a suite's wall time)",
    )
    p.add_argument(
        "--declare",
        action="store_true",
        help="planted, planted-gen: declare every seen pair's relation in every cell (1 where two tasks share a "
        "planted skill, else 0), as planted-few does; only the graph router reads them",
    )
    p.add_argument("--tiny", action="store_true", help="a tiny planted universe and budget (smoke tests)")
    p.add_argument(
        "--no-oracle", action="store_true", help="skip the planted suite's oracle-relearn ceiling cells (one per seed)"
    )
    p.add_argument(
        "--planted",
        action="append",
        type=key_value,
        default=[],
        metavar="KEY=VALUE",
        help="change the planted universe or its model, e.g. --planted tasks=48 (repeatable; keys: "
        f"{', '.join(UNIVERSE_KEYS)})",
    )
    p.set_defaults(run=json_checked(run))


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from benchmarks.quality.report import render_suite
    from benchmarks.quality.run import QualitySettings, run_quality

    settings = QualitySettings(
        suites=("planted", "real") if args.suite == "all" else (args.suite,),
        out=Path(args.out),
        seeds=args.seeds,
        select_seeds=args.select_seeds,
        routers=tuple(args.routers),
        steps=args.steps,
        batch_size=args.batch_size,
        lrs=args.lrs,
        shots=args.shots,
        adapt_steps=args.adapt_steps,
        max_length=args.max_length,
        train_examples=args.train_examples,
        mhr_heads=args.mhr_heads,
        device=args.device,
        config=args.config,
        held_out=args.held_out,
        tiny=args.tiny,
        adapt=not args.no_adapt,
        threads=args.threads,
        planted=tuple(args.planted),
        oracle=not args.no_oracle,
        jobs=args.jobs,
        declare=args.declare,
    )
    result = run_quality(settings, progress=progress)
    markdown = "\n\n".join(render_suite(r) for r in result["suites"].values())
    for name in result["suites"]:
        progress(f"wrote {Path(args.out) / name / 'quality.md'}, quality.json, plots/")
    return report(result, markdown, args.json)
