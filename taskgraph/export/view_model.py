"""What the HTML view embeds: a compact, JSON-ready reading of an export graph.

The page draws the *task map* (tasks placed and coloured by their relations, see
:mod:`taskgraph.export.task_map`) and, per task, its routing over the adapted modules. Rather than the
whole node-link graph (at T = 1,000 tasks, 4 modules and 8 skills that is 32,000 ``uses`` edges), it
embeds one record::

    {"format": 1, "name": ..., "meta": {graph attributes},
     "tasks":     [{"id": "task:a", "name": label, "community": c, "x": .., "y": .., "attrs": {...}}],
     "relations": [[a, b, weight, rank, declared (0 | 1), {other attributes} | null], ...]  strongest first,
     "topK": default relations shown per task, "maxRank": the largest rank + 1,
     "communities": [{"size": n, "color": "#rrggbb"}],  largest first,
     "modules":   [{"id": "layer:0", "name": module path, "block": transformer layer, "attrs": {...},
                    "skills": [{"id": "adapter:0:3", "name": label, "attrs": {...}}]}],
     "heads": H,
     "routing":   [[[[w per skill] per head] per module] per task] | null,  (absent uses edges are 0)
     "gates":     [[gate per module] per task] | null,
     "others":    [{"id", "attrs"}]  nodes of no known type, "otherEdges": {type: count}}

Task ``attrs`` are the node's attributes but ``type``, ``label`` and the per-module gates
``gate_l<i>`` (shown as the routing's gate column). A module's skills are the adapter nodes joined to
its layer node, in graph order (by their ``skill`` attribute when every one has it); adapters joined to
no layer form one module named :data:`LOOSE_ADAPTERS`. Per-head weights come from the ``weight_h<h>``
attributes of ``uses`` edges (:func:`taskgraph.report.run_graph`), the plain ``weight`` otherwise.
Floats of the routing and the relations are rounded to :data:`DIGITS` decimals.
"""

from __future__ import annotations

import re
from typing import Any

import networkx as nx

from taskgraph.export.contract import check_graph, edge_weight, node_label, node_type, nodes_of_type
from taskgraph.export.style import community_color
from taskgraph.export.task_map import communities, default_top_k, relation_ranks, task_positions
from taskgraph.graph.vocab import ADAPTER, LAYER, NODE_TYPES, TASK

VIEW_FORMAT = 1
DIGITS = 4
RELATES, USES = "relates", "uses"
LOOSE_ADAPTERS = "(adapters in no layer)"
GATE_KEY = re.compile(r"gate_l\d+")
HEAD_KEY = re.compile(r"weight_h(\d+)")
RELATION_KEYS = ("type", "weight", "declared")  # what a relation record carries in its own slots


def view_model(graph: nx.Graph) -> dict[str, Any]:
    """The record the HTML view embeds for ``graph`` (see the module docstring)."""
    check_graph(graph)
    tasks = nodes_of_type(graph, TASK)
    index = {node: i for i, node in enumerate(tasks)}
    relations = _relations(graph, index)
    triples = [(a, b, w) for a, b, w, _, _ in relations]
    ranks = relation_ranks(len(tasks), triples)
    community = communities(len(tasks), triples)
    positions = task_positions(len(tasks), triples, community) if tasks else []
    sizes = [community.count(c) for c in range(max(community, default=-1) + 1)]
    modules = _modules(graph)
    heads = _heads(graph)
    return {
        "format": VIEW_FORMAT,
        "name": str(graph.graph.get("name", "taskgraph")),
        "meta": dict(graph.graph),
        "tasks": [
            {
                "id": node,
                "name": node_label(graph, node),
                "community": community[i],
                "x": round(float(positions[i][0]), DIGITS),
                "y": round(float(positions[i][1]), DIGITS),
                "attrs": {
                    k: v
                    for k, v in graph.nodes[node].items()
                    if k not in ("type", "label") and not GATE_KEY.fullmatch(k)
                },
            }
            for i, node in enumerate(tasks)
        ],
        "relations": [
            [a, b, round(w, DIGITS), rank, int(declared), extra or None]
            for (a, b, w, declared, extra), rank in zip(relations, ranks, strict=True)
        ],
        "topK": default_top_k(len(tasks)),
        "maxRank": max(ranks, default=-1) + 1,
        "communities": [{"size": n, "color": community_color(c, n)} for c, n in enumerate(sizes)],
        "modules": [_module_record(graph, layer, skills) for layer, skills in modules],
        "heads": heads,
        "routing": _routing(graph, tasks, modules, heads),
        "gates": _gates(graph, tasks, modules),
        "others": [{"id": n, "attrs": dict(d)} for n, d in graph.nodes(data=True) if d.get("type") not in NODE_TYPES],
        "otherEdges": _other_edges(graph),
    }


def _relations(graph: nx.Graph, index: dict[str, int]) -> list[tuple[int, int, float, bool, dict[str, Any]]]:
    """``relates`` edges between two different tasks as ``(a < b, weight, declared, other attributes)``, strongest first."""
    out = []
    for u, v, data in graph.edges(data=True):
        if data.get("type") != RELATES or u not in index or v not in index or u == v:
            continue
        a, b = sorted((index[u], index[v]))
        extra = {k: val for k, val in data.items() if k not in RELATION_KEYS}
        out.append((a, b, min(max(edge_weight(data), 0.0), 1.0), bool(data.get("declared", False)), extra))
    return sorted(out, key=lambda r: (-r[2], r[0], r[1]))


def _modules(graph: nx.Graph) -> list[tuple[str | None, list[str]]]:
    """Each layer node with the adapters joined to it; adapters of no layer last (layer ``None``)."""
    order = {n: i for i, n in enumerate(graph)}
    placed: set[str] = set()
    out: list[tuple[str | None, list[str]]] = []
    for layer in nodes_of_type(graph, LAYER):
        skills = [n for n in graph[layer] if node_type(graph, n) == ADAPTER and n not in placed]
        placed.update(skills)
        out.append((layer, _skill_order(graph, skills, order)))
    loose = [n for n in nodes_of_type(graph, ADAPTER) if n not in placed]
    if loose:
        out.append((None, loose))
    return out


def _skill_order(graph: nx.Graph, skills: list[str], order: dict[str, int]) -> list[str]:
    numbered = all(type(graph.nodes[n].get("skill")) is int for n in skills)
    return sorted(skills, key=lambda n: (graph.nodes[n]["skill"] if numbered else 0, order[n]))


def _module_record(graph: nx.Graph, layer: str | None, skills: list[str]) -> dict[str, Any]:
    attrs = {} if layer is None else dict(graph.nodes[layer])
    name = LOOSE_ADAPTERS if layer is None else str(attrs.get("module", node_label(graph, layer)))
    return {
        "id": layer,
        "name": name,
        "block": str(attrs.get("block", "")),
        "attrs": {k: v for k, v in attrs.items() if k != "type"},
        "skills": [
            {
                "id": n,
                "name": node_label(graph, n),
                "attrs": {k: v for k, v in graph.nodes[n].items() if k not in ("type", "label")},
            }
            for n in skills
        ],
    }


def _heads(graph: nx.Graph) -> int:
    """H: one more than the largest ``weight_h<h>`` on a ``uses`` edge, else 1."""
    top = -1
    for _, _, data in graph.edges(data=True):
        if data.get("type") == USES:
            for key in data:
                found = HEAD_KEY.fullmatch(key)
                if found:
                    top = max(top, int(found.group(1)))
    return top + 1 if top >= 0 else 1


def _routing(
    graph: nx.Graph, tasks: list[str], modules: list[tuple[str | None, list[str]]], heads: int
) -> list[list[list[list[float]]]] | None:
    """``routing[t][m][h][k]``: the weight of skill k of module m for task t at head h (0 without an edge)."""
    if not any(d.get("type") == USES for _, _, d in graph.edges(data=True)):
        return None
    out = []
    for task in tasks:
        per_module = []
        for _, skills in modules:
            rows: list[list[float]] = [[0.0] * len(skills) for _ in range(heads)]
            for k, adapter in enumerate(skills):
                data = graph.get_edge_data(task, adapter)
                if data is None or data.get("type") != USES:
                    continue
                for h in range(heads):
                    rows[h][k] = round(float(data.get(f"weight_h{h}", edge_weight(data))), DIGITS)
            per_module.append(rows)
        out.append(per_module)
    return out


def _gates(graph: nx.Graph, tasks: list[str], modules: list[tuple[str | None, list[str]]]) -> list[list[float]] | None:
    """``gates[t][m]`` from the task's ``gate_l<position>`` (the layer node's ``position``, else its index)."""
    keys = []
    for i, (layer, _) in enumerate(modules):
        position = graph.nodes[layer].get("position", i) if layer is not None else None
        keys.append(None if position is None else f"gate_l{position}")
    found = [[graph.nodes[t].get(key) if key else None for key in keys] for t in tasks]
    if not any(isinstance(g, (int, float)) for row in found for g in row):
        return None
    return [[round(float(g), DIGITS) if isinstance(g, (int, float)) else 1.0 for g in row] for row in found]


def _other_edges(graph: nx.Graph) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, _, data in graph.edges(data=True):
        kind = str(data.get("type", ""))
        if kind not in (RELATES, USES, "in", "next"):
            counts[kind] = counts.get(kind, 0) + 1
    return counts
