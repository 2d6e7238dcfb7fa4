"""``taskgraph sweep SPEC --param KEY=v1,v2 [--param ...] [--seeds N] [--split val|test] [--max-steps N]
[--device cpu|cuda] --out DIR``.

Trains every combination of the values × seeds (finished cells skipped, interrupted ones resumed),
evaluates each on the split, prints one line per cell and the table of mean ± std over seeds, and
writes ``DIR/sweep.md``, ``DIR/sweep.json`` and ``DIR/plots/<metric>-vs-<param>.png``. Keys and
values read as ``taskgraph train --set`` reads them; ``tasks.*.data.x`` means every task.
"""

from __future__ import annotations

import argparse

from taskgraph.cli.argtypes import MAX_SEEDS, positive_int, seeds
from taskgraph.cli.threads import add_threads_option, apply_threads
from taskgraph.errors import SpecError


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("sweep", help="train a grid of spec values × seeds; table and plots of mean ± std")
    p.add_argument("spec", metavar="SPEC", help="a YAML spec file")
    p.add_argument(
        "--param",
        dest="params",
        action="append",
        required=True,
        metavar="KEY=v1,v2",
        help="a swept field and its values, e.g. router.temperature=0.5,1,2 or "
        "tasks.*.data.seq_len=8,16 (repeat for a grid)",
    )
    p.add_argument(
        "--seeds",
        type=seeds,
        default=1,
        metavar="N",
        help=f"seeds per grid point: training.seed + 0 .. N-1 (default: 1; at most {MAX_SEEDS})",
    )
    p.add_argument("--split", default="val", choices=["val", "test"], help="the split evaluated (default: val)")
    p.add_argument(
        "--max-steps",
        type=positive_int,
        default=None,
        metavar="N",
        help="cap training.steps of every cell at N (quick sweeps)",
    )
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where to train (default: cpu)")
    p.add_argument("--out", required=True, metavar="DIR", help="the sweep folder (new, or a sweep to complete)")
    add_threads_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    apply_threads(args)
    from taskgraph.sweep import parse_param, run_sweep  # torch and transformers load only when a sweep runs

    params: dict[str, list[str]] = {}
    for text in args.params:
        key, values = parse_param(text)
        if key in params:
            raise SpecError([f"--param {key} is given twice; give all its values in one: {key}=v1,v2,..."])
        params[key] = values
    result = run_sweep(
        args.spec,
        params,
        args.out,
        seeds=args.seeds,
        device=args.device,
        split=args.split,
        max_steps=args.max_steps,
        progress=lambda line: print(line, flush=True),
    )
    counts = ", ".join(f"{n} {status}" for status, n in result.counts().items() if n)
    print()
    print(f"{args.split} split, mean ± std over {len(result.grid.seeds)} seed(s):")
    print(result.table, end="")
    print()
    print(f"{len(result.outcomes)} cells: {counts}")
    print(f"wrote {result.markdown}, {result.json} and {len(result.plots)} plots in {result.out_dir / 'plots'}")
    return 0
