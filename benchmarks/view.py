"""``python -m benchmarks view``: how fast the HTML view of the learned graph is ready as the number of tasks grows.

For each T (default 20, 200, 1,000) a synthetic learned graph is built (:func:`synthetic_run_graph`:
the shape :func:`taskgraph.report.run_graph` gives a graph-router run, with communities planted in the
relations and the routing), exported as HTML, and loaded ``repeats`` times in headless Chromium in real
time. *Time to interactive* is the page's own clock (milliseconds since navigation start) when the
script has drawn the map, the legend and the default relations and the browser has laid them out
(``data-ready-ms``); *painted* is the clock after the next frame (``data-painted-ms``; Chromium may dump
the page before that frame, so it is the median over the loads that recorded it). Figures are medians
over the loads; the export time and the file size are reported beside them. Target (reported, not
asserted): time to interactive ≤ 2,000 ms at T = 1,000.
"""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from benchmarks.browser import BrowserError, find_chromium, load
from taskgraph.export import export_graph
from taskgraph.graph import ADAPTER, LAYER, TASK, adapter_node, layer_node, task_node

TARGET_MS = 2000.0
TARGET_TASKS = 1000
TASKS_PER_COMMUNITY = 20
SAME_COMMUNITY, ACROSS = 6, 2  # candidate relations per task (as the graph router keeps k nearest for large T)


@dataclass(frozen=True)
class ViewTiming:
    """One T: the median time to interactive over ``loads`` page loads, and what was loaded."""

    tasks: int
    relations: int
    ready_ms: float
    ready_ms_all: list[float]
    painted_ms: float | None
    export_s: float
    html_bytes: int
    loads: int


def synthetic_run_graph(tasks: int, *, layers: int = 4, heads: int = 1, skills: int = 8, seed: int = 0) -> nx.Graph:
    """A learned graph of ``tasks`` tasks in communities of about :data:`TASKS_PER_COMMUNITY`.

    Each task has :data:`SAME_COMMUNITY` strong relations inside its community and :data:`ACROSS` weak ones
    outside; its community prefers two skills per module. Modules are BERT's query and value of
    ``layers / 2`` transformer layers; the last 2 % of the tasks are adapted (few-shot and zero-shot in turn).
    """
    rng = np.random.default_rng(seed)
    count = max(1, tasks // TASKS_PER_COMMUNITY)
    member = [t * count // tasks for t in range(tasks)]
    graph = nx.Graph(
        name=f"synthetic-{tasks}", router="graph", relations="learned", layers=layers, heads=heads, skills=skills
    )
    adapted = max(1, tasks // 50) if tasks > 1 else 0
    for t in range(tasks):
        attrs: dict[str, Any] = {"type": TASK, "label": f"task-{t:04d}", "num_labels": 2 + t % 3}
        attrs["provenance"] = "trained" if t < tasks - adapted else ("few-shot", "zero-shot")[t % 2]
        graph.add_node(task_node(attrs["label"]), **attrs)
    names = [f"task-{t:04d}" for t in range(tasks)]
    for layer in range(layers):
        module = f"encoder.layer.{layer // 2}.attention.self.{('query', 'value')[layer % 2]}"
        graph.add_node(
            layer_node(layer),
            type=LAYER,
            label=module,
            position=layer,
            module=module,
            block=f"encoder.layer.{layer // 2}",
        )
        for k in range(skills):
            graph.add_node(adapter_node(layer, k), type=ADAPTER, label=f"L{layer}·s{k}", layer=layer, skill=k)
            graph.add_edge(adapter_node(layer, k), layer_node(layer), type="in", weight=1.0)
    for t in range(tasks):
        mates = [u for u in range(tasks) if member[u] == member[t] and u != t]
        for u in rng.choice(mates, size=min(SAME_COMMUNITY, len(mates)), replace=False) if mates else []:
            graph.add_edge(
                task_node(names[t]),
                task_node(names[int(u)]),
                type="relates",
                weight=float(0.45 + 0.45 * rng.random()),
                declared=False,
            )
        for u in rng.integers(0, tasks, size=ACROSS if tasks > 1 else 0):
            if int(u) != t and not graph.has_edge(task_node(names[t]), task_node(names[int(u)])):
                graph.add_edge(
                    task_node(names[t]),
                    task_node(names[int(u)]),
                    type="relates",
                    weight=float(0.05 + 0.3 * rng.random()),
                    declared=False,
                )
        favourite = [member[t] % skills, (3 * member[t] + 1) % skills]
        for layer in range(layers):
            logits = rng.normal(0.0, 0.7, size=(heads, skills))  # [H, K]
            logits[:, favourite] += 2.5
            w = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)  # [H, K]
            gate = 0.0 if (t + layer) % 17 == 0 else 1.0
            graph.nodes[task_node(names[t])][f"gate_l{layer}"] = gate
            for k in range(skills):
                attrs = {"type": "uses", "weight": float(w[:, k].mean()), "gate": gate}
                if heads > 1:
                    attrs.update({f"weight_h{h}": float(w[h, k]) for h in range(heads)})
                graph.add_edge(task_node(names[t]), adapter_node(layer, k), **attrs)
    return graph


def time_view(tasks: list[int], *, repeats: int = 3, progress: Any = None) -> dict[str, Any]:
    """Time to interactive of the HTML view at each T (see the module docstring); a JSON-ready record.

    Raises:
        BrowserError: headless Chromium is not installed, or a page did not load cleanly.
    """
    if find_chromium() is None:
        raise BrowserError("python -m benchmarks view needs headless Chromium (apt-get install chromium)")
    rows = []
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="taskgraph-bench-view-") as tmp:
        for t in tasks:
            if progress is not None:
                progress(f"T = {t}: exporting the view, then loading it {repeats} time(s) ...")
            graph = synthetic_run_graph(t)
            tick = time.perf_counter()
            page = export_graph(graph, "html", Path(tmp) / f"view-{t}.html")
            export_s = time.perf_counter() - tick
            ready, painted = [], []
            for _ in range(repeats):
                loaded = load(page, virtual_time_ms=None)
                root = loaded.root
                if "data-errors" in root or loaded.console or root.get("data-rendered") != str(t):
                    raise BrowserError(
                        f"the view of T = {t} did not load cleanly: {root.get('data-errors')} "
                        f"{loaded.console[:3]} (drew {root.get('data-rendered')} of {t} tasks)"
                    )
                ready.append(float(root["data-ready-ms"]))
                if "data-painted-ms" in root:
                    painted.append(float(root["data-painted-ms"]))
            relations = sum(1 for _, _, d in graph.edges(data=True) if d.get("type") == "relates")
            row = ViewTiming(
                t,
                relations,
                statistics.median(ready),
                ready,
                statistics.median(painted) if painted else None,
                export_s,
                page.stat().st_size,
                repeats,
            )
            rows.append(row)
            if progress is not None:
                progress(f"T = {t}: ready in {row.ready_ms:.0f} ms (export {export_s:.1f} s, {row.html_bytes:,} bytes)")
    return {
        "bench": "view",
        "target_ms": TARGET_MS,
        "target_tasks": TARGET_TASKS,
        "machine": platform.platform(),
        "load_average_start": list(load_start),
        "load_average_end": list(os.getloadavg()),
        "rows": [asdict(r) for r in rows],
    }


def render_view_markdown(result: dict[str, Any]) -> str:
    """The bench's table, with the target line."""
    lines = [
        "| tasks | relations | time to interactive | painted | loads | export | HTML |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        painted = "–" if r["painted_ms"] is None else f"{r['painted_ms']:.0f} ms"
        lines.append(
            f"| {r['tasks']:,} | {r['relations']:,} | {r['ready_ms']:.0f} ms | {painted} | {r['loads']} | "
            f"{r['export_s']:.1f} s | {r['html_bytes'] / 1024:.0f} KiB |"
        )
    at = [r for r in result["rows"] if r["tasks"] == result["target_tasks"]]
    if at:
        met = "met" if at[0]["ready_ms"] <= result["target_ms"] else "missed"
        lines.append(
            f"\ntarget: ≤ {result['target_ms']:.0f} ms at T = {result['target_tasks']:,}: {met} "
            f"({at[0]['ready_ms']:.0f} ms)"
        )
    if "load_average_start" in result:
        start, end = result["load_average_start"][0], result["load_average_end"][0]
        lines.append(f"\nmachine load (1-minute average) {start:.1f} at the start, {end:.1f} at the end")
    return "\n".join(lines) + "\n"
