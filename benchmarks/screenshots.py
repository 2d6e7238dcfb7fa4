"""The docs' screenshots of the HTML view, made by headless Chromium from a run (or a synthetic graph), and a record of
what each run's picture shows.

    python -m benchmarks.screenshots runs/planted-graph docs/view-planted-graph.png --task planted-05
    python -m benchmarks.screenshots runs/real-text docs/view-real-text.png --task debate-party --compare debate-speaker
    python -m benchmarks.screenshots synthetic:1000 docs/view-synthetic-1000.png

Each exports the learned graph with :func:`taskgraph.export_graph` (``html``, into a temporary folder), opens it at
1400 x 900 with the panel of ``--task`` open (and ``--compare`` beside it), and saves the PNG. For a run it also
writes ``benchmarks/results/screenshot-<png name>.json``: the run's validation accuracy, the span of its learned
relation weights, the relation AUROC against the tasks' ground truth (``evaluate_run`` on the test split) and where
the opened tasks' routing puts its weight in the first adapted module — so the reading the guide gives beside the
picture (renderer ``screenshot-<png name>`` of :mod:`benchmarks.render`) is the picture's own, re-made with it.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from benchmarks.browser import screenshot
from benchmarks.record_io import RESULTS, provenance, write_record
from benchmarks.view import synthetic_run_graph
from taskgraph import TaskgraphError, evaluate_run, export_graph, run_graph
from taskgraph.cli import ExitParser, run_command

SYNTHETIC = "synthetic:"
WINDOW = (1400, 900)
PICTURES = ("view-planted-graph", "view-real-text")  # the run screenshots the guide reads (renderers of render.py)
RANKS_ABOVE_CHANCE = 0.10  # relation AUROC this far above random R's: the weights rank the true relations first


class ScreenshotError(TaskgraphError):
    """A task to open that the run does not have."""


def picture_facts(run: str | Path, graph: Any, tasks: Sequence[str]) -> dict[str, Any]:
    """What the picture of ``run`` (its learned graph: ``run_graph(run)``) shows, computed from the run: its router,
    task count and validation accuracy, the span of the learned relation weights, the relation AUROCs of
    ``taskgraph eval`` (test split) and, for each task of ``tasks``, the skill its routing weighs most in the first
    adapted module."""
    names = {n: d.get("label", n) for n, d in graph.nodes(data=True) if d.get("type") == "task"}
    unknown = [t for t in tasks if t not in names.values()]
    if unknown:
        raise ScreenshotError(f"{run}: no task {', '.join(map(repr, unknown))}; its tasks are {sorted(names.values())}")
    weights = [d["weight"] for _, _, d in graph.edges(data=True) if d.get("type") == "relates"]
    trained = json.loads((Path(run) / "train.json").read_text(encoding="utf-8"))
    result = evaluate_run(run, "test", timing=False, alignment=False)
    auroc = (result.get("relations") or {}).get("auroc") or {}
    module = next(d["module"] for _, d in graph.nodes(data=True) if d.get("type") == "layer" and d["position"] == 0)
    return {
        "router": graph.graph["router"],
        "tasks": len(names),
        "steps": trained["steps"],
        "val_mean": trained["final_val"]["mean_acc"],
        "relations": {"min": min(weights), "max": max(weights), "pairs": len(weights)} if weights else None,
        "auroc": {
            "truth": result.get("ground_truth"),
            **{key: auroc.get(key) for key in ("learned", "routing_cosine", "random")},
        }
        if auroc
        else None,
        "opened": [_first_module_routing(graph, names, task, module) for task in tasks],
    }


def _first_module_routing(graph: Any, names: Mapping[str, str], task: str, module: str) -> dict[str, Any]:
    """``{"task", "module", "skill", "weight"}``: the skill ``task``'s routing weighs most in the first module."""
    node = next(n for n, label in names.items() if label == task)
    uses = [
        (d["weight"], graph.nodes[other]) for other, d in graph[node].items() if d.get("type") == "uses"
    ]  # this task's routing weights, every module
    weight, adapter = max((w, a) for w, a in uses if a.get("layer") == 0)
    return {"task": task, "module": module, "skill": adapter["skill"], "weight": weight}


def picture_block(record: Mapping[str, Any], name: str) -> str:
    """The reading of a run's picture, computed from its record ``name``."""
    f = record["facts"]
    parts = [
        f"the run's {f['router']} router over {f['tasks']} tasks, {f['steps']} steps, validation accuracy "
        f"{f['val_mean']:.2f}"
    ]
    rel, auroc = f.get("relations"), f.get("auroc")
    if rel:
        parts.append(f"its learned relation weights R span {rel['min']:.2f}–{rel['max']:.2f} over {rel['pairs']} pairs")
    if auroc and auroc.get("learned") is not None:
        truth = auroc["truth"] or "true"
        lines = [
            f"{label} {auroc[key]:.2f}"
            for key, label in (("learned", "learned R"), ("routing_cosine", "routing cosine"), ("random", "random R"))
            if auroc.get(key) is not None
        ]
        parts.append(
            f"relation AUROC against the {truth} relations (`taskgraph eval`, test split): " + ", ".join(lines)
        )
        parts.append(_reading("R", auroc["learned"], auroc["random"], truth))
        if auroc.get("routing_cosine") is not None:
            parts.append(_reading("the routing", auroc["routing_cosine"], auroc["random"], truth))
    for o in f["opened"]:
        parts.append(f"{o['task']} puts {o['weight']:.2f} of `{o['module']}`'s routing on skill {o['skill']}")
    return (
        "What the picture shows, computed from its run: " + "; ".join(parts) + ". Recorded with the picture by "
        f"`{record['command']}` on {record['date']} (`benchmarks/results/{name}.json`).\n"
    )


def _reading(what: str, auroc: float, random: float, truth: str) -> str:
    if auroc - random >= RANKS_ABOVE_CHANCE:
        return f"{what} ranks the {truth} relations above chance"
    return f"{what} does not recover the {truth} relations (within {RANKS_ABOVE_CHANCE:.2f} of random R)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = ExitParser(prog="python -m benchmarks.screenshots", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="a run folder, or synthetic:T for a synthetic learned graph of T tasks")
    parser.add_argument("png", type=Path, help="the screenshot to write")
    parser.add_argument("--task", default=None, help="open this task's panel")
    parser.add_argument("--compare", default=None, help="and put this task beside it")
    parser.add_argument("--results", type=Path, default=RESULTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    return run_command(
        lambda: _make(args, argv if argv is not None else sys.argv[1:]),
        bug="python -m benchmarks.screenshots hit an internal error (exit 1)",
    )


def _make(args: Any, argv: Sequence[str]) -> int:
    """The picture and, for a run, its record: the facts first, so a bad task name or a broken run writes neither."""
    synthetic = args.source.startswith(SYNTHETIC)
    graph = synthetic_run_graph(int(args.source[len(SYNTHETIC) :])) if synthetic else run_graph(args.source)
    opened = [t for t in (args.task, args.compare) if t]
    facts = None if synthetic else picture_facts(args.source, graph, opened)
    fragment = urlencode([(key, value) for key, value in (("task", args.task), ("compare", args.compare)) if value])
    with tempfile.TemporaryDirectory() as tmp:
        page = export_graph(graph, "html", Path(tmp) / "view.html")
        screenshot(page, args.png, fragment=fragment, window=WINDOW)
    print(f"wrote {args.png}", file=sys.stderr)
    if facts is None:
        return 0
    record = {
        "picture": str(args.png),
        "command": "python -m benchmarks.screenshots " + shlex.join(argv),
        "facts": facts,
        **provenance(),
    }
    print(f"wrote {write_record(args.results, f'screenshot-{args.png.stem}', record)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
