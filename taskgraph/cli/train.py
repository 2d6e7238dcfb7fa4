"""``taskgraph train SPEC --out RUN [--set key=value ...] [--max-steps N] [--device cpu|cuda] [--threads N]``,
``taskgraph train --out RUN --resume``, ``taskgraph train SPEC --out RUN --nproc-per-node N``.

``--set`` changes spec fields before the run: ``--set training.steps=50 router.temperature=0.5``.
Keys are dotted paths (``tasks[0].num_labels`` or ``tasks.0.num_labels`` for list items); values
are read as YAML (``0.5``, ``true``, ``[query, value]``). The changed spec is validated whole
again. Relative data paths resolve against the spec file's folder.

``--resume`` continues the run with the spec it recorded (``RUN/spec.yaml``, the ``--set`` values
included) and the spec folder it recorded, so neither SPEC nor ``--set`` has to be repeated; a SPEC given
with ``--set`` must match the recorded one. Ctrl-C stops a run and prints the command that resumes it.

``--nproc-per-node N`` trains data-parallel with N processes on this machine (:func:`taskgraph.train.launch`: the
checks run once, then torchrun's launcher starts N copies of this command without the option, and how they end
becomes one exit status: 2 for a refusal, 130 for Ctrl-C). Under ``torchrun`` (``WORLD_SIZE`` > 1) every process
makes the checks that need no peer before it joins the others; a refusal every process of a machine reaches alike
is printed by its local rank 0 alone, and left for torchrun's failure table (``TORCHELASTIC_ERROR_FILE``).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from taskgraph.cli.argtypes import int_in, positive_int
from taskgraph.cli.threads import add_threads_option
from taskgraph.errors import CheckpointError, SpecError, TaskgraphError
from taskgraph.run_folder import kept_note, read_marker
from taskgraph.spec import Spec, load_spec, spec_with_overrides

MAX_PROCESSES = 1024  # processes per machine for --nproc-per-node


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("train", help="train a spec into a run folder (checkpoints, log, best and final model)")
    p.add_argument(
        "spec",
        metavar="SPEC",
        nargs="?",
        default=None,
        help="a YAML spec file (with --resume: optional, the run's recorded spec is used)",
    )
    p.add_argument(
        "--out", required=True, metavar="RUN", help="the run folder (new, or an interrupted run with --resume)"
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="extend",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="change a spec field, e.g. training.steps=50 router.temperature=0.5",
    )
    p.add_argument("--resume", action="store_true", help="continue RUN from its newest checkpoint")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the previous run in RUN (only a folder taskgraph marked as its run; the new spec "
        "and data are checked before anything is removed)",
    )
    p.add_argument(
        "--max-steps",
        type=positive_int,
        default=None,
        metavar="N",
        help="stop after step N (the schedule still spans training.steps); --resume goes on later",
    )
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where to train (default: cpu)")
    add_threads_option(p)
    p.add_argument(
        "--nproc-per-node",
        type=int_in(1, MAX_PROCESSES, "processes"),
        default=None,
        metavar="N",
        help="train data-parallel with N processes on this machine (one per GPU with --device cuda); torchrun's "
        "launcher underneath, with taskgraph's exit codes (2 a refusal, 130 Ctrl-C)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from taskgraph.train import (  # torch loads only when a run starts
        ProcessPlace,
        TrainingError,
        check_before_joining,
        launch,
        process_place,
        record_failure,
    )

    place = ProcessPlace()  # every process speaks while its place is unknown
    try:
        place = process_place()
        if args.nproc_per_node is not None and place.world > 1:
            raise TrainingError(
                f"--nproc-per-node starts the processes itself, and this one is already one of {place.world} "
                "(WORLD_SIZE, set by torchrun); use either torchrun or --nproc-per-node"
            )
        world = args.nproc_per_node or place.world
        spec, base_dir = _spec_and_folder(args)
        if world > 1:
            check_before_joining(
                spec,
                Path(args.out),
                base_dir=base_dir,
                world=world,
                rank=place.rank,
                resume=args.resume,
                overwrite=args.overwrite,
                device=args.device,
                local_processes=args.nproc_per_node,
            )
    except TaskgraphError as exc:
        record_failure(f"error: {exc.cli_message()}", code=2)
        if not place.speaks_for_machine:  # its machine's local rank 0 refuses alike and says why
            return 2
        raise
    if world > 1 and args.nproc_per_node is not None:
        return launch(_worker_argv(args), nproc=world, run=Path(args.out), threads=args.threads)
    return _train(args, spec, base_dir, rank=place.rank)


def _train(args: argparse.Namespace, spec: Spec, base_dir: Path, *, rank: int) -> int:
    from taskgraph.train import list_checkpoints, record_failure, train  # torch and transformers: when a run starts

    try:
        result = train(
            spec,
            args.out,
            base_dir=base_dir,
            resume=args.resume,
            overwrite=args.overwrite,
            max_steps=args.max_steps,
            device=args.device,
            threads=args.threads,
        )
    except TaskgraphError as exc:
        record_failure(f"error: {exc.cli_message()}", code=2)
        raise
    except KeyboardInterrupt:
        record_failure("interrupted", code=130)
        if rank != 0:  # rank 0 says where to resume
            return 130
        saved = list_checkpoints(Path(args.out)) if Path(args.out).is_dir() else []
        if saved:
            print(
                f"interrupted; the last checkpoint is {saved[-1]}. Resume with:\n"
                f"  taskgraph train --out {shlex.quote(str(args.out))} --resume",
                file=sys.stderr,
            )
        else:
            print(
                "interrupted before the first checkpoint (training.checkpoint_every = "
                f"{spec.training.checkpoint_every} steps); nothing to resume — start again with --overwrite",
                file=sys.stderr,
            )
        return 130
    except Exception as exc:  # a bug: the CLI prints its traceback; torchrun's table and the launcher name it
        record_failure(f"{type(exc).__name__}: {exc}", code=1)
        raise
    if result.rank != 0:  # a data-parallel run (torchrun): rank 0 reports it
        return 0
    from taskgraph.report import write_run_plots  # the report stage draws the finished run (matplotlib)

    result.plots = write_run_plots(result.run_dir, model=result.model)
    width = max(len(name) for name in result.final.acc)
    print(f"{'task':<{width}}  val accuracy")
    for name, acc in result.final.acc.items():
        print(f"{name:<{width}}  {acc:.4f}")
    print(f"{'mean':<{width}}  {result.final.mean_acc:.4f}")
    print(f"plots: {', '.join(str(p) for p in result.plots)}")
    best = (
        ""
        if result.best_step is None
        else f" (best {result.best_mean_acc:.4f} at step {result.best_step}"
        + (", the final model)" if result.best_in == "model" else ")")
    )
    status = "done" if result.completed else f"stopped at step {result.step} of {spec.training.steps}"
    print(
        f"{args.out}: {status}; {result.wall_time_s:.1f} s, {result.examples_per_s:.0f} examples/s; "
        f"val mean accuracy {result.final.mean_acc:.4f}{best}; model in {Path(args.out) / 'model'}"
    )
    if result.kept:
        print(kept_note(result.kept, args.out))
    return 0


def _worker_argv(args: argparse.Namespace) -> list[str]:
    """This command for each process the launcher starts: the same options, without ``--nproc-per-node``."""
    argv = ["train", f"--out={args.out}", f"--device={args.device}"]
    argv += [f"--set={item}" for item in args.overrides]
    argv += ["--resume"] if args.resume else []
    argv += ["--overwrite"] if args.overwrite else []
    argv += [] if args.max_steps is None else [f"--max-steps={args.max_steps}"]
    argv += [] if args.threads is None else [f"--threads={args.threads}"]
    return argv + ([] if args.spec is None else ["--", args.spec])


def _spec_and_folder(args: argparse.Namespace) -> tuple[Spec, Path]:
    """The spec to train and the folder its relative data paths resolve against.

    A fresh run: SPEC with ``--set``. ``--resume``: the run's recorded spec and spec folder, unless ``--set``
    is given (then SPEC with ``--set`` must be the recorded spec; the checkpoint check says where not).
    """
    if not args.resume or args.overrides:
        if args.spec is None:
            raise SpecError(["give a SPEC file (only --resume, without --set, can do without one)"])
        return spec_with_overrides(args.spec, args.overrides), Path(args.spec).parent
    run = Path(args.out)
    recorded = run / "spec.yaml"
    if not recorded.is_file():
        if args.spec is None and not run.is_dir():
            what = "is not a folder" if os.path.lexists(run) else "does not exist"
            raise CheckpointError(
                f"--resume: {str(run)!r} {what}; there is no run to continue (drop --resume and give a SPEC to start one)"
            )
        if args.spec is None:
            raise SpecError(
                [f"--resume: {str(run)!r} holds no recorded spec (spec.yaml); give the SPEC it was trained with"]
            )
        return spec_with_overrides(args.spec, []), Path(args.spec).parent
    spec = load_spec(recorded)
    marker = read_marker(run) or {}
    folder = (
        Path(marker["spec_dir"])
        if isinstance(marker.get("spec_dir"), str)
        else Path(args.spec).parent
        if args.spec is not None
        else run
    )
    if args.spec is not None:
        from taskgraph.train import spec_hash

        given = spec_with_overrides(args.spec, [])
        if spec_hash(given) != spec_hash(spec):
            print(
                f"note: {args.spec} differs from the spec {str(run)!r} was trained with (its --set values included); "
                "resuming with the recorded spec",
                file=sys.stderr,
            )
    return spec, folder
