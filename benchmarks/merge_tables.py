"""``python -m benchmarks merge`` results as committed records and Markdown blocks (pure functions over JSON).

    python -m benchmarks.merge_tables runs/merge-bench/planted/merge.json --name merge-planted \
        --command "python -m benchmarks merge ..." --png docs/merge-planted.png

keeps a suite's ``merge.json`` (every figure the bench computed: single-task and heads-only accuracy, the merge
table, the paired differences, the trained-together rows, the values chosen on validation, the targets, the time
and the machine) in ``benchmarks/results/<name>.json`` with the command and the date, and draws the plot from the
record; :func:`merge_block` renders it for :mod:`benchmarks.render`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.merging.report import plot_normalised, render
from benchmarks.record_io import read_bench_result, record_parser, write_record
from taskgraph.cli import run_command

ABOVE_ONE = ", above 1: trained together, the tasks beat their own single-task runs"
NEEDS = ("suite", "seeds", "sizes", "single", "rows", "paired", "together", "targets", "environment")


def reduce_merge(result: Mapping[str, Any], command: str) -> dict[str, Any]:
    """The record of one suite's ``merge.json``: everything but the plot's path on the machine that ran it."""
    kept = {k: v for k, v in result.items() if k != "plots"}
    return {"command": command, "date": dt.date.today().isoformat(), **kept}


def _best(rows: Sequence[Mapping[str, Any]], key: str) -> Mapping[str, Any]:
    return max(rows, key=lambda r: r[key][0] if r[key][0] is not None else float("-inf"))


def summary_lines(record: Mapping[str, Any]) -> list[str]:
    """What the figures say at the largest T, in numbers read off the record (means over seeds)."""
    size = max(record["sizes"])
    at = [r for r in record["rows"] if r["size"] == size]
    lora, llora = _best(at, "lora_normalised"), _best(at, "llora_normalised")
    single = record["single"]
    together = [r for r in record["together"] if r["size"] == size and r["kind"] == "trained together"]
    lines = [
        f"At T = {size}, the best merge of single-task LoRA runs ({lora['method']}) keeps "
        f"{lora['lora_normalised'][0]:.3f} of their single-task accuracy ({lora['lora_absolute'][0]:.3f} absolute, "
        f"against {single['lora']['mean'][0]:.3f} alone and {single['lora']['heads_only'][0]:.3f} for the heads on "
        f"the bare base) and {lora['lora_gain'][0]:.3f} of what the adapters added; the best merge of L-LoRA runs "
        f"({llora['method']}) keeps {llora['llora_normalised'][0]:.3f} ({llora['llora_absolute'][0]:.3f} absolute, "
        f"against {single['llora']['mean'][0]:.3f} alone)."
    ]
    if together:
        best = _best(together, "normalised")
        lines.append(
            f"Trained together at the same total budget, {best['name']} reaches {best['absolute'][0]:.3f} "
            f"({best['normalised'][0]:.3f} of the single-task LoRA runs"
            + (ABOVE_ONE if best["normalised"][0] > 1 else "")
            + "): "
            + ", ".join(f"{r['name']} {r['absolute'][0]:.3f}" for r in together)
            + f" against {lora['lora_absolute'][0]:.3f} for the best LoRA merge."
        )
    return lines


def merge_block(record: Mapping[str, Any], name: str) -> str:
    """A suite's block: the command and machine, the bench's own report (its sections two levels down), a summary."""
    env = record.get("environment", {})
    head = (
        f"`{record['command']}` (record: `benchmarks/results/{name}.json`); measured {record['date']}, torch "
        f"{env.get('torch', '?')}, on {env.get('cpus_usable', '?')} usable CPUs (the machine's load: under Time)."
    )
    body = render(record).rstrip("\n").split("\n")
    body = ["##" + line if line.startswith("## ") else line for line in body if not line.startswith("# ")]
    return "\n".join([head, *body, "", " ".join(summary_lines(record))]).replace("\n\n\n", "\n\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    return run_command(lambda: run(argv), bug="python -m benchmarks.merge_tables hit an internal error (exit 1)")


def run(argv: list[str] | None) -> int:
    p = record_parser(
        "python -m benchmarks.merge_tables",
        __doc__.split("\n")[0],
        "merge_json",
        "a suite's merge.json (OUT/<suite>/merge.json) or its --json",
    )
    p.add_argument("--png", type=Path, default=None, help="also draw the record's plot to this PNG")
    args = p.parse_args(argv)
    result = read_bench_result(args.merge_json, "merge", NEEDS)
    record = reduce_merge(result, args.command)
    out = write_record(args.results, args.name, record, indent=1)
    if args.png is not None:
        plot_normalised(record, args.png)
    print(f"wrote {out}" + (f" and {args.png}" if args.png else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
