"""``taskgraph bench speed|scale|quality [...]``: side-by-side figures and ratios (markdown on stdout, JSON with --json).

Each bench is a sub-subcommand with its own options; ``speed`` is described in
:mod:`taskgraph.bench.speed`, ``quality`` in :mod:`taskgraph.bench.quality`. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from typing import Any

import yaml

from taskgraph.atomic import write_text
from taskgraph.cli.argtypes import (
    bench_batch,
    output_path,
    positive_int,
    rounds,
    router_kind,
    seed,
    seeds,
    seq,
    task_count,
    threads,
    warmup_rounds,
)
from taskgraph.run_folder import check_output_file


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("bench", help="benchmarks: figures side by side with PEFT, with ratios")
    benches = p.add_subparsers(dest="bench", metavar="BENCH", parser_class=type(p))
    benches.required = True
    from taskgraph.cli import bench_view

    bench_view.add_parser(benches)
    _add_speed(benches)
    _add_infer(benches)
    _add_lm(benches)
    _add_scale(benches)
    _add_quality(benches)
    from taskgraph.cli import bench_merge

    bench_merge.add_parser(benches)


def _add_speed(benches: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = benches.add_parser(
        "speed",
        help="training-step time, inference time and peak memory vs PEFT LoRA / Poly",
        description="Interleaved, paired timing of every configuration (see taskgraph.bench.speed).",
    )
    p.add_argument("--rounds", type=rounds, default=30, help="counted rounds (default: 30)")
    p.add_argument("--warmup", type=warmup_rounds, default=2, help="uncounted warm-up rounds (default: 2)")
    p.add_argument(
        "--json", metavar="OUT", type=output_path, default=None, help="also write every figure to this JSON file"
    )
    p.add_argument(
        "--model",
        choices=["tiny", "minilm", "minilm-shape", "encoder-768"],
        default="minilm",
        help="minilm: the packaged MiniLM-L6; minilm-shape: its shape built from a config; encoder-768: "
        "12 layers x 768 from a config (a GPU-sized base); tiny: a 2-layer BERT from a config "
        "(default: minilm)",
    )
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="default: cpu")
    p.add_argument("--tasks", type=task_count, default=8, help="tasks T of every row (default: 8)")
    p.add_argument(
        "--many-tasks", type=task_count, default=1000, help="T of the poly / mhr task-scaling rows (default: 1000)"
    )
    p.add_argument(
        "--threads", type=threads, default=None, help="torch.set_num_threads (default: the CPUs this process may use)"
    )
    p.add_argument("--batch", type=bench_batch, default=32, help="examples per batch (default: 32)")
    p.add_argument("--seq", type=seq, default=64, help="tokens per example (default: 64)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--seed", type=seed, default=0, help="default: 0")
    p.add_argument(
        "--quantize",
        choices=["none", "int8", "nf4"],
        default="none",
        help="quantize the base of every row with torchao (PEFT LoRA, the floor and every router on the same "
        "quantized base; see taskgraph.model.quantize) (default: none)",
    )
    p.add_argument(
        "--ops",
        action="store_true",
        help="count the aten operations of one training step instead of timing it (deterministic; "
        "MiniLM-L6 and a 12 x 768 encoder, or --model tiny; see taskgraph.bench.ops)",
    )
    p.set_defaults(run=json_checked(run_speed))


def _add_infer(benches: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = benches.add_parser(
        "infer",
        help="inference throughput: mixed-task batches vs one task at a time vs folding each task",
        description="Interleaved, paired timing of mixed-task inference (see taskgraph.bench.inference).",
    )
    p.add_argument(
        "--model",
        choices=["tiny", "minilm"],
        default="minilm",
        help="minilm: the MiniLM-L6 architecture from its config; tiny: a 2-layer BERT (default: minilm)",
    )
    p.add_argument("--router", type=router_kind, default="poly", help="the routed model's router (default: poly)")
    p.add_argument("--tasks", type=task_count, default=8, help="tasks T (default: 8)")
    p.add_argument("--texts", type=bench_batch, default=64, help="texts per task (default: 64)")
    p.add_argument("--seq", type=seq, default=64, help="the longest text, in tokens (default: 64)")
    p.add_argument("--batch", type=bench_batch, default=64, help="texts per forward pass (default: 64)")
    _add_timing_options(p)
    p.set_defaults(run=json_checked(run_infer))


def _add_timing_options(p: argparse.ArgumentParser) -> None:
    """The interleaved-timing options ``bench infer`` and ``bench lm`` share."""
    p.add_argument("--rounds", type=rounds, default=10, help="counted rounds (default: 10)")
    p.add_argument("--warmup", type=warmup_rounds, default=1, help="uncounted warm-up rounds (default: 1)")
    p.add_argument("--threads", type=threads, default=None, help="torch threads (default: the usable CPUs)")
    p.add_argument(
        "--json", metavar="OUT", type=output_path, default=None, help="also write every figure to this JSON file"
    )
    p.add_argument("--seed", type=seed, default=0, help="default: 0")


def _add_lm(benches: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = benches.add_parser(
        "lm",
        help="generative tasks: a causal-LM training step and mixed-task generation beside PEFT",
        description="Interleaved, paired timing of a GPT-2 from a config (see taskgraph.bench.lm_speed).",
    )
    p.add_argument(
        "--model",
        choices=["tiny", "small"],
        default="small",
        help="small: 4 layers x 256; tiny: 2 x 32, for tests (default: small)",
    )
    p.add_argument(
        "--routers",
        type=_names,
        default=None,
        metavar="A,B",
        help="routers to time (default: shared,private,poly,mhr,mhr-mu,graph)",
    )
    p.add_argument("--tasks", type=task_count, default=8, help="tasks T (default: 8)")
    p.add_argument("--batch", type=bench_batch, default=16, help="training rows per step (default: 16)")
    p.add_argument("--seq", type=seq, default=128, help="tokens per training row, half prompt (default: 128)")
    p.add_argument("--prompts", type=bench_batch, default=32, help="prompts per generate call (default: 32)")
    p.add_argument("--new-tokens", type=seq, default=32, help="tokens each prompt generates (default: 32)")
    _add_timing_options(p)
    p.set_defaults(run=json_checked(run_lm))


def run_lm(args: argparse.Namespace) -> int:
    from taskgraph.bench.lm_speed import ROUTER_KINDS, LMSettings, render_lm, run_lm_bench

    settings = LMSettings(
        model=args.model,
        routers=args.routers or ROUTER_KINDS,
        tasks=args.tasks,
        batch=args.batch,
        seq=args.seq,
        prompts=args.prompts,
        new_tokens=args.new_tokens,
        rounds=args.rounds,
        warmup=args.warmup,
        threads=args.threads,
        seed=args.seed,
    )
    result = run_lm_bench(settings, progress=_progress)
    return _report(result, render_lm(result), args.json)


def run_infer(args: argparse.Namespace) -> int:
    from taskgraph.bench.inference import InferSettings, render_infer, run_infer_bench

    settings = InferSettings(
        model=args.model,
        router=args.router,
        tasks=args.tasks,
        texts=args.texts,
        seq=args.seq,
        batch=args.batch,
        rounds=args.rounds,
        warmup=args.warmup,
        threads=args.threads,
        seed=args.seed,
    )
    result = run_infer_bench(settings, progress=_progress)
    return _report(result, render_infer(result), args.json)


def _add_scale(benches: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = benches.add_parser(
        "scale",
        help="graph-router forward + backward time and memory for T = 10 ... 10,000 tasks",
        description="Interleaved timing of the graph router alone (see taskgraph.bench.scale).",
    )
    p.add_argument(
        "--tasks",
        type=task_count,
        nargs="+",
        default=[10, 100, 1_000, 10_000],
        help="task counts T (default: 10 100 1000 10000)",
    )
    p.add_argument("--rounds", type=rounds, default=15, help="counted rounds (default: 15)")
    p.add_argument("--warmup", type=warmup_rounds, default=2, help="uncounted warm-up rounds (default: 2)")
    p.add_argument("--threads", type=threads, default=None, help="torch threads (default: the usable CPUs)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument(
        "--share",
        action="store_true",
        help="also time the router against a whole MiniLM-L6 training step (needs the package)",
    )
    p.add_argument(
        "--json", metavar="OUT", type=output_path, default=None, help="also write every figure to this JSON file"
    )
    p.add_argument("--seed", type=seed, default=0, help="default: 0")
    p.set_defaults(run=json_checked(run_scale))


def _floats(text: str) -> tuple[float, ...]:
    """A comma-separated list of positive numbers, e.g. ``1e-3,3e-3``."""
    try:
        values = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 1e-3,3e-3, got {text!r}") from None
    if not values or any(not 0 < v < math.inf for v in values):
        raise argparse.ArgumentTypeError(f"expected positive finite numbers, got {text[:80]!r}")
    return values


def _ints(text: str) -> tuple[int, ...]:
    """A comma-separated list of positive whole numbers, e.g. ``16,64``."""
    return tuple(positive_int(x.strip()) for x in text.split(",") if x.strip()) or (positive_int(text),)


def _key_value(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with the value read as YAML (``tasks=48``, ``skills_per_task=[2,3]``)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE such as tasks=48, got {text!r}")
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError:
        raise argparse.ArgumentTypeError(f"{text!r}: the value is not valid YAML") from None


def _names(text: str) -> tuple[str, ...]:
    """A comma-separated list of distinct names, e.g. ``poly,graph``; an empty list or a repeated name is refused."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected names separated by commas, got {text[:40]!r}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(f"{', '.join(map(repr, repeated))} given twice in {text[:80]!r}")
    return names


def _add_quality(benches: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from taskgraph.bench.quality.planted_suites import UNIVERSE_KEYS
    from taskgraph.bench.quality.suites import (
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

    p = benches.add_parser(
        "quality",
        help="accuracy of every router on the same data and budget; few-/zero-shot; targets",
        description="Every (router, lr, seed) is a resumable cell under OUT; finished cells are skipped on a "
        f"re-run (see taskgraph.bench.quality). Defaults: planted {budget(PLANTED_BUDGET)}; planted-few "
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
        type=_names,
        default=QUALITY_ROUTERS,
        help=f"comma-separated router kinds (default: {','.join(QUALITY_ROUTERS)}) or variants "
        f"({','.join(ROUTER_VARIANTS)})",
    )
    p.add_argument("--steps", type=positive_int, default=None, help="training steps per cell (default: the suite's)")
    p.add_argument("--batch-size", type=positive_int, default=None, help="examples per step (default: the suite's)")
    p.add_argument("--lrs", type=_floats, default=None, help="adapters + heads lr grid, e.g. 1e-3,3e-3")
    p.add_argument("--shots", type=_ints, default=None, help="few-shot sizes, e.g. 16,64 (default: 16,64)")
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
        type=_names,
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
        type=_key_value,
        default=[],
        metavar="KEY=VALUE",
        help="change the planted universe or its model, e.g. --planted tasks=48 (repeatable; keys: "
        f"{', '.join(UNIVERSE_KEYS)})",
    )
    p.set_defaults(run=json_checked(run_quality))


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def json_checked(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``command`` with its ``--json`` target checked before the bench runs, not after an hour of it."""

    def run(args: argparse.Namespace) -> int:
        if args.json:
            check_output_file(args.json, what="--json")
        return command(args)

    return run


def _report(result: dict, markdown: str, json_out: str | None) -> int:
    """The bench's markdown on stdout and, with ``--json``, every figure written atomically."""
    print(markdown)
    if json_out:
        write_text(json_out, json.dumps(result, indent=2) + "\n")
        print(f"wrote {json_out}", file=sys.stderr)
    return 0


def run_scale(args: argparse.Namespace) -> int:
    from taskgraph.bench.scale import ScaleSettings, render_scale, run_scale

    settings = ScaleSettings(
        tasks=tuple(args.tasks),
        rounds=args.rounds,
        warmup=args.warmup,
        threads=args.threads,
        memory=not args.no_memory,
        share=args.share,
        seed=args.seed,
    )
    result = run_scale(settings, progress=_progress)
    return _report(result, render_scale(result), args.json)


def run_speed(args: argparse.Namespace) -> int:
    from taskgraph.bench.report import render_markdown
    from taskgraph.bench.speed import run_speed_bench, settings_from_args

    if args.ops:
        from taskgraph.bench import ops

        result = ops.run_ops_bench(ops.settings_from_args(args), progress=_progress)
        return _report(result, ops.render_ops(result), args.json)
    settings = settings_from_args(args)
    settings.check()
    result = run_speed_bench(settings, progress=_progress)
    return _report(result, render_markdown(result), args.json)


def run_quality(args: argparse.Namespace) -> int:
    from pathlib import Path

    from taskgraph.bench.quality.report import render_suite
    from taskgraph.bench.quality.run import QualitySettings, run_quality

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
    result = run_quality(settings, progress=_progress)
    markdown = "\n\n".join(render_suite(r) for r in result["suites"].values())
    for name in result["suites"]:
        _progress(f"wrote {Path(args.out) / name / 'quality.md'}, quality.json, plots/")
    return _report(result, markdown, args.json)
