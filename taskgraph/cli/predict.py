"""``taskgraph predict RUN --task NAME | --task-field FIELD --input FILE.jsonl [--out FILE] [--batch-size N]``: labels
and probabilities.

``--task`` classifies every record with one task; ``--task-field`` reads each record's task from that field, and the
records of many tasks then share batches (mixed-task batches: each example routed by its own task, one forward
pass per batch, no per-task model or fold).

The input is read like a JSONL data file (:func:`taskgraph.data.jsonl.read_jsonl`: UTF-8, a byte-order mark
allowed, one object per line, blank lines skipped). Texts are tokenised in large chunks and run in batches
of similar length; each chunk's predictions are written as soon as they are known (to a temp file renamed
at the end with ``--out``, so an interrupted run leaves no half-written output). The rate goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, BinaryIO

from taskgraph.cli.argtypes import positive_int
from taskgraph.errors import DataError
from taskgraph.files import check_file, check_text
from taskgraph.run_folder import check_output_file
from taskgraph.cli.threads import add_threads_option, apply_threads


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("predict", help="classify texts with a trained run")
    p.add_argument("run_dir", metavar="RUN", help="a run directory or a saved model folder")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--task", help="the task of every record")
    which.add_argument("--task-field", metavar="FIELD",
                       help="the field holding each record's task (records of many tasks share batches)")
    p.add_argument("--input", required=True, help="JSONL file, one object per line with a text field")
    p.add_argument("--text-field", default="text", help="the field holding the text (default: text)")
    p.add_argument("--out", default=None, help="JSONL output (default: standard output)")
    p.add_argument("--batch-size", type=positive_int, default=256, help="texts per forward pass (default: 256)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    add_threads_option(p)
    p.set_defaults(run=run)


def read_records(path: Path, field: str, task_field: str | None = None, tasks: list[str] | None = None,
                 ) -> list[dict[str, Any]]:
    """The JSONL records of ``path``; each must be an object with a string ``field`` of valid Unicode and, with
    ``task_field``, a string ``task_field`` naming one of ``tasks``."""
    from taskgraph.data.jsonl import read_jsonl

    rows = read_jsonl(check_file(path, "input", DataError))
    for record, where in rows:
        text = record.get(field)
        if not isinstance(text, str):
            raise DataError(f"input {str(path)!r} {where}: needs a string field {field!r} (found {sorted(record)}); "
                            "choose the field with --text-field")
        check_text(text, f"input {str(path)!r} {where}, field {field!r}", DataError)
        if task_field is not None and (not isinstance(record.get(task_field), str)
                                       or (tasks is not None and record[task_field] not in tasks)):
            found = record.get(task_field, "nothing")
            raise DataError(f"input {str(path)!r} {where}: field {task_field!r} must name a task of the model, found "
                            f"{found!r}; its tasks are {tasks}")
    if not rows:
        raise DataError(f"input {str(path)!r}: no records")
    return [record for record, _ in rows]


def run(args: argparse.Namespace) -> int:
    apply_threads(args)
    from taskgraph.model import TaskGraphModel  # torch + transformers: imported when needed
    from taskgraph.model.device import resolve_device
    from taskgraph.model.predict import iter_predictions
    from taskgraph.model.rundir import find_model_dir

    if args.out is not None:
        check_output_file(args.out, sources=[args.input, args.run_dir])
    records = read_records(Path(args.input), args.text_field, args.task_field)
    device = resolve_device(args.device)
    model = TaskGraphModel.from_pretrained(find_model_dir(args.run_dir), device=device)
    if args.task_field is None:
        model.task_index(args.task)  # an unknown task fails before any output is opened
        task: Any = args.task
        what = f"task {args.task!r}"
    else:  # every record's task known before any output is opened
        task = [r[args.task_field] for r in records]
        if not set(task) <= set(model.task_names):  # read again to name the first bad record's line
            read_records(Path(args.input), args.text_field, args.task_field, model.task_names)
        what = f"{len(set(task))} task(s) in mixed batches"
    start = time.perf_counter()
    texts = (r[args.text_field] for r in records)
    if args.out is None:
        _write(sys.stdout.buffer, records, iter_predictions(model, task, texts, args.batch_size))
        sys.stdout.flush()
    else:
        from taskgraph.atomic import atomic_open

        with atomic_open(args.out) as handle:
            _write(handle, records, iter_predictions(model, task, texts, args.batch_size))
    seconds = time.perf_counter() - start
    where = "standard output" if args.out is None else args.out
    print(f"wrote {len(records)} predictions for {what} to {where} in {seconds:.1f} s "
          f"({len(records) / max(seconds, 1e-9):,.0f} examples/s)", file=sys.stderr)
    return 0


def _write(handle: BinaryIO, records: list[dict[str, Any]], chunks: Any) -> None:
    done = 0
    for chunk in chunks:
        lines = [_line({**record, **result}) for record, result in zip(records[done : done + len(chunk)], chunk)]
        handle.write(b"".join(lines))
        done += len(chunk)


def _line(record: dict[str, Any]) -> bytes:
    """One JSON line, UTF-8; a record whose other fields hold lone surrogates keeps them as ``\\udXXX`` escapes."""
    try:
        return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    except UnicodeEncodeError:
        return (json.dumps(record) + "\n").encode("ascii")
