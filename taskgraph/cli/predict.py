"""``taskgraph predict RUN --task NAME --input FILE.jsonl [--out FILE]``: labels and probabilities."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from taskgraph.atomic import write_text
from taskgraph.errors import DataError


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("predict", help="classify texts with a trained run")
    p.add_argument("run_dir", metavar="RUN", help="a run directory or a saved model folder")
    p.add_argument("--task", required=True, help="the task to predict")
    p.add_argument("--input", required=True, help="JSONL file, one object per line with a text field")
    p.add_argument("--text-field", default="text", help="the field holding the text (default: text)")
    p.add_argument("--out", default=None, help="JSONL output (default: standard output)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.set_defaults(run=run)


def read_records(path: Path, field: str) -> list[dict[str, Any]]:
    """The JSONL records of ``path``; each must be an object with a string ``field``."""
    if not path.is_file():
        raise DataError(f"input {str(path)!r}: no such file")
    records: list[dict[str, Any]] = []
    with path.open("r", encoding="utf-8", errors="strict") as handle:
        try:
            lines = list(handle)
        except UnicodeDecodeError:
            raise DataError(f"input {str(path)!r}: not UTF-8 text") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"input {str(path)!r} line {number}: not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get(field), str):
            keys = sorted(record) if isinstance(record, dict) else type(record).__name__
            raise DataError(f"input {str(path)!r} line {number}: needs a string field {field!r} "
                            f"(found {keys}); choose the field with --text-field")
        records.append(record)
    if not records:
        raise DataError(f"input {str(path)!r}: no records")
    return records


def run(args: argparse.Namespace) -> int:
    from taskgraph.model import TaskGraphModel, predict  # torch + transformers: imported when needed
    from taskgraph.model.device import resolve_device
    from taskgraph.model.rundir import find_model_dir

    records = read_records(Path(args.input), args.text_field)
    device = resolve_device(args.device)
    model = TaskGraphModel.from_pretrained(find_model_dir(args.run_dir), device=device)
    results = predict(model, args.task, [r[args.text_field] for r in records], batch_size=args.batch_size)
    lines = [json.dumps({**record, **result}, ensure_ascii=False) for record, result in zip(records, results)]
    text = "\n".join(lines) + "\n"
    if args.out is None:
        sys.stdout.write(text)
    else:
        write_text(args.out, text)
        print(f"wrote {len(lines)} predictions for task {args.task!r} to {args.out}", file=sys.stderr)
    return 0
