"""``taskgraph adapt RUN --task NAME --data SRC --shots N --mode full|routing|mhr-mu|zero-shot --out DIR``.

Adds a new task to a trained run from N of its examples (``zero-shot``: from its relations only) and
writes an adapted run dir that ``taskgraph eval`` and ``taskgraph predict`` read. ``--data`` is a flow
mapping (``"{source: planted, task: 21}"``), a ``.yaml`` file holding the data block, or a ``.jsonl`` /
``.csv`` file. ``--relate TASK=W`` (repeatable) gives a graph router's new node its relations.

``--objective generate`` adds a text-to-text task (a run on a language-model base), with its ``--template``,
``--choice`` (repeatable: a choices task), ``--max-new-tokens`` and ``--stop`` as a spec's task gives them; it
has no head to refit (see :mod:`taskgraph.adapt.run`).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from taskgraph.cli.argtypes import count, positive_int, seed
from taskgraph.cli.threads import add_threads_option
from taskgraph.run_folder import kept_note

SCORES = (
    ("accuracy", "accuracy"),
    ("macro_f1", "macro-F1"),
    ("exact_match", "exact match"),
    ("token_f1", "token F1"),
    ("rouge_l", "ROUGE-L"),
)  # what the scores of a split hold, by the task's objective
MODES = ("full", "routing", "mhr-mu", "zero-shot")  # taskgraph.adapt.ADAPT_MODES (not imported: torch loads late)


def relation(text: str) -> tuple[str, float]:
    """``TASK=W`` with W in [0, 1]."""
    name, sep, raw = text.partition("=")
    try:
        weight = float(raw)
    except ValueError:
        weight = math.nan
    if not sep or not name.strip() or not 0.0 <= weight <= 1.0:
        raise argparse.ArgumentTypeError(f"expected TASK=W with a weight W in [0, 1], got {text!r}")
    return name.strip(), weight


def learning_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("adapt", help="adapt a trained run to a new task from a few examples (or zero-shot)")
    p.add_argument("run_dir", metavar="RUN", help="a run directory (taskgraph train --out RUN) or a model folder")
    p.add_argument("--task", required=True, help="the new task's name")
    p.add_argument(
        "--data",
        required=True,
        metavar="SRC",
        help='the new task\'s data: "{source: jsonl, path: new.jsonl}", a .yaml file, or a .jsonl/.csv file',
    )
    p.add_argument("--shots", required=True, type=positive_int, metavar="N", help="training examples to adapt on")
    p.add_argument("--mode", required=True, choices=MODES, help="what is adapted (see taskgraph.adapt.modes)")
    p.add_argument("--out", required=True, metavar="DIR", help="the adapted run dir (new, or --overwrite)")
    p.add_argument(
        "--relate",
        action="append",
        type=relation,
        default=[],
        metavar="TASK=W",
        help="a relation of the new task (graph router; repeatable; required for zero-shot)",
    )
    p.add_argument(
        "--labels",
        type=positive_int,
        default=None,
        metavar="N",
        help="the new task's number of labels (default: inferred from the data)",
    )
    p.add_argument("--family", default=None, help="the new task's family (evaluation metadata)")
    p.add_argument("--steps", type=count, default=100, metavar="N", help="phase-1 steps (default: 100)")
    p.add_argument(
        "--lr",
        type=learning_rate,
        default=None,
        help="one learning rate for every phase-1 group (default: the run's training.lr)",
    )
    p.add_argument("--seed", type=seed, default=0, help="seeds the shots and the adaptation (default: 0)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run in --out")
    add_generation_options(p)
    add_threads_option(p)
    p.set_defaults(run=run)


def add_generation_options(p: argparse.ArgumentParser) -> None:
    """``--objective`` and the generative task's keys (``--template``, ``--choice``, ``--max-new-tokens``, ``--stop``),
    as a spec's task gives them; :func:`generation_of` reads them back."""
    p.add_argument(
        "--objective",
        choices=["classify", "generate"],
        default="classify",
        help="the new task classifies (a head) or generates text (default: classify)",
    )
    p.add_argument("--template", default=None, help="generate: the input built from a row's {field} slots")
    p.add_argument(
        "--choice",
        dest="choices",
        action="append",
        default=None,
        metavar="TEXT",
        help="generate: one of the task's choices, in label order (repeatable; rank classification)",
    )
    p.add_argument(
        "--max-new-tokens",
        type=positive_int,
        default=None,
        metavar="N",
        help="generate: the longest target / completion in tokens (default: the spec's 32)",
    )
    p.add_argument(
        "--stop",
        action="append",
        default=None,
        metavar="TEXT",
        help="generate: a completion ends before this string (repeatable)",
    )


def generation_of(args: argparse.Namespace) -> dict[str, object] | None:
    """The new task's generative keys from the flags (None for a classification task).

    Raises:
        DataError: a generate-only flag without ``--objective generate``, or ``--labels`` with it.
    """
    from taskgraph.errors import DataError

    given = {
        key: value
        for key, value in (
            ("template", args.template),
            ("choices", args.choices),
            ("max_new_tokens", args.max_new_tokens),
            ("stop", args.stop),
        )
        if value is not None
    }
    if args.objective == "classify":
        if given:
            flags = ", ".join("--" + ("choice" if k == "choices" else k.replace("_", "-")) for k in given)
            raise DataError(
                f"{flags} describe a generative task; add --objective generate (a classification task takes --labels)"
            )
        return None
    if args.labels is not None:
        raise DataError(
            "--labels counts a classification task's labels; a generative task's labels are its "
            "choices (--choice TEXT, repeatable): drop --labels"
        )
    return {"objective": "generate", **given}


def relations_of(args: argparse.Namespace) -> dict[str, float]:
    """``--relate TASK=W`` flags as ``{task: weight}``; ModelError for a task given twice."""
    from taskgraph.errors import ModelError

    relate: dict[str, float] = {}
    for name, weight in args.relate:
        if name in relate:
            raise ModelError(f"--relate {name}= is given twice; give each related task once")
        relate[name] = weight
    return relate


def run(args: argparse.Namespace) -> int:
    from taskgraph.adapt import (  # torch + transformers: imported when needed
        adapt_run,
        parse_data_arg,
    )

    data, base_dir = parse_data_arg(args.data, Path.cwd())
    generation = generation_of(args)
    relate = relations_of(args)
    result = adapt_run(
        args.run_dir,
        task=args.task,
        data=data,
        shots=args.shots,
        mode=args.mode,
        out_dir=args.out,
        num_labels=args.labels,
        relate=relate or None,
        steps=args.steps,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        base_dir=base_dir,
        family=args.family,
        overwrite=args.overwrite,
        generation=generation,
        threads=args.threads,
    )
    record = result.record
    head = record["head"]["parameters"] if record["head"] is not None else None
    steps = f"{record['steps']} steps" if record["steps"] else "no gradient step"
    counts = "/".join(str(c) for c in record["shot_counts"])
    print(f"adapted {record['source_run']} ({record['router']} router) to task {result.task!r}, mode {result.mode}")
    print(f"  shots      {result.shots} (per label {counts}), {steps}")
    print(
        f"  trainable  {result.trainable:,} parameters "
        f"{f'(+ {head:,} in the refit head)' if head is not None else '(no head: a generative task)'}"
        f"{'; other tasks change' if record['other_tasks_change'] else ''}"
    )
    for split in ("val", "test"):
        scores = record[split]
        shown = ", ".join(f"{title} {scores[key]:.4f}" for key, title in SCORES if key in scores)
        print(f"  {split:<10} {shown} (n={scores['n']})")
    print(f"  seconds    {result.seconds:.2f} (total {record['total_seconds']:.2f})")
    print(f"wrote {result.out_dir} (taskgraph eval {result.out_dir} reads it)")
    if result.kept:
        print(kept_note(result.kept, result.out_dir))
    return 0
