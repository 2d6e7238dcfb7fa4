"""``taskgraph attach RUN --task NAME [--description TEXT] [--examples FILE] [--relate A=0.8 ...] --out DIR``.

Adds a task to a trained graph-router run from what is known about it — a description, a few unlabeled inputs, its
relations — with no gradient step (:mod:`taskgraph.adapt.attach`), and writes a run dir that ``taskgraph eval`` and
``taskgraph predict`` read. ``--examples`` is a ``.txt`` file (one input per line) or a ``.jsonl`` file (each row's
``text``); ``--data`` (as ``taskgraph adapt`` reads it) scores the task on its val and test splits, gives the
examples when none are passed, and fits a classification task's head on ``--shots`` of its labelled rows.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from taskgraph.cli.adapt import SCORES, add_generation_options, generation_of, relation, relations_of
from taskgraph.cli.argtypes import positive_int, seed
from taskgraph.cli.threads import add_threads_option
from taskgraph.run_folder import kept_note


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("attach", help="attach a new task to a graph-router run from its description (no training)")
    p.add_argument("run_dir", metavar="RUN", help="a run directory trained with router.kind: graph")
    p.add_argument("--task", required=True, help="the new task's name")
    p.add_argument("--out", required=True, metavar="DIR", help="the new run dir (new, or --overwrite)")
    p.add_argument("--description", default=None, metavar="TEXT", help="the new task's description")
    p.add_argument("--examples", default=None, metavar="FILE", help="its unlabeled inputs: .txt lines or .jsonl text")
    p.add_argument(
        "--relate",
        action="append",
        type=relation,
        default=[],
        metavar="TASK=W",
        help="a relation to a trained task (repeatable; default: computed from the description / examples)",
    )
    p.add_argument("--k", type=positive_int, default=None, metavar="N", help="nearest tasks computed relations keep")
    p.add_argument("--data", default=None, metavar="SRC", help="the new task's data (to score it; as taskgraph adapt)")
    p.add_argument("--shots", type=positive_int, default=16, metavar="N", help="a classification head's fit rows")
    p.add_argument("--labels", type=positive_int, default=None, metavar="N", help="a classification task's labels")
    p.add_argument("--family", default=None, help="the new task's family (evaluation metadata)")
    p.add_argument("--seed", type=seed, default=0, help="draws the head's shots (default: 0)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run in --out")
    add_generation_options(p)
    add_threads_option(p)
    p.set_defaults(run=run)


def read_examples(path: str) -> list[str]:
    """The inputs of a ``.txt`` (one per non-empty line) or ``.jsonl`` (each row's ``text``) file.

    Raises:
        DataError: a missing or unreadable file, another suffix, a row with no ``text``, no input at all.
    """
    from taskgraph.errors import DataError

    file = Path(path)
    if file.suffix not in (".txt", ".jsonl"):
        raise DataError(f"--examples {path}: expected a .txt file (one input per line) or a .jsonl file (a text field)")
    try:
        lines = [line for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"--examples {path}: cannot read it ({exc})") from None
    if file.suffix == ".txt":
        texts = lines
    else:
        texts = []
        for number, line in enumerate(lines, 1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: not a JSON object ({exc.msg})") from None
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                raise DataError(f'{path}:{number}: each row needs a "text" string, got {line[:80]!r}')
            texts.append(row["text"])
    if not texts:
        raise DataError(f"--examples {path}: holds no input")
    return texts


def run(args: argparse.Namespace) -> int:
    from taskgraph.adapt import attach_run, parse_data_arg  # torch + transformers: imported when needed

    data, base_dir = parse_data_arg(args.data, Path.cwd()) if args.data is not None else (None, None)
    generation = generation_of(args)
    relate = relations_of(args)
    result = attach_run(
        args.run_dir,
        task=args.task,
        out_dir=args.out,
        description=args.description,
        examples=read_examples(args.examples) if args.examples is not None else None,
        relate=relate or None,
        k=args.k,
        data=data,
        generation=generation,
        num_labels=args.labels,
        shots=args.shots,
        seed=args.seed,
        base_dir=base_dir,
        family=args.family,
        device=args.device,
        overwrite=args.overwrite,
        threads=args.threads,
    )
    record = result.record
    evidence = ", ".join(k for k in ("description", "examples") if record["evidence"][k]) or "relations only"
    print(f"attached task {result.task!r} to {record['source_run']} (graph router), no gradient step")
    print(f"  from       {evidence}; relations {record['evidence']['relations']}")
    shown = ", ".join(f"{name}={w:.2f}" for name, w in sorted(result.relations.items(), key=lambda kv: -kv[1])[:8])
    print(f"  relations  {shown}{' ...' if len(result.relations) > 8 else ''}")
    for split in ("val", "test"):
        scores = record[split]
        if scores is not None:
            print(
                f"  {split:<10} "
                + ", ".join(f"{t} {scores[k]:.4f}" for k, t in SCORES if k in scores)
                + f" (n={scores['n']})"
            )
    if record["head"] == "unfit: no data to fit it on":
        print("  head       unfit: give --data to fit it on labelled shots (or taskgraph adapt)")
    print(f"wrote {result.out_dir} (taskgraph eval / predict read it)")
    if result.kept:
        print(kept_note(result.kept, result.out_dir))
    return 0
