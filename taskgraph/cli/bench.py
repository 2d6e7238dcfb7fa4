"""``taskgraph bench speed|scale [...]``: side-by-side figures and ratios (markdown on stdout, JSON with --json).

Each bench is a sub-subcommand with its own options; ``speed`` is described in
:mod:`taskgraph.bench.speed`. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys

from taskgraph.atomic import write_text
from taskgraph.cli.argtypes import count, positive_int


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("bench", help="benchmarks: figures side by side with PEFT, with ratios")
    benches = p.add_subparsers(dest="bench", metavar="BENCH", parser_class=type(p))
    benches.required = True
    _add_speed(benches)
    _add_scale(benches)


def _add_speed(benches: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = benches.add_parser(
        "speed", help="training-step time, inference time and peak memory vs PEFT LoRA / Poly",
        description="Interleaved, paired timing of every configuration (see taskgraph.bench.speed).")
    p.add_argument("--rounds", type=positive_int, default=30, help="counted rounds (default: 30)")
    p.add_argument("--warmup", type=count, default=2, help="uncounted warm-up rounds (default: 2)")
    p.add_argument("--json", metavar="OUT", default=None, help="also write every figure to this JSON file")
    p.add_argument("--model", choices=["tiny", "minilm"], default="minilm",
                   help="minilm: the packaged MiniLM-L6; tiny: a 2-layer BERT from a config (default: minilm)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="default: cpu")
    p.add_argument("--tasks", type=positive_int, default=8, help="tasks T of every row (default: 8)")
    p.add_argument("--many-tasks", type=positive_int, default=1000,
                   help="T of the poly / mhr task-scaling rows (default: 1000)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="torch.set_num_threads (default: the CPUs this process may use)")
    p.add_argument("--batch", type=positive_int, default=32, help="examples per batch (default: 32)")
    p.add_argument("--seq", type=positive_int, default=64, help="tokens per example (default: 64)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--seed", type=int, default=0, help="default: 0")
    p.set_defaults(run=run_speed)


def _add_scale(benches: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = benches.add_parser(
        "scale", help="graph-router forward + backward time and memory for T = 10 ... 10,000 tasks",
        description="Interleaved timing of the graph router alone (see taskgraph.bench.scale).")
    p.add_argument("--tasks", type=positive_int, nargs="+", default=[10, 100, 1_000, 10_000],
                   help="task counts T (default: 10 100 1000 10000)")
    p.add_argument("--rounds", type=positive_int, default=15, help="counted rounds (default: 15)")
    p.add_argument("--warmup", type=count, default=2, help="uncounted warm-up rounds (default: 2)")
    p.add_argument("--threads", type=positive_int, default=None, help="torch threads (default: the usable CPUs)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--share", action="store_true",
                   help="also time the router against a whole MiniLM-L6 training step (needs the package)")
    p.add_argument("--json", metavar="OUT", default=None, help="also write every figure to this JSON file")
    p.add_argument("--seed", type=int, default=0, help="default: 0")
    p.set_defaults(run=run_scale)


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _report(result: dict, markdown: str, json_out: str | None) -> int:
    """The bench's markdown on stdout and, with ``--json``, every figure written atomically."""
    print(markdown)
    if json_out:
        write_text(json_out, json.dumps(result, indent=2) + "\n")
        print(f"wrote {json_out}", file=sys.stderr)
    return 0


def run_scale(args: argparse.Namespace) -> int:
    from taskgraph.bench.scale import ScaleSettings, render_scale, run_scale

    settings = ScaleSettings(tasks=tuple(args.tasks), rounds=args.rounds, warmup=args.warmup, threads=args.threads,
                             memory=not args.no_memory, share=args.share, seed=args.seed)
    result = run_scale(settings, progress=_progress)
    return _report(result, render_scale(result), args.json)


def run_speed(args: argparse.Namespace) -> int:
    from taskgraph.bench import render_markdown, run_speed_bench
    from taskgraph.bench.speed import settings_from_args

    settings = settings_from_args(args)
    settings.check()
    result = run_speed_bench(settings, progress=_progress)
    return _report(result, render_markdown(result), args.json)

