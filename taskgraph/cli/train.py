"""``taskgraph train SPEC --out RUN [--set key=value ...] [--resume] [--max-steps N] [--device cpu|cuda]``.

``--set`` changes spec fields before the run: ``--set training.steps=50 router.temperature=0.5``.
Keys are dotted paths (``tasks[0].num_labels`` or ``tasks.0.num_labels`` for list items); values
are read as YAML (``0.5``, ``true``, ``[query, value]``). The changed spec is validated whole
again. Relative data paths resolve against the spec file's folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from taskgraph.cli.argtypes import positive_int
from taskgraph.spec.overrides import spec_with_overrides



def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("train", help="train a spec into a run folder (checkpoints, log, best and final model)")
    p.add_argument("spec", metavar="SPEC", help="a YAML spec file")
    p.add_argument("--out", required=True, metavar="RUN", help="the run folder (new, or an interrupted run with --resume)")
    p.add_argument("--set", dest="overrides", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="change a spec field, e.g. training.steps=50 router.temperature=0.5")
    p.add_argument("--resume", action="store_true", help="continue RUN from its newest checkpoint")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the previous run in RUN (only a folder taskgraph marked as its run; the new spec "
                        "and data are checked before anything is removed)")
    p.add_argument("--max-steps", type=positive_int, default=None, metavar="N",
                   help="stop after step N (the schedule still spans training.steps); --resume goes on later")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where to train (default: cpu)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from taskgraph.report import write_run_plots  # torch and transformers load only when a run starts
    from taskgraph.train import train

    spec = spec_with_overrides(args.spec, args.overrides)
    result = train(spec, args.out, base_dir=Path(args.spec).parent, resume=args.resume, overwrite=args.overwrite,
                   max_steps=args.max_steps, device=args.device)
    plots = write_run_plots(result.run_dir, model=result.model)
    width = max(len(name) for name in result.final.acc)
    print(f"{'task':<{width}}  val accuracy")
    for name, acc in result.final.acc.items():
        print(f"{name:<{width}}  {acc:.4f}")
    print(f"{'mean':<{width}}  {result.final.mean_acc:.4f}")
    print(f"plots: {', '.join(str(p) for p in plots)}")
    best = "" if result.best_step is None else f" (best {result.best_mean_acc:.4f} at step {result.best_step}" + \
        (", the final model)" if result.best_in == "model" else ")")
    status = "done" if result.completed else f"stopped at step {result.step} of {spec.training.steps}"
    print(f"{args.out}: {status}; {result.wall_time_s:.1f} s, {result.examples_per_s:.0f} examples/s; "
          f"val mean accuracy {result.final.mean_acc:.4f}{best}; model in {Path(args.out) / 'model'}")
    return 0
