"""``taskgraph bench speed|infer|lm|scale [...]``: side-by-side figures and ratios (markdown on stdout, JSON with --json).

Each bench is a sub-subcommand with its own options, described in :mod:`taskgraph.bench`. Progress goes to stderr.
The research suites (``quality``, ``merge``, ``view``) moved out of the package into the repository's ``benchmarks/``:
``taskgraph bench quality ...`` says so and exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from taskgraph.atomic import write_text
from taskgraph.cli.argtypes import (
    bench_batch,
    output_path,
    rounds,
    router_kind,
    seed,
    seq,
    task_count,
    threads,
    warmup_rounds,
)
from taskgraph.run_folder import check_output_file

if TYPE_CHECKING:
    from taskgraph.bench import OpsSettings, SpeedSettings


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("bench", help="benchmarks: figures side by side with PEFT, with ratios")
    benches = p.add_subparsers(dest="bench", metavar="BENCH", parser_class=type(p))
    benches.required = True
    _add_speed(benches)
    _add_infer(benches)
    _add_lm(benches)
    _add_scale(benches)
    for name in MOVED:
        _add_moved(benches, name)


MOVED = ("quality", "merge", "view")  # the research suites, now python -m benchmarks <name> in a checkout


def _add_moved(benches: argparse._SubParsersAction, name: str) -> None:  # type: ignore[type-arg]
    """``bench <name>`` takes any arguments (no option is parsed: prefix ``\\0``) and says where it went."""
    p = benches.add_parser(
        name, help=f"moved: python -m benchmarks {name} (a checkout)", add_help=False, prefix_chars="\0"
    )
    p.add_argument("args", nargs="*")
    p.set_defaults(run=lambda args: moved(name))


def moved(name: str) -> int:
    """Exit 2 with one paragraph: where the research suite ``name`` runs now."""
    print(
        f"error: taskgraph bench {name} moved: run `python -m benchmarks {name} ...` from a checkout of the "
        "repository (the research suites live in its benchmarks/ folder, not in the installed package; the same "
        "options)",
        file=sys.stderr,
    )
    return 2


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
        choices=["tiny", "minilm", "minilm-shape", "encoder-768", "tiny-llama", "llama-1b"],
        default="minilm",
        help="minilm: the packaged MiniLM-L6; minilm-shape: its shape built from a config; encoder-768: "
        "12 layers x 768 from a config (a GPU-sized base); llama-1b: a 1 B Llama from a config (CUDA; targets "
        "every attention and MLP projection); tiny / tiny-llama: a 2-layer BERT / Llama from a config "
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
        "--gradient-checkpointing",
        action="store_true",
        help="add each row of PEFT LoRA, the floor and the routers again with every transformer block checkpointed",
    )
    p.add_argument(
        "--routers", nargs="+", type=router_kind, default=None, help="the per-router rows (default: every router)"
    )
    p.add_argument(
        "--base-dtype",
        choices=["float32", "bfloat16"],
        default="float32",
        help="the base's weights before any quantization (default: float32)",
    )
    p.add_argument("--allow-large", action="store_true", help="run llama-1b on the CPU all the same")
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
    from taskgraph.bench import LMSettings, render_lm, run_lm_bench

    settings = LMSettings(
        model=args.model,
        **({} if args.routers is None else {"routers": args.routers}),  # default: every router the bench knows
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
    from taskgraph.bench import InferSettings, render_infer, run_infer_bench

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


def _names(text: str) -> tuple[str, ...]:
    """A comma-separated list of distinct names, e.g. ``poly,graph``; an empty list or a repeated name is refused."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected names separated by commas, got {text[:40]!r}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(f"{', '.join(map(repr, repeated))} given twice in {text[:80]!r}")
    return names


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
    from taskgraph.bench import ScaleSettings, render_scale, run_scale

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
    from taskgraph.bench import render_markdown, render_ops, run_ops_bench, run_speed_bench

    if args.ops:
        result = run_ops_bench(ops_settings(args), progress=_progress)
        return _report(result, render_ops(result), args.json)
    settings = speed_settings(args)
    settings.check()
    result = run_speed_bench(settings, progress=_progress)
    return _report(result, render_markdown(result), args.json)


def speed_settings(args: argparse.Namespace) -> SpeedSettings:
    """``taskgraph bench speed``'s settings from its options."""
    from taskgraph.bench import SpeedSettings, speed_shape

    return SpeedSettings(
        model=args.model,
        device=args.device,
        rounds=args.rounds,
        warmup=args.warmup,
        tasks=args.tasks,
        many_tasks=args.many_tasks,
        threads=args.threads,
        memory=not args.no_memory,
        seed=args.seed,
        shape=speed_shape(args.model, batch=args.batch, seq=args.seq),
        quantize=args.quantize,
        gradient_checkpointing=args.gradient_checkpointing,
        routers=None if args.routers is None else tuple(args.routers),
        base_dtype=args.base_dtype,
        allow_large=args.allow_large,
    )


def ops_settings(args: argparse.Namespace) -> OpsSettings:
    """``taskgraph bench speed --ops``: ``--model tiny`` counts the tiny BERT, otherwise MiniLM-L6 and the 12 × 768
    encoder; the cases are ``(tasks, 1)``, ``(tasks, tasks)``, ``(many_tasks, tasks)``, ``(many_tasks, batch)``
    (T tasks, U distinct tasks in the batch; U at most the batch)."""
    from taskgraph.bench import OpsSettings, Shape

    t, many, batch = args.tasks, args.many_tasks, args.batch
    cases = tuple(dict.fromkeys(((t, 1), (t, min(t, batch)), (many, min(t, batch)), (many, min(many, batch)))))
    return OpsSettings(
        models=("tiny",) if args.model == "tiny" else ("minilm", "encoder-768"),
        cases=cases,
        batch=batch,
        mhr_heads=2 if args.model == "tiny" else 8,
        shape=Shape(batch=batch, seq=16),
    )
