"""``python -m benchmarks quality`` results as committed records and Markdown blocks (pure functions over JSON).

    python -m benchmarks.quality_tables runs/q/planted/quality.json --name quality-planted --command "taskgraph ..."

keeps of a suite's ``quality.json`` what the docs quote (budget, selection with its per-seed table, each router's
per-seed figures, the paired differences and the targets the bench computed, environment) in
``benchmarks/results/<name>.json``; :func:`planted_block` renders it for :mod:`benchmarks.render`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.quality.report import lr_table
from benchmarks.verdicts import interval, pm

ROUTER_KEYS = ("router", "lr", "val_by_lr", "seeds", "errors", "trainable", "step_ms", "val", "test", "allocation")


def reduce_quality(result: Mapping[str, Any], command: str) -> dict[str, Any]:
    """What the docs quote of one suite's ``quality.json``."""
    routers = []
    for row in result["routers"]:
        kept = {k: row.get(k) for k in ROUTER_KEYS}
        kept["relations"] = {k: (v or {}).get("values") for k, v in (row.get("relations") or {}).items()}
        routers.append(kept)
    return {
        "suite": result["suite"],
        "command": command,
        "date": dt.date.today().isoformat(),
        "budget": result["budget"],
        "seeds": result["seeds"],
        "selection": result["selection"],
        "chosen_lr": result["chosen_lr"],
        "routers": routers,
        "paired": result["paired"],
        "targets": result["targets"],
        "notes": result.get("notes", []),
        "environment": result.get("environment", {}),
        "timing": result.get("timing", {}).get("total", {}),
    }


def _values(block: Mapping[str, Any] | None) -> list[float | None]:
    return list((block or {}).get("values") or [])


def _mean(values: Sequence[float | None] | None) -> str:
    xs = [v for v in (values or []) if v is not None]
    return f"{sum(xs) / len(xs):.3f}" if xs else "–"


def router_table(record: Mapping[str, Any]) -> list[str]:
    lines = [
        "| router | lr | trainable (adapters + router) | test accuracy | min – max | allocation precision (random) "
        "| relation AUROC: learned / routing-cosine / random |",
        "|---|---|---:|---|---|---|---|",
    ]
    best = max((sum(_values(r["test"])) / len(_values(r["test"]))) for r in record["routers"] if _values(r["test"]))
    for r in record["routers"]:
        test = _values(r["test"])
        acc = pm(test)
        if test and abs(sum(test) / len(test) - best) < 1e-12:
            acc = f"**{acc}**"
        alloc = _values(r["allocation"].get("precision") if r.get("allocation") else None)
        rand = _values(r["allocation"].get("random") if r.get("allocation") else None)
        trainable = r.get("trainable") or {}
        params = (trainable.get("adapters") or 0) + (trainable.get("router") or 0)
        rel = r.get("relations") or {}
        lines.append(
            f"| {r['router']} | {r['lr']:g} | {params:,} | {acc} | "
            f"{min(test):.3f} – {max(test):.3f} | "
            + (f"{pm(alloc)} ({_mean(rand)})" if any(v is not None for v in alloc) else "–")
            + f" | {_mean(rel.get('learned'))} / {_mean(rel.get('routing_cosine'))} / {_mean(rel.get('random'))} |"
        )
    return lines


def paired_lines(record: Mapping[str, Any], a: str = "graph") -> list[str]:
    lines = ["| comparison (test accuracy, paired by seed) | mean difference [95 % CI] | seeds | verdict |"]
    lines.append("|---|---|---:|---|")
    for p in record["paired"]:
        if p["a"] != a and p["b"] != a:
            continue
        verdict = {"no difference": "tie"}.get(p["verdict"], p["verdict"])
        lines.append(
            f"| {p['a']} − {p['b']} | {interval(p['mean'], p['ci_low'], p['ci_high'])} | {len(p['seeds'])} | "
            f"{verdict} |"
        )
    return lines


def target_lines(record: Mapping[str, Any]) -> list[str]:
    lines = ["| pre-declared target | rule | measured | verdict |", "|---|---|---|---|"]
    for t in record["targets"]:
        if t.get("met") is None:
            continue  # not run in this record (adaptation, the ceiling)
        figure = "–" if t.get("figure") is None else f"{t['figure']:.3f}"
        lines.append(f"| {t['name']} | {t['rule']} | {figure} ({t['detail']}) | {'met' if t['met'] else 'missed'} |")
    return lines


def planted_block(record: Mapping[str, Any], name: str = "quality-planted") -> str:
    """A suite's block: how it was run, the router table, graph's paired differences, the lr selection, the targets
    (``name``: the record's file name, ``benchmarks/results/<name>.json``)."""
    b, sel = record["budget"], record["selection"]
    env = record.get("environment", {})
    compute = (record.get("timing") or {}).get("compute_s")
    lines = [
        f"`{record['command']}` — {b['steps']} steps × batch {b['batch_size']}; each router's adapters + heads rate "
        f"chosen from {[float(x) for x in b['lrs']]} on the mean validation accuracy over seeds "
        f"{', '.join(str(k) for k in sel['seeds'])} (each seed in the selection table; those seeds are reported too); "
        f"{record['seeds']} seeds reported; test accuracy mean ± sample std; paired Student-t 95 % intervals (a win "
        f"only where the interval excludes 0). Measured {record['date']}, torch {env.get('torch', '?')}, "
        f"{env.get('threads', '?')} thread"
        + ("" if compute is None else f", {compute / 60:.0f} min of compute over its cells")
        + f". Record: `benchmarks/results/{name}.json`.",
        "",
        *router_table(record),
        "",
        *paired_lines(record),
        "",
        "Learning-rate selection (validation accuracy: mean over the selection seeds, each seed in brackets):",
        "",
        *lr_table(record["routers"]),
        "",
        *target_lines(record),
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.quality_tables", description=__doc__.split("\n\n")[0])
    parser.add_argument("quality_json", help="a suite's quality.json (OUT/<suite>/quality.json)")
    parser.add_argument("--name", required=True, help="the record's name: benchmarks/results/<name>.json")
    parser.add_argument("--command", required=True, help="the command that produced it, as run")
    args = parser.parse_args(argv)
    record = reduce_quality(json.loads(Path(args.quality_json).read_text()), args.command)
    out = Path(__file__).resolve().parent / "results" / f"{args.name}.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
