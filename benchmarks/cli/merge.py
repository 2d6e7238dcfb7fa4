"""``python -m benchmarks merge [--suite planted|real] [--seeds N] [--tasks 2,4,8] --out DIR [--json OUT]``.

Single-task LoRA and L-LoRA runs over seeds, every merge method over 2 … T tasks, and the same tasks trained
together by the routers (see :mod:`benchmarks.merging`). Cells are resumable: a re-run skips finished ones.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.cli.argtypes import choices, output_path, positive_int, seeds, threads
from benchmarks.cli.output import json_checked, progress, report

METHOD_LABELS = ("task-arithmetic", "ties", "dare", "dare-ties", "average", "subspace", "subspace-ties", "ta-svd")
ROUTERS = ("shared", "poly", "graph")


def _sizes(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        values = ()
    if not values or any(v < 2 for v in values) or len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"expected distinct task counts of at least 2, e.g. 2,4,8; got {text!r}")
    return tuple(sorted(values))


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "merge",
        help="fold → merge: every merge method over 2 … T tasks, LoRA vs L-LoRA, vs training together",
        description="Single-task LoRA / L-LoRA runs from one seed, merged by every method (λ etc. chosen on the "
        "validation split), beside the same tasks trained together; resumable (see benchmarks.merging).",
    )
    p.add_argument("--suite", choices=["planted", "real"], default="planted", help="default: planted")
    p.add_argument("--out", required=True, help="output folder: OUT/<suite>/{single,merge,together,merge.md,...}")
    p.add_argument("--seeds", type=seeds, default=5, help="seeds reported, the selection seeds among them (default: 5)")
    p.add_argument(
        "--select-seeds",
        type=seeds,
        default=3,
        help="seeds 0..N-1 run every rate of a mode's grid; the rate is the best validation mean over them (default: 3)",
    )
    p.add_argument(
        "--tasks",
        type=_sizes,
        default=None,
        metavar="2,4,8",
        help="the task counts T merged (default: planted 2,4,8; real 2,4)",
    )
    p.add_argument("--subsets", type=positive_int, default=3, help="random task subsets per T (default: 3)")
    p.add_argument(
        "--methods",
        type=choices(METHOD_LABELS, "method"),
        default=METHOD_LABELS,
        help=f"comma-separated (default: all: {','.join(METHOD_LABELS)})",
    )
    p.add_argument(
        "--routers",
        type=choices(ROUTERS, "router", empty=True),
        default=ROUTERS,
        help="routers of the trained-together rows (default: shared,poly,graph; '' for none)",
    )
    p.add_argument("--steps", type=positive_int, default=None, help="single-task steps (default: the suite's)")
    p.add_argument("--threads", type=threads, default=1, help="torch threads (default: 1)")
    p.add_argument("--config", default=None, help="the real suite's spec (default: configs/real-text.yaml)")
    p.add_argument("--tiny", action="store_true", help="a tiny planted universe and budget (smoke tests)")
    p.add_argument(
        "--json", metavar="OUT", type=output_path, default=None, help="also write every figure to this JSON file"
    )
    p.set_defaults(run=json_checked(run))


def run(args: argparse.Namespace) -> int:
    from benchmarks.merging import MergeBenchSettings, run_merge_bench
    from benchmarks.merging.report import render

    settings = MergeBenchSettings(
        suite=args.suite,
        out=Path(args.out),
        seeds=args.seeds,
        select_seeds=args.select_seeds,
        sizes=args.tasks,
        subsets=args.subsets,
        methods=args.methods,
        routers=args.routers,
        steps=args.steps,
        tiny=args.tiny,
        threads=args.threads,
        config=args.config,
    )
    result = run_merge_bench(settings, progress=progress)
    progress(f"wrote {Path(args.out) / args.suite / 'merge.md'}, merge.json, plots/")
    return report(result, render(result), args.json)
