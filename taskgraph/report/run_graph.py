"""The task graph of a trained run, with what the model learned: routing, gates and relation weights.

:func:`run_graph` starts from ``TaskGraph.from_spec(model.spec).to_networkx(L, K)`` (tasks, declared
relations, the adapter inventory of L adapted layers with K skills each) and fills in the trained
model's inference routing (``router.eval()``, no sampling):

- ``uses`` edges (task → adapter ``l, k``): ``weight`` = the task's mixture weight of skill k at layer
  l, mean over the H heads (``w[t, l, :, k].mean()``), with H > 1 each head's weight ``weight_h<h>``
  beside it, and ``gate`` = the task's gate at layer l. An edge whose weight is at most ``min_weight`` is
  left out (by default only exact zeros, e.g. the ``private`` router's one-hot routing);
- task nodes: ``gate_l0 .. gate_l{L-1}`` (the gates ``[T, L]``), ``gate_mean``, ``open_layers``
  (layers whose gate is above 0), ``routing_entropy`` (:func:`routing_entropy`: 0 = every
  layer and head picks one skill, 1 = uniform over the K skills) and ``provenance`` (``trained``,
  ``few-shot``, ``zero-shot`` or ``attached``, with ``adapt_mode`` and ``shots`` when an adapt record says them; see
  :mod:`taskgraph.report.provenance`);
- adapter nodes: ``mean_use`` (the mean of its ``uses`` weight over tasks); layer nodes (one per adapted
  module): ``label`` and ``module`` = the module's path inside the base
  (``encoder.layer.0.attention.self.query``), ``block`` = the transformer layer it is in
  (:func:`transformer_block`: ``encoder.layer.0``) and ``gate_mean`` (mean over tasks);
- ``relates`` edges: for a router that learns relations (one with a ``relation_weights()`` method,
  see :class:`LearnsRelations`) its weights on its candidate edges, each marked ``declared`` (and with
  ``declared_weight``) when the spec declared the pair; for the static routers the declared relations;
- graph attributes: ``name``, ``router`` (kind), ``relations`` (``learned`` | ``declared``),
  ``layers``, ``heads``, ``skills``.

Every attribute is a finite Python scalar, so the graph follows :mod:`taskgraph.export.contract`
and any export format takes it. :func:`task_view` cuts the graph down to one task's neighbourhood.
"""

from __future__ import annotations

import os
from pathlib import Path

import networkx as nx

from taskgraph.errors import GraphError
from taskgraph.graph import TaskGraph
from taskgraph.graph.vocab import TASK, adapter_node, layer_node, task_node
from taskgraph.model import TaskGraphModel
from taskgraph.model.learned import LearnsRelations, learned_relations, learned_routing, routing_entropy
from taskgraph.model.rundir import find_model_dir
from taskgraph.report.provenance import task_provenance

Source = str | os.PathLike[str] | TaskGraphModel


# ----------------------------------------------------------------------------- loading
def load_run_model(path: str | os.PathLike[str]) -> TaskGraphModel:
    """The trained model of a run folder (``RUN/model``) or of a model folder, on the CPU."""
    return TaskGraphModel.from_pretrained(find_model_dir(path), device="cpu")


def transformer_block(module: str) -> str:
    """The transformer layer an adapted module sits in: its path up to the first layer index.

    ``encoder.layer.0.attention.self.query`` → ``encoder.layer.0``; ``transformer.h.11.attn.c_attn`` →
    ``transformer.h.11``; ``encoder.block.2.layer.0.SelfAttention.q`` → ``encoder.block.2``; a path with no
    index (a module outside the layer stack) is its own block.
    """
    parts = module.split(".")
    for i, part in enumerate(parts):
        if part.isdigit():
            return ".".join(parts[: i + 1])
    return module


# ----------------------------------------------------------------------------- the graph
def run_graph(source: Source, *, min_weight: float = 0.0) -> nx.Graph:
    """The task graph of a trained run with its learned routing, gates and relations (see the module doc).

    Args:
        source: a run folder (``RUN`` with ``RUN/model``), a model folder (``RUN/model``, ``RUN/best``, any
            ``save_pretrained`` folder) or a :class:`TaskGraphModel`.
        min_weight: ``uses`` edges with a weight at most this are left out (default: exact zeros only).

    Raises:
        CheckpointError: the folder is not a run or model folder, or its checkpoint is broken.
        ModelError: the router gives non-finite routing or malformed relation weights.
    """
    model = source if isinstance(source, TaskGraphModel) else load_run_model(source)
    run_dir = None if isinstance(source, TaskGraphModel) else _run_folder(source)
    spec = model.spec
    names = model.task_names
    routing = learned_routing(model)
    gates = routing.gates.tolist()  # [T][L]
    mix = routing.weights.mean(dim=2)  # [T, L, K]: mean over heads
    uses = mix.tolist()  # [T][L][K]
    per_head = routing.weights.tolist() if routing.weights.shape[2] > 1 else None  # [T][L][H][K]
    zero_shot = list(spec.router.own_fields().get("zero_shot") or [])
    provenance = task_provenance(names, zero_shot, run_dir)
    entropy = routing_entropy(routing.weights).tolist()  # [T]
    n_layers, n_skills = model.num_layers, model.skills

    graph = TaskGraph.from_spec(spec).to_networkx(num_layers=n_layers, skills=n_skills)
    learns = isinstance(model.router, LearnsRelations)
    graph.graph.update(
        router=spec.router.kind,
        relations="learned" if learns else "declared",
        layers=n_layers,
        heads=spec.adapters.splits,
        skills=n_skills,
    )
    for t, name in enumerate(names):
        node = graph.nodes[task_node(name)]
        node.update({f"gate_l{layer}": float(g) for layer, g in enumerate(gates[t])})
        node["gate_mean"] = sum(gates[t]) / n_layers
        node["open_layers"] = sum(1 for g in gates[t] if g > 0.0)
        node["routing_entropy"] = float(entropy[t])
        node.update(provenance[name].attributes())
        for layer in range(n_layers):
            for k in range(n_skills):
                edge = (task_node(name), adapter_node(layer, k))
                weight = float(uses[t][layer][k])
                if weight <= min_weight:
                    graph.remove_edge(*edge)
                else:
                    graph.edges[edge].update(weight=weight, gate=float(gates[t][layer]))
                    if per_head is not None:
                        graph.edges[edge].update(
                            {f"weight_h{h}": float(w[k]) for h, w in enumerate(per_head[t][layer])}
                        )
    mean_use = mix.mean(dim=0).tolist()  # [L][K]
    for layer in range(n_layers):
        module = model.adapted_names[layer]
        graph.nodes[layer_node(layer)].update(
            label=module,
            module=module,
            block=transformer_block(module),
            gate_mean=sum(g[layer] for g in gates) / len(names),
        )
        for k in range(n_skills):
            graph.nodes[adapter_node(layer, k)]["mean_use"] = float(mean_use[layer][k])

    graph.remove_edges_from([(u, v) for u, v, d in graph.edges(data=True) if d.get("type") == "relates"])
    for rel in learned_relations(model):
        attrs: dict[str, float | bool | str] = {"type": "relates", "weight": rel.weight, "declared": rel.declared}
        if rel.declared_weight is not None:
            attrs["declared_weight"] = rel.declared_weight
        graph.add_edge(task_node(rel.a), task_node(rel.b), **attrs)
    return graph


def _run_folder(source: str | os.PathLike[str]) -> Path:
    """The run folder of a run or model folder: ``RUN`` for ``RUN``, ``RUN/model`` and ``RUN/best``."""
    return find_model_dir(source).parent


def task_view(graph: nx.Graph, task: str) -> nx.Graph:
    """One task's neighbourhood: the task, the tasks it relates to and those relations, and its routing.

    Kept: the task's node, its ``relates`` neighbours (other tasks are dropped), its own ``relates``
    and ``uses`` edges, every adapter and layer node with the structural ``in`` / ``next`` edges.
    The graph's ``name`` gets ``: task <name>`` appended and ``focus`` names the task.

    Raises:
        GraphError: ``task`` is not a task of the graph (naming the tasks that are).
    """
    center = task_node(task)
    tasks = [n for n, d in graph.nodes(data=True) if d.get("type") == TASK]
    if center not in tasks:
        known = [str(graph.nodes[n].get("label", n)) for n in tasks]
        raise GraphError(f"unknown task {task!r}; the graph's tasks are {known}")
    keep = {center} | {
        n
        for n in graph[center]
        if graph.nodes[n].get("type") == TASK and graph.edges[center, n].get("type") == "relates"
    }
    view = nx.Graph()
    view.graph.update(graph.graph)
    view.graph["name"] = f"{graph.graph.get('name', 'taskgraph')}: task {task}"
    view.graph["focus"] = task
    for node, data in graph.nodes(data=True):
        if data.get("type") != TASK or node in keep:
            view.add_node(node, **data)
    for u, v, data in graph.edges(data=True):
        if data.get("type") in ("relates", "uses"):
            if center in (u, v) and u in view and v in view:
                view.add_edge(u, v, **data)
        elif u in view and v in view:
            view.add_edge(u, v, **data)
    return view
