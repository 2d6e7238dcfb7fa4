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
  ``few-shot`` or ``zero-shot``, with ``adapt_mode`` and ``shots`` when an adapt record says them; see
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

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Union, runtime_checkable

import networkx as nx
import torch
from torch import Tensor

from taskgraph.errors import GraphError, ModelError
from taskgraph.graph import TaskGraph
from taskgraph.graph.vocab import TASK, adapter_node, layer_node, task_node
from taskgraph.model import TaskGraphModel
from taskgraph.model.fold import inference_mode_of
from taskgraph.model.rundir import find_model_dir
from taskgraph.report.provenance import task_provenance
from taskgraph.routing.base import Routing


Source = Union[str, os.PathLike[str], TaskGraphModel]


@runtime_checkable
class LearnsRelations(Protocol):
    """A router that learns task–task relation weights (the graph router) exposes them this way.

    ``relation_weights()`` returns ``index [2, E]`` (long task ids) and ``weight [E]`` in [0, 1]: the
    relation weight of every candidate edge. An edge may be given in one or both directions (both are
    averaged); self-loops are ignored.
    """

    def relation_weights(self) -> tuple[Tensor, Tensor]: ...


@dataclass(frozen=True)
class Relation:
    """One task–task relation of a trained model.

    Args:
        a, b: the two task names (``a`` first in task order).
        weight: the relation weight in [0, 1] (learned, or declared for static routers).
        declared: whether the spec declared this pair.
        declared_weight: the declared value, or None when not declared.
    """

    a: str
    b: str
    weight: float
    declared: bool
    declared_weight: float | None = None


# ----------------------------------------------------------------------------- loading
def load_run_model(path: str | os.PathLike[str]) -> TaskGraphModel:
    """The trained model of a run folder (``RUN/model``) or of a model folder, on the CPU."""
    return TaskGraphModel.from_pretrained(find_model_dir(path), device="cpu")


# ----------------------------------------------------------------------------- what was learned
@torch.no_grad()
def learned_routing(model: TaskGraphModel) -> Routing:
    """The inference routing of every task, on the CPU in float32: gates ``[T, L]``, weights ``[T, L, H, K]``.

    Raises:
        ModelError: the router gives a non-finite gate or weight (naming the task and layer).
    """
    tasks = torch.arange(len(model.task_names), device=model.device)  # [T]
    with inference_mode_of(model.router):
        routing = model.router(tasks)
    gates = routing.gates.detach().to("cpu", torch.float32)  # [T, L]
    weights = routing.weights.detach().to("cpu", torch.float32)  # [T, L, H, K]
    for name, tensor in (("gate", gates), ("weight", weights)):
        bad = (~torch.isfinite(tensor)).nonzero()
        if len(bad):
            t, layer = int(bad[0, 0]), int(bad[0, 1])
            raise ModelError(f"the router gives a non-finite {name} for task {model.task_names[t]!r} at adapted "
                             f"layer {layer} ({model.adapted_names[layer]}); the model is broken")
    return Routing(gates, weights)


def routing_entropy(weights: Tensor) -> Tensor:
    """Mean normalised entropy of each task's mixtures: ``[T, L, H, K] -> [T]`` in [0, 1].

    ``H(w) = −Σ_k w_k log w_k / log K`` (``0 log 0 = 0``), averaged over layers and heads; 0 when
    every mixture is one skill, 1 when every mixture is uniform; 0 for K = 1.
    """
    skills = weights.shape[-1]
    if skills == 1:
        return torch.zeros(weights.shape[0], dtype=weights.dtype)
    w = weights.clamp_min(0.0)  # [T, L, H, K]
    plogp = torch.where(w > 0, w * torch.log(w.clamp_min(torch.finfo(w.dtype).tiny)), torch.zeros_like(w))
    entropy = -plogp.sum(dim=-1) / math.log(skills)  # [T, L, H]
    return entropy.mean(dim=(1, 2)).clamp(0.0, 1.0)  # [T]


def learned_relations(model: TaskGraphModel) -> list[Relation]:
    """The model's relation weights: learned ones (:class:`LearnsRelations`) or, else, the declared ones."""
    names = model.task_names
    declared = {frozenset((a, b)): float(w) for a, b, w in model.spec.relations.declared}
    if not isinstance(model.router, LearnsRelations):
        return [Relation(*_ordered(names, a, b), float(w), True, float(w)) for a, b, w in model.spec.relations.declared]
    with torch.no_grad():
        index, weight = model.router.relation_weights()
    index = index.detach().to("cpu", torch.long)  # [2, E]
    weight = weight.detach().to("cpu", torch.float64).reshape(-1)  # [E]
    if index.dim() != 2 or index.shape[0] != 2 or index.shape[1] != weight.shape[0]:
        raise ModelError(f"{type(model.router).__name__}.relation_weights() must give index [2, E] and weight [E]; "
                         f"got {tuple(index.shape)} and {tuple(weight.shape)}")
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= len(names)):
        raise ModelError(f"{type(model.router).__name__}.relation_weights(): task ids outside 0..{len(names) - 1}")
    pairs: dict[tuple[int, int], list[float]] = {}
    for (i, j), w in zip(index.t().tolist(), weight.tolist(), strict=True):
        if i == j:
            continue
        if not math.isfinite(w) or not -1e-6 <= w <= 1.0 + 1e-6:
            raise ModelError(f"{type(model.router).__name__}.relation_weights(): the relation {names[i]!r}–"
                             f"{names[j]!r} has weight {w!r}; relation weights are finite and in [0, 1]")
        pairs.setdefault((min(i, j), max(i, j)), []).append(min(max(w, 0.0), 1.0))
    out = []
    for (i, j), values in sorted(pairs.items()):
        prior = declared.get(frozenset((names[i], names[j])))
        out.append(Relation(names[i], names[j], sum(values) / len(values), prior is not None, prior))
    return out


def _ordered(names: list[str], a: str, b: str) -> tuple[str, str]:
    return (a, b) if names.index(a) <= names.index(b) else (b, a)


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
    graph.graph.update(router=spec.router.kind, relations="learned" if learns else "declared",
                       layers=n_layers, heads=spec.adapters.heads, skills=n_skills)
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
                        graph.edges[edge].update({f"weight_h{h}": float(w[k]) for h, w in enumerate(per_head[t][layer])})
    mean_use = mix.mean(dim=0).tolist()  # [L][K]
    for layer in range(n_layers):
        module = model.adapted_names[layer]
        graph.nodes[layer_node(layer)].update(label=module, module=module, block=transformer_block(module),
                                              gate_mean=sum(g[layer] for g in gates) / len(names))
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
    keep = {center} | {n for n in graph[center]
                       if graph.nodes[n].get("type") == TASK and graph.edges[center, n].get("type") == "relates"}
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

