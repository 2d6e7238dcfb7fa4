"""``taskgraph merge SOURCE [SOURCE ...] --method M [--tasks a,b] [--lambda auto|X] [--rank R] [--threads N] --out DIR``.

Merges the tasks of one routed multi-task run (each task folded exactly first), or of several runs trained
from one shared initialisation, into one model with no routing (:func:`taskgraph.merge.merge_runs`).
Hyper-parameters given as ``auto`` (the default) are chosen on the validation split from the method's
grid. ``DIR`` is a run folder that ``taskgraph eval / predict / export`` read; ``DIR/merge.json`` holds the
chosen values and every grid point's validation scores.

Progress goes to stderr as training's does: a line per stage and per grid point, one every few seconds inside a long
stage (``TASKGRAPH_PROGRESS=off`` silences it). Without ``--rank`` the merge is exact; when its rank passes twice a
task's (TIES and DARE make a sparse, nearly full-rank update) it says so, with the size and FLOPs per token it costs
and a ``--rank`` to try (:mod:`taskgraph.merge.rank_growth`) — a note rather than a default, since truncating is lossy
and what it costs in accuracy shows only on the tasks' validation scores.
"""

from __future__ import annotations

import argparse
from typing import Any

from taskgraph.cli.argtypes import positive_int, seed
from taskgraph.cli.threads import add_threads_option
from taskgraph.run_folder import kept_note

# The built-in kinds of taskgraph.registry.MERGES (not imported here: it loads torch); a test keeps them equal.
METHODS = ("average", "dare", "dare-ties", "subspace", "task-arithmetic", "ties")


def task_list(text: str) -> list[str]:
    """``a,b,c`` -> ``["a", "b", "c"]`` (no empty name)."""
    names = [t.strip() for t in text.split(",")]
    if not text.strip() or any(not n for n in names):
        raise argparse.ArgumentTypeError(f"expected task names separated by commas, e.g. a,b,c; got {text!r}")
    return names


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("merge", help="merge the tasks of LoRA runs into one model (task arithmetic, TIES, DARE, ...)")
    p.add_argument(
        "sources",
        nargs="+",
        metavar="SOURCE",
        help="one routed multi-task run, or several runs trained from one shared initialisation",
    )
    p.add_argument("--method", required=True, metavar="M", help=f"merge method: {', '.join(METHODS)}")
    p.add_argument("--tasks", type=task_list, default=None, metavar="a,b", help="the tasks to merge (default: all)")
    p.add_argument(
        "--lambda",
        dest="lam",
        default=None,
        metavar="auto|X",
        help="scale λ of the merged update (default: auto, chosen on the validation split)",
    )
    p.add_argument(
        "--density", default=None, metavar="auto|X", help="ties, subspace --combine ties: share of entries kept"
    )
    p.add_argument("--p", dest="p", default=None, metavar="auto|X", help="dare, dare-ties: drop probability")
    p.add_argument(
        "--combine",
        default=None,
        choices=("sum", "ties"),
        help="subspace: how the r×r coordinates merge (default: sum)",
    )
    p.add_argument(
        "--rank",
        type=positive_int,
        default=None,
        metavar="R",
        help="re-factor the merged update at rank R by truncated SVD (subspace: its rank). Default: exact — TIES and "
        "DARE can then reach a rank far above the tasks' LoRAs; merge notes it, with its size and a rank to try",
    )
    p.add_argument("--seed", type=seed, default=None, help="dare, dare-ties: seeds the drops (default: 0)")
    p.add_argument(
        "--fold-into-base",
        action="store_true",
        help="also write DIR/plain: the base with the update folded into its weights (plain transformers)",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="the merged run folder (new, or --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace a merge run in --out")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    add_threads_option(p)
    p.set_defaults(run=run)


def method_params(args: argparse.Namespace) -> dict[str, Any]:
    """The hyper-parameters given on the command line (the method validates them, naming the ones it lacks)."""
    given = {
        "lambda": args.lam,
        "density": args.density,
        "p": args.p,
        "combine": args.combine,
        "rank": args.rank,
        "seed": args.seed,
    }
    return {k: v for k, v in given.items() if v is not None}


def run(args: argparse.Namespace) -> int:
    from taskgraph.merge import merge_runs  # torch + transformers: imported when needed

    result = merge_runs(
        args.sources,
        method=args.method,
        tasks=args.tasks,
        params=method_params(args),
        fold_into_base=args.fold_into_base,
        out_dir=args.out,
        overwrite=args.overwrite,
        device=args.device,
        threads=args.threads,
    )
    print("\n".join(summary_lines(result.record)))
    print(f"wrote {args.out} (taskgraph eval {args.out} reads it)")
    if result.kept:
        print(kept_note(result.kept, args.out))
    return 0


def summary_lines(record: dict[str, Any]) -> list[str]:
    """What a merge did, for the terminal."""
    runs = record["sources"]
    if record["source_kind"] == "routed":
        where = f"{runs[0]} (a routed run, every task folded)"
    else:
        listed = ", ".join(runs) if len(runs) <= 2 else f"{runs[0]}, ..., {runs[-1]}"
        where = f"{len(runs)} runs from one initialisation ({listed})"
    lines = [f"merged {len(record['tasks'])} tasks of {where} with {record['method']}"]
    chosen = " ".join(f"{k}={v:g}" for k, v in record["chosen"].items()) or "nothing to choose"
    if record["selected_on"]:
        lines.append(
            f"  chosen on val   {chosen} (best of {len(record['grid'])} grid points, val mean {record['val_mean']:.4f})"
        )
    else:
        lines.append(f"  values          {chosen} (given)")
    exact = f"truncated at {record['rank_requested']}" if record["rank_requested"] else "exact"
    lines.append(
        f"  rank            {record['rank']} ({exact}){'; folded into the base: DIR/plain' if record['fold_into_base'] else ''}"
    )
    if record["val_accuracy"]:
        width = max(len(t) for t in record["tasks"])
        lines.append(f"  {'task':<{width}}  val accuracy")
        lines += [f"  {t:<{width}}  {record['val_accuracy'][t]:.4f}" for t in record["tasks"]]
    if record.get("rank_growth"):
        lines.append(record["rank_growth"]["note"])
    return lines
