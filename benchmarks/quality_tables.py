"""``python -m benchmarks quality`` results as committed records and Markdown blocks (pure functions over JSON).

    python -m benchmarks.quality_tables runs/q/planted/quality.json --name quality-planted --command "python -m ..."

keeps of a suite's ``quality.json`` what the docs quote (budget, selection with its per-seed table, each router's
per-seed figures — per family too where the suite has families —, the paired differences, the held-out tasks'
adaptation figures, the targets the bench computed, environment) in ``benchmarks/results/<name>.json``;
:func:`quality_block` renders it for :mod:`benchmarks.render`. A ``real-gen`` result keeps its heads twin
(``OUT/real-gen-heads/quality.json``, read beside it) and the text-to-text − heads pairs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from benchmarks.quality.real_gen import HEADS, render_beside
from benchmarks.quality.report import lr_table
from benchmarks.record_io import read_bench_result, read_record, record_parser, write_record
from benchmarks.verdicts import interval, pm
from taskgraph.cli import run_command
from taskgraph.metrics import finite, mean_std

NEEDS = ("suite", "budget", "seeds", "selection", "chosen_lr", "routers", "paired", "targets")
ROUTER_KEYS = (
    *("router", "lr", "val_by_lr", "seeds", "errors", "trainable", "step_ms", "val", "test", "allocation"),
    "families",
)
HELD_OUT_KEYS = ("name", "num_labels", "family", "relate")  # not its data source: a path on the measuring machine


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
        "held_out": [{k: h.get(k) for k in HELD_OUT_KEYS} for h in result.get("held_out", [])],
        "few_shot": result.get("few_shot", []),
        "few_shot_paired": result.get("few_shot_paired", []),
    }


def _values(block: Mapping[str, Any] | None) -> list[float | None]:
    return list((block or {}).get("values") or [])


def _mean(values: Sequence[float | None] | None) -> str:
    xs = [v for v in (values or []) if v is not None]
    return f"{sum(xs) / len(xs):.3f}" if xs else "–"


def _test_mean(row: Mapping[str, Any]) -> float | None:
    """A router's test accuracy, mean over the seeds that have one (a failed cell's None left out)."""
    return mean_std(_values(row["test"]))[0]


def _has_allocation(row: Mapping[str, Any]) -> bool:
    return any(v is not None for v in _values((row.get("allocation") or {}).get("precision")))


def router_table(record: Mapping[str, Any]) -> list[str]:
    """One row per router at its chosen rate; a column per family where the suite has families, allocation precision
    where some router has it."""
    rows = record["routers"]
    families = sorted({f for r in rows for f in (r.get("families") or {})})
    allocation = any(_has_allocation(r) for r in rows)
    head = ["router", "lr", "trainable (adapters + router)", "test accuracy", "min – max"]
    head += [f"test: {f}" for f in families]
    head += ["allocation precision (random)"] * allocation + ["relation AUROC: learned / routing-cosine / random"]
    lines = ["| " + " | ".join(head) + " |", "|---|---|---:|" + "---|" * (len(head) - 3)]
    best = max(m for r in rows if (m := _test_mean(r)) is not None)
    for r in rows:
        test = finite(_values(r["test"]))
        acc = f"**{pm(test)}**" if _test_mean(r) == best else pm(test)
        trainable = r.get("trainable") or {}
        params = (trainable.get("adapters") or 0) + (trainable.get("router") or 0)
        cells = [r["router"], f"{r['lr']:g}", f"{params:,}", acc, f"{min(test):.3f} – {max(test):.3f}"]
        cells += [pm(_values((r.get("families") or {}).get(f))) for f in families]
        if allocation:
            alloc = r.get("allocation") or {}
            cells.append(
                f"{pm(_values(alloc.get('precision')))} ({_mean(_values(alloc.get('random')))})"
                if _has_allocation(r)
                else "–"
            )
        rel = r.get("relations") or {}
        cells.append(" / ".join(_mean(rel.get(k)) for k in ("learned", "routing_cosine", "random")))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def paired_lines(pairs: Sequence[Mapping[str, Any]], head: str = "test accuracy, paired by seed") -> list[str]:
    """The paired differences ``pairs`` (the bench's dicts; a ``shots`` key names the adaptation's shots)."""
    lines = [f"| comparison ({head}) | mean difference [95 % CI] | seeds | verdict |", "|---|---|---:|---|"]
    for p in pairs:
        verdict = {"no difference": "tie"}.get(p["verdict"], p["verdict"])
        shots = f", {p['shots']} shots" if "shots" in p else ""
        lines.append(
            f"| {p['a']} − {p['b']}{shots} | {interval(p['mean'], p['ci_low'], p['ci_high'])} | {len(p['seeds'])} | "
            f"{verdict} |"
        )
    return lines


def held_out_lines(record: Mapping[str, Any]) -> list[str]:
    """The held-out tasks' adaptation: a row per shot count, a column per (router, mode); then the paired modes."""
    rows = record.get("few_shot") or []
    if not rows:
        return []
    columns = list(dict.fromkeys((r["router"], r["mode"]) for r in rows))
    cell = {(r["router"], r["mode"], r["shots"]): r for r in rows}
    tasks = ", ".join(f"`{h['name']}` ({h['num_labels']} classes)" for h in record.get("held_out", []))
    lines = [
        f"Held-out tasks ({tasks}): mean test accuracy after {record['budget']['adapt_steps']} adaptation steps on "
        f"the shots, the head fitted on the same shots in every mode; zero-shot routes a task from {_relate(record)} "
        "with no gradient step; mean ± std over seeds.",
        "",
        "| shots | " + " | ".join(f"{router} {mode}" for router, mode in columns) + " |",
        "|---:|" + "---|" * len(columns),
    ]
    for shots in sorted({r["shots"] for r in rows}):
        found = [cell.get((router, mode, shots)) for router, mode in columns]
        lines.append(f"| {shots} | " + " | ".join(pm(_values(c)) if c else "–" for c in found) + " |")
    failed = [f"{r['router']} {r['mode']} {r['shots']}: {e[:120]}" for r in rows for e in r.get("errors") or []]
    if failed:
        lines += ["", "Failed adaptation cells: " + "; ".join(failed)]
    if record.get("few_shot_paired"):
        lines += ["", *paired_lines(record["few_shot_paired"], "held-out test accuracy, paired by seed")]
    return lines


def _relate(record: Mapping[str, Any]) -> str:
    """What the suite relates a held-out task to for zero-shot routing, as its note says (e.g. "every seen task of
    the held-out task's family, weight 1"); a generic phrase where no note says."""
    prefix = "graph zero-shot relations: "
    said = [n.removeprefix(prefix) for n in record.get("notes", []) if n.startswith(prefix)]
    return f"its relations to seen tasks ({said[0]})" if said else "its given relations to seen tasks"


def target_lines(record: Mapping[str, Any]) -> list[str]:
    lines = ["| pre-declared target | rule | measured | verdict |", "|---|---|---|---|"]
    for t in record["targets"]:
        if t.get("met") is None:
            continue  # not run in this record (adaptation, the ceiling)
        figure = "–" if t.get("figure") is None else f"{t['figure']:.3f}"
        lines.append(f"| {t['name']} | {t['rule']} | {figure} ({t['detail']}) | {'met' if t['met'] else 'missed'} |")
    return lines


def summary_line(record: Mapping[str, Any]) -> str:
    """What the router table says, in figures read off the record: the spread of the routers' means and how many of
    graph's paired differences exclude 0."""
    means = {r["router"]: m for r in record["routers"] if (m := _test_mean(r)) is not None}
    low, high = min(means.values()), max(means.values())
    graph = [p for p in record["paired"] if "graph" in (p["a"], p["b"])]
    decided = [f"{p['a']} − {p['b']} ({p['verdict']})" for p in graph if p["verdict"] in ("win", "loss")]
    return (
        f"The routers' test means span {low:.3f} ({min(means, key=means.get)}) to {high:.3f} "
        f"({max(means, key=means.get)}), {100 * (high - low):.1f} points; of graph's {len(graph)} paired "
        f"differences, {len(decided)} exclude 0" + (": " + ", ".join(decided) if decided else "") + "."
    )


def beside_line(rows: Sequence[Mapping[str, Any]]) -> str:
    """What the text-to-text − heads column says, read off the record: how many routers' intervals lie below 0 or
    above it, and the span of the differences."""
    diffs = {r["router"]: r["generate_minus_heads"] for r in rows if r["generate_minus_heads"].get("mean") is not None}
    below = [r for r, d in diffs.items() if d["ci_high"] is not None and d["ci_high"] < 0]
    above = [r for r, d in diffs.items() if d["ci_low"] is not None and d["ci_low"] > 0]
    means = [d["mean"] for d in diffs.values()]
    return (
        f"Text-to-text − heads: the interval lies below 0 for {len(below)} of {len(diffs)} routers and above it for "
        f"{len(above)}; the differences span {min(means):+.3f} to {max(means):+.3f}."
    )


def _head(record: Mapping[str, Any], name: str) -> str:
    b, sel = record["budget"], record["selection"]
    env = record.get("environment", {})
    compute = (record.get("timing") or {}).get("compute_s")
    seeds = ", ".join(str(k) for k in sel["seeds"])
    rate = (
        f"adapters + heads rate {float(b['lrs'][0]):g} for every router (a one-rate grid: nothing chosen)"
        if len(b["lrs"]) == 1
        else f"each router's adapters + heads rate chosen from {[float(x) for x in b['lrs']]} on the mean validation "
        f"accuracy over seeds {seeds} (each seed in the selection table; those seeds are reported too)"
    )
    return (
        f"`{record['command']}` — {b['steps']} steps × batch {b['batch_size']}"
        + (f", max length {b['max_length']}" if b.get("max_length") else "")
        + (f", at most {b['train_examples']} training rows per task" if b.get("train_examples") else "")
        + f"; {rate}; {record['seeds']} seeds "
        "reported; test accuracy mean ± sample std; paired Student-t 95 % intervals (a win "
        f"only where the interval excludes 0). Measured {record['date']}, torch {env.get('torch', '?')}, "
        f"{env.get('threads', '?')} thread{'' if env.get('threads') == 1 else 's'}"
        + ("" if compute is None else f", {compute / 60:.0f} min of compute over its cells")
        + f". Record: `benchmarks/results/{name}.json`."
    )


def quality_block(record: Mapping[str, Any], name: str) -> str:
    """A suite's block: how it was run, the router table, graph's paired differences, the lr selection, the held-out
    tasks where the suite adapted any, the targets, a summary (``name``: the record's file name,
    ``benchmarks/results/<name>.json``). A real-gen record leads with its text-to-text − heads table."""
    lines = [_head(record, name), ""]
    if record.get("beside"):
        beside = render_beside(record["beside"]).rstrip("\n").split("\n")
        lines += [
            "The same tasks as text-to-text (rank classification) and with classification heads, paired by router "
            "and seed (text-to-text / heads per family; heads rate chosen the same way):",
            *[line for line in beside if not line.startswith("# ")],
            "",
            beside_line(record["beside"]),
            "",
            "The text-to-text routers:",
            "",
        ]
    graph_pairs = [p for p in record["paired"] if "graph" in (p["a"], p["b"])]
    lines += [*router_table(record), "", *paired_lines(graph_pairs), ""]
    what = "Learning-rate selection" if len(record["budget"]["lrs"]) > 1 else "Validation"
    lines += [f"{what} (validation accuracy: mean over the selection seeds, each seed in brackets):"]
    lines += ["", *lr_table(record["routers"])]
    if record.get("heads"):
        lines += ["", "Heads twin:", "", *lr_table(record["heads"]["routers"])]
    held_out = held_out_lines(record)
    lines += ["", *held_out, ""] if held_out else [""]
    lines += [*target_lines(record), "", summary_line(record)]
    return "\n".join(lines).replace("\n\n\n", "\n\n") + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(lambda: run(argv), bug="python -m benchmarks.quality_tables hit an internal error (exit 1)")


def run(argv: Sequence[str] | None) -> int:
    parser = record_parser(
        "python -m benchmarks.quality_tables",
        __doc__.split("\n\n")[0],
        "quality_json",
        "a suite's quality.json (OUT/<suite>/quality.json)",
    )
    args = parser.parse_args(argv)
    result = read_bench_result(args.quality_json, "quality", NEEDS)
    record = reduce_quality(result, args.command)
    if "beside" in result:  # real-gen: its heads twin ran into the sibling folder
        twin = args.quality_json.parent.parent / HEADS / "quality.json"
        record["beside"] = result["beside"]
        record["heads"] = reduce_quality(
            read_record(twin, "heads twin's quality result", ("bench", *NEEDS)), args.command
        )
    print(f"wrote {write_record(args.results, args.name, record)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
