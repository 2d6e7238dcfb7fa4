"""``taskgraph bench infer`` over several configurations, as one table: the record and its rendering.

    python -m benchmarks.infer_table --out benchmarks/results/infer-cpu.json RESULT.json ...

Each ``RESULT.json`` is one ``taskgraph bench infer --json`` run (one router, one T × texts); the record keeps them in
the order given, with the command that measured each.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.record_io import RecordError, read_record
from taskgraph.atomic import write_text
from taskgraph.cli import ExitParser, run_command

WAYS = ("mixed", "per-task", "fold", "prefolded")  # the bench's rows, in the table's order


def command(settings: Mapping[str, Any]) -> str:
    """The ``taskgraph bench infer`` command line of a result's settings."""
    return (
        f"taskgraph bench infer --router {settings['router']} --tasks {settings['tasks']} --texts {settings['texts']} "
        f"--rounds {settings['rounds']} --threads {settings['threads']}"
    )


def infer_record(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The record of several ``bench infer`` results."""
    return {"bench": "infer", "runs": [{"command": command(r["settings"]), **r} for r in results]}


def _range(values: Sequence[float]) -> str:
    low, high = min(values), max(values)
    return f"{low:.2f}" if f"{low:.2f}" == f"{high:.2f}" else f"{low:.2f}–{high:.2f}"


def infer_block(record: Mapping[str, Any]) -> str:
    """One column per configuration, one row per way of serving, each ``time × mixed [95 % CI]``; then the ranges
    over configurations the prose quotes."""
    runs = record["runs"]
    heads = [f"{r['settings']['router']}, T = {r['settings']['tasks']} × {r['settings']['texts']}" for r in runs]
    first = runs[0]["settings"]
    lines = [
        "Commands: " + "; ".join(f"`{r['command']}`" for r in runs) + f" (record: `benchmarks/results/infer-cpu.json`; "
        f"{first['model']} architecture, texts of {first['seq'] // 2}–{first['seq']} tokens, batch {first['batch']}, "
        f"{first['rounds']} counted rounds after {first['warmup']} warm-up, torch {runs[0]['environment']['torch']}).",
        "",
        "| time × routed mixed-task batches [95 % CI] | " + " | ".join(heads) + " |",
        "|---|" + "---:|" * len(runs),
    ]
    for way in WAYS:
        cells = []
        for r in runs:
            row = r["rows"][way]
            if way == "mixed":
                cells.append(f"1.000 ({row['median_s'] * 1e3:,.0f} ms, {row['examples_per_s']:,.0f} ex/s)")
            else:
                t = row["time_vs_mixed"]
                cells.append(f"{t['median']:.3f} [{t['low']:.3f}, {t['high']:.3f}]")
        lines.append(f"| {runs[0]['rows'][way]['label']} | " + " | ".join(cells) + " |")

    def ratios(way: str) -> list[float]:
        return [r["rows"][way]["time_vs_mixed"]["median"] for r in runs]

    adapters = [r["rows"]["per-task"]["median_s"] / r["rows"]["prefolded"]["median_s"] for r in runs]
    lines += [
        "",
        f"Over these configurations, serving the texts one task at a time through the same routed model takes "
        f"{_range(ratios('per-task'))} × the mixed-task batches; folding each task first {_range(ratios('fold'))} ×; "
        f"T plain models with the updates folded in beforehand {_range(ratios('prefolded'))} ×. Routed per task ÷ "
        f"pre-folded (the same batches, the adapters' own cost): {_range(adapters)} ×.",
    ]
    loads = [r["environment"]["load_average"][0] for r in runs if r["environment"].get("load_average")]
    if loads:
        lines[-1] += (
            f" Machine load (1-minute average) at each run's end: {_range(loads)} (the bench's own 2 threads: 2)."
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    return run_command(lambda: run(argv), bug="python -m benchmarks.infer_table hit an internal error (exit 1)")


def run(argv: list[str] | None) -> int:
    p = ExitParser(prog="python -m benchmarks.infer_table", description=__doc__.split("\n")[0])
    p.add_argument("results", nargs="+", type=Path, help="taskgraph bench infer --json files")
    p.add_argument("--out", required=True, type=Path)
    args = p.parse_args(argv)
    results = []
    for path in args.results:
        result = read_record(path, "taskgraph bench infer --json result", ("settings", "rows", "environment"))
        if sorted(result["rows"]) != sorted(WAYS):
            raise RecordError(f"{path}: not a taskgraph bench infer result (rows {sorted(result['rows'])}, not {WAYS})")
        results.append(result)
    write_text(args.out, json.dumps(infer_record(results), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
