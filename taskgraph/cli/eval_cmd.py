"""``taskgraph eval RUN [--split val|test] [--json OUT] [--task NAME ...] [--no-timing] [--no-alignment]``.

Prints a table (per task: n, accuracy, macro-F1, active-adapter fraction, adapter FLOPs per token;
a free-text generative task's exact match, token F1 and ROUGE-L in their own columns, "-" where a task has no
such score; then the unweighted mean), then short sections: allocation precision beside random routing (planted
runs), relation AUROC of the learned R, the routing cosine, the gradient cosine and a random R
(when the tasks have a ground truth), the top learned relations, the gradient alignment between
tasks, and inference time with the gates as learned vs all adapters on. With ``--json OUT`` it
writes :func:`taskgraph.eval.evaluate_run`'s dict there atomically.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from taskgraph.atomic import write_text
from taskgraph.cli.argtypes import positive_int, rounds
from taskgraph.cli.threads import add_threads_option
from taskgraph.run_folder import check_output_file

COLUMNS = (
    ("n", "n", "{:d}"),
    ("accuracy", "accuracy", "{:.4f}"),
    ("macro_f1", "macro-F1", "{:.4f}"),
    ("exact_match", "exact", "{:.4f}"),
    ("token_f1", "token-F1", "{:.4f}"),
    ("rouge_l", "ROUGE-L", "{:.4f}"),
    ("active_adapter_fraction", "active", "{:.3f}"),
    ("adapter_flops_per_token", "FLOPs/token", "{:,.0f}"),
)
GENERATIVE_COLUMNS = ("exact_match", "token_f1", "rouge_l")  # shown when a task has them (a free-text task)
TOP_RELATIONS = 10
TIMING_ROUNDS = 5  # = taskgraph.eval.TIMING_ROUNDS (not imported: the CLI loads torch only when it runs)
AUROC_ROWS = (
    ("learned", "learned R"),
    ("routing_cosine", "routing cosine"),
    ("gradient_cosine", "gradient cosine"),
    ("random", "random R"),
)


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("eval", help="accuracy, macro-F1, adapter compute and learned structure of a trained run")
    p.add_argument("run_dir", metavar="RUN", help="a run directory (taskgraph train --out RUN) or a model folder")
    p.add_argument("--split", default="test", choices=["val", "test"], help="the data split (default: test)")
    p.add_argument("--json", dest="json_out", default=None, metavar="OUT", help="also write the results as JSON")
    p.add_argument(
        "--which",
        default="model",
        choices=["model", "best"],
        help="the final model or the best-validation one (default: model)",
    )
    p.add_argument("--batch-size", type=positive_int, default=64, metavar="N", help="examples per forward pass")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where to run (default: cpu)")
    p.add_argument(
        "--task",
        dest="tasks",
        action="append",
        default=None,
        metavar="NAME",
        help="score only this task (repeatable; relations and allocation still cover every task)",
    )
    p.add_argument(
        "--no-timing",
        dest="timing",
        action="store_false",
        help="skip timing inference with the gates as learned vs all adapters on",
    )
    p.add_argument(
        "--no-alignment",
        dest="alignment",
        action="store_false",
        help="skip the gradient alignment between tasks (and the gradient-cosine AUROC)",
    )
    p.add_argument(
        "--timing-rounds",
        type=rounds,
        default=TIMING_ROUNDS,
        metavar="N",
        help=f"timed rounds of each mode (default: {TIMING_ROUNDS})",
    )
    add_threads_option(p)
    p.set_defaults(run=run)


def format_table(result: dict[str, Any]) -> str:
    """The terminal table of an :func:`~taskgraph.eval.evaluate_run` result."""
    rows = [(name, scores) for name, scores in result["tasks"].items()] + [("mean", result["mean"])]
    columns = [c for c in COLUMNS if c[0] not in GENERATIVE_COLUMNS or any(c[0] in s for _, s in rows)]
    width = max(len("task"), *(len(name) for name, _ in rows))
    cells = [[fmt.format(scores[key]) if key in scores else "-" for key, _, fmt in columns] for _, scores in rows]
    widths = [max(len(title), *(len(row[i]) for row in cells)) for i, (_, title, _) in enumerate(columns)]
    header = f"{'task':<{width}}  " + "  ".join(f"{title:>{w}}" for (_, title, _), w in zip(columns, widths))
    lines = [header]
    for (name, _), row in zip(rows, cells):
        lines.append(f"{name:<{width}}  " + "  ".join(f"{cell:>{w}}" for cell, w in zip(row, widths)))
    lines.insert(len(lines) - 1, "-" * len(header))
    title = (
        f"{result['run']} ({result['which']}), split {result['split']}, router {result['router']}, "
        f"{result['layers']} adapted layers"
    )
    return title + "\n" + "\n".join(lines)


def _num(value: float | None, fmt: str = "{:.3f}") -> str:
    return "n/a" if value is None else fmt.format(value)


def format_allocation(result: dict[str, Any]) -> str:
    """Allocation precision beside random routing, with the per-(layer, head) range."""
    alloc = result.get("allocation")
    if alloc is None:
        return "allocation precision: n/a (needs a planted run: every task a planted task of one universe)"
    if alloc["precision"] is None:
        return "allocation precision: n/a (fewer adapters per layer than planted skills)"
    flat = [p for row in alloc["per_layer_head"] for p in row]
    return (
        f"allocation precision: {alloc['precision']:.3f} (random routing {alloc['random']:.3f}); "
        f"per (layer, head) min {min(flat):.3f}, max {max(flat):.3f} over {len(flat)}"
    )


def format_relations(result: dict[str, Any]) -> str:
    """Relation AUROCs against the ground truth, then the top learned relations."""
    rel = result["relations"]
    truth = result.get("ground_truth")
    if truth is None:
        lines = ["relation AUROC: n/a (no ground truth: tasks are neither planted nor all given a family)"]
    else:
        lines = [f"relation AUROC vs {truth} truth ({rel['pairs']} undeclared pairs, {rel['positives']} related):"]
        width = max(len(title) for _, title in AUROC_ROWS)
        for key, title in AUROC_ROWS:
            value = rel["auroc"][key]
            why = "" if value is not None else _why_no_auroc(key, result)
            lines.append(f"  {title:<{width}}  {_num(value)}{why}")
    learned = rel.get("learned")
    if learned:
        shown = learned[:TOP_RELATIONS]
        lines.append(f"top learned relations ({len(shown)} of {len(learned)}):")
        width = max(len(f"{r['a']} – {r['b']}") for r in shown)
        for r in shown:
            mark = "  (declared)" if r.get("declared") else ""
            lines.append(f"  {r['a'] + ' – ' + r['b']:<{width}}  {r['weight']:.3f}{mark}")
    elif learned is None:
        lines.append(f"learned relations: none (router {result['router']} learns no relation matrix)")
    return "\n".join(lines)


def _why_no_auroc(key: str, result: dict[str, Any]) -> str:
    if key == "learned" and result["relations"].get("learned") is None:
        return f" (router {result['router']} learns no R)"
    if key == "gradient_cosine" and result.get("gradient_alignment") is None:
        return " (gradient alignment skipped)"
    return " (every undeclared pair is in one class)"


def format_alignment(result: dict[str, Any]) -> str:
    """Gradient alignment: mean cosine over related vs unrelated pairs (or over all pairs without truth)."""
    align = result.get("gradient_alignment")
    if align is None:
        return "gradient alignment: skipped"
    head = "gradient alignment (cosine of adapter gradients):"
    if align["mean_related"] is not None or align["mean_unrelated"] is not None:
        return (
            f"{head} related pairs {_num(align['mean_related'], '{:+.3f}')}, "
            f"unrelated pairs {_num(align['mean_unrelated'], '{:+.3f}')}"
        )
    return f"{head} mean over all pairs {_num(align.get('mean'), '{:+.3f}')}"


def format_timing(result: dict[str, Any]) -> str:
    """Inference time with the gates as learned vs all adapters on."""
    timing = result.get("timing")
    if timing is None:
        return "timing: skipped"
    return (
        f"timing (one batch per task, median of {timing['rounds']} rounds): gated {timing['gated_ms']:.2f} ms, "
        f"all adapters on {timing['all_open_ms']:.2f} ms, ratio {timing['ratio']:.3f}"
    )


def format_report(result: dict[str, Any]) -> str:
    """The table and every section, as ``taskgraph eval`` prints them."""
    parts = [
        format_table(result),
        format_allocation(result),
        format_relations(result),
        format_alignment(result),
        format_timing(result),
    ]
    parts += [f"note: {note}" for note in result.get("notes", [])]
    return "\n\n".join(parts)


def run(args: argparse.Namespace) -> int:
    from taskgraph.eval import evaluate_run  # torch + transformers: imported when needed

    if args.json_out is not None:
        check_output_file(args.json_out, what="--json", sources=[args.run_dir])  # before the work, not after
    result = evaluate_run(
        args.run_dir,
        split=args.split,
        which=args.which,
        device=args.device,
        batch_size=args.batch_size,
        tasks=args.tasks,
        timing=args.timing,
        alignment=args.alignment,
        timing_rounds=args.timing_rounds,
        threads=args.threads,
    )
    print(format_report(result))
    if args.json_out is not None:
        write_text(args.json_out, json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json_out}")
    return 0
