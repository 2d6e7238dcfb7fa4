"""``taskgraph predict RUN --task NAME | --task-field FIELD --input FILE.jsonl | --input - | --text TEXT ... [--out FILE]
[--batch-size N]``: labels and probabilities; for a generative task the completion, or the chosen choice.

The records come from a JSONL file (``--input FILE``), from standard input (``--input -``: the same JSONL,
piped) or from the command line (``--text "a fine film" --text "a dull one"``: one record ``{"text": ...}`` per
``--text``, every one of the ``--task``).

A classifier's record gets ``label`` (the index), ``label_name`` (when the task lists its label names) and
``probs``; a ``choices`` task's gets ``label``, ``label_name`` (the chosen choice) and ``scores``, and, for a
deprecation period, the same text under its former name ``choice``.

A generative task's record is its prompt: the task's template rendered with the record's fields (a template
``"what is {a} plus {b} ?"`` reads the fields ``a`` and ``b``), or its text field without a template. Its output
is ``{"completion", "stopped"}`` (greedy routed generation; mixed tasks share generate calls), or for a
``choices`` task ``{"label", "label_name", "scores"}`` (rank classification): :mod:`taskgraph.model.predict_text`.

``--task`` classifies every record with one task; ``--task-field`` reads each record's task from that field, and the
records of many tasks then share batches (mixed-task batches: each example routed by its own task, one forward
pass per batch, no per-task model or fold).

The input is read like a JSONL data file (:func:`taskgraph.data.read_jsonl`: UTF-8, a byte-order mark
allowed, one object per line, blank lines skipped). Texts are tokenised in large chunks and run in batches
of similar length; each chunk's predictions are written as soon as they are known (to a temp file renamed
at the end with ``--out``, so an interrupted run leaves no half-written output). The rate goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping
from typing import Any, BinaryIO

from taskgraph.cli.argtypes import positive_int
from taskgraph.cli.threads import add_threads_option, apply_threads
from taskgraph.errors import DataError
from taskgraph.files import check_file, check_text
from taskgraph.run_folder import check_output_file

STDIN = "<stdin>"  # how messages name records piped in with --input -
Row = tuple[dict[str, Any], str]  # a record and where it is ("input 'x.jsonl' line 3", "--text 2")


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("predict", help="classify texts, or complete prompts of generative tasks, with a trained run")
    p.add_argument("run_dir", metavar="RUN", help="a run directory or a saved model folder")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--task", help="the task of every record")
    which.add_argument(
        "--task-field",
        metavar="FIELD",
        help="the field holding each record's task (records of many tasks share batches)",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--input",
        metavar="FILE|-",
        help="JSONL records, one object per line with a text field; - reads them from standard input",
    )
    source.add_argument(
        "--text",
        dest="texts",
        action="append",
        metavar="TEXT",
        help="a text to classify (a prompt for a generative task); repeat for more; with --task",
    )
    p.add_argument("--text-field", default="text", help="the field holding the text (default: text)")
    p.add_argument("--out", default=None, help="JSONL output (default: standard output)")
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=256,
        help="texts per forward pass, prompts per generate call (default: 256)",
    )
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    add_threads_option(p)
    p.set_defaults(run=run)


def input_rows(args: argparse.Namespace) -> tuple[list[Row], str]:
    """The records to predict, each with where it is, and the name of their source: ``--text`` values,
    standard input (``--input -``) or a JSONL file."""
    if args.texts is not None:
        return [({args.text_field: text}, f"--text {n}") for n, text in enumerate(args.texts, start=1)], "--text"
    if args.input == "-":
        from taskgraph.data import parse_jsonl

        return _placed(parse_jsonl(sys.stdin.buffer.read(), STDIN), STDIN), f"input {STDIN!r}"
    from taskgraph.data import read_jsonl

    rows = read_jsonl(check_file(args.input, "input", DataError))
    return _placed(rows, args.input), f"input {args.input!r}"


def _placed(rows: list[Row], name: str) -> list[Row]:
    """Rows whose place (``line 3``) names their source too (``input 'x.jsonl' line 3``)."""
    return [(record, f"input {name!r} {where}") for record, where in rows]


def check_records(
    rows: list[Row],
    source: str,
    field: str,
    task_field: str | None = None,
    tasks: list[str] | None = None,
    templates: Mapping[str, str] | None = None,
    task: str | None = None,
) -> list[dict[str, Any]]:
    """The records of ``rows``; each must be an object with a string ``field`` of valid Unicode and, with
    ``task_field``, a string ``task_field`` naming one of ``tasks``; ``source`` names them when there are none.

    A record of a generative task with a template (``templates``: task name -> template; the record's task is
    ``task``, or its ``task_field``) needs the template's fields instead of ``field``: :func:`record_texts`
    renders them."""
    for record, where in rows:
        if task_field is not None and (
            not isinstance(record.get(task_field), str) or (tasks is not None and record[task_field] not in tasks)
        ):
            found = f"found {record[task_field]!r}" if task_field in record else f"it has only {sorted(record)}"
            raise DataError(
                f"{where}: field {task_field!r} (--task-field) must name a task of the model, {found}; "
                f"its tasks are {tasks}"
            )
        own = record.get(task_field) if task_field is not None else task
        if templates and isinstance(own, str) and own in templates:
            _render(templates[own], record, field, where)
            text = ""
        else:
            text = record.get(field)
        if not isinstance(text, str):
            raise DataError(
                f"{where}: needs a string field {field!r} (found {sorted(record)}); choose the field with --text-field"
            )
        check_text(text, f"{where}, field {field!r}", DataError)
    if not rows:
        raise DataError(f"{source}: no records")
    return [record for record, _ in rows]


def _render(template: str, record: dict[str, Any], field: str, where: str) -> str:
    """A record's prompt from its task's template (DataError naming the record for a missing or bad field)."""
    from taskgraph.data import Text2Text

    text = Text2Text(template).input_of(record, field, where)
    check_text(text, f"{where}, the rendered template", DataError)
    return text


def record_texts(
    records: list[dict[str, Any]], field: str, tasks: list[str], templates: Mapping[str, str], source: str
) -> list[str]:
    """Every record's input: its task's template rendered with its fields, or its ``field``."""
    return [
        _render(templates[t], r, field, f"{source} record {n + 1}") if t in templates else r[field]
        for n, (r, t) in enumerate(zip(records, tasks))
    ]


def run(args: argparse.Namespace) -> int:
    apply_threads(args)
    from taskgraph.model import (  # torch + transformers: imported when needed
        TaskGraphModel,
        find_model_dir,
        iter_predictions,
        resolve_device,
    )

    if args.texts is not None and args.task_field is not None:
        raise DataError("--text gives texts of one task: give it with --task NAME, not --task-field")
    if args.out is not None:
        files = [args.input] if args.input not in (None, "-") else []
        check_output_file(args.out, sources=[*files, args.run_dir])
    device = resolve_device(args.device)
    model = TaskGraphModel.from_pretrained(find_model_dir(args.run_dir), device=device)
    if args.task is not None:
        model.task_index(args.task)  # an unknown task fails before any output is opened
    templates = {t.name: t.template for t in model.spec.tasks if t.generative and t.template is not None}
    rows, source = input_rows(args)
    records = check_records(
        rows, source, args.text_field, args.task_field, model.task_names, templates, args.task
    )  # every record's task and input known before any output is opened
    if args.task_field is None:
        task: Any = args.task
        what = f"task {args.task!r}"
    else:
        task = [r[args.task_field] for r in records]
        what = f"{len(set(task))} task(s) in mixed batches"
    start = time.perf_counter()
    tasks = [args.task] * len(records) if args.task_field is None else task
    texts = record_texts(records, args.text_field, tasks, templates, source)
    if args.out is None:
        _write(sys.stdout.buffer, records, iter_predictions(model, task, texts, args.batch_size))
        sys.stdout.flush()
    else:
        from taskgraph.atomic import atomic_open

        with atomic_open(args.out) as handle:
            _write(handle, records, iter_predictions(model, task, texts, args.batch_size))
    seconds = time.perf_counter() - start
    where = "standard output" if args.out is None else args.out
    print(
        f"wrote {len(records)} predictions for {what} to {where} in {seconds:.1f} s "
        f"({len(records) / max(seconds, 1e-9):,.0f} examples/s)",
        file=sys.stderr,
    )
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
