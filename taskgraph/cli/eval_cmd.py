"""``taskgraph eval RUN [--split val|test] [--json OUT] [--which model|best] [--batch-size N] [--device cpu|cuda]``.

Prints a table (per task: n, accuracy, macro-F1, active-adapter fraction, adapter FLOPs per token;
then the unweighted mean) and, with ``--json OUT``, writes :func:`taskgraph.eval.evaluate_run`'s
dict there atomically.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from taskgraph.atomic import write_text
from taskgraph.cli.argtypes import positive_int

COLUMNS = (("n", "n", "{:d}"), ("accuracy", "accuracy", "{:.4f}"), ("macro_f1", "macro-F1", "{:.4f}"),
           ("active_adapter_fraction", "active", "{:.3f}"), ("adapter_flops_per_token", "FLOPs/token", "{:,.0f}"))


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("eval", help="accuracy, macro-F1 and adapter compute of a trained run on a split")
    p.add_argument("run_dir", metavar="RUN", help="a run directory (taskgraph train --out RUN) or a model folder")
    p.add_argument("--split", default="test", choices=["val", "test"], help="the data split (default: test)")
    p.add_argument("--json", dest="json_out", default=None, metavar="OUT", help="also write the results as JSON")
    p.add_argument("--which", default="model", choices=["model", "best"],
                   help="the final model or the best-validation one (default: model)")
    p.add_argument("--batch-size", type=positive_int, default=64, metavar="N", help="examples per forward pass")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where to run (default: cpu)")
    p.set_defaults(run=run)


def format_table(result: dict[str, Any]) -> str:
    """The terminal table of an :func:`~taskgraph.eval.evaluate_run` result."""
    rows = [(name, scores) for name, scores in result["tasks"].items()] + [("mean", result["mean"])]
    width = max(len("task"), *(len(name) for name, _ in rows))
    cells = [[fmt.format(scores[key]) for key, _, fmt in COLUMNS] for _, scores in rows]
    widths = [max(len(title), *(len(row[i]) for row in cells)) for i, (_, title, _) in enumerate(COLUMNS)]
    header = f"{'task':<{width}}  " + "  ".join(f"{title:>{w}}" for (_, title, _), w in zip(COLUMNS, widths))
    lines = [header]
    for (name, _), row in zip(rows, cells):
        lines.append(f"{name:<{width}}  " + "  ".join(f"{cell:>{w}}" for cell, w in zip(row, widths)))
    lines.insert(len(lines) - 1, "-" * len(header))
    title = (f"{result['run']} ({result['which']}), split {result['split']}, router {result['router']}, "
             f"{result['layers']} adapted layers")
    return title + "\n" + "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from taskgraph.eval import evaluate_run  # torch + transformers: imported when needed

    result = evaluate_run(args.run_dir, split=args.split, which=args.which, device=args.device,
                          batch_size=args.batch_size)
    print(format_table(result))
    if args.json_out is not None:
        write_text(args.json_out, json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json_out}")
    return 0
