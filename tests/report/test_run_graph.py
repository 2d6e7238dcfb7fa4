"""The learned graph of a run: its nodes and edges, weights equal to the router's, gates, relations, views."""

from __future__ import annotations

import json
import math
import shutil
from html.parser import HTMLParser

import networkx as nx
import numpy as np
import pytest
import torch

from taskgraph.adapt.modes import ADAPT_MODES
from taskgraph.adapt.run import ADAPT_JSON
from taskgraph.errors import CheckpointError, GraphError, ModelError
from taskgraph.export import check_graph, export_graph, load_graph, render_html
from taskgraph.graph.vocab import adapter_node, layer_node, task_node
from taskgraph.report import (
    LearnsRelations,
    find_model_dir,
    learned_relations,
    learned_routing,
    routing_entropy,
    run_graph,
    task_view,
)
from taskgraph.report.provenance import ADAPT_RECORD, ZERO_SHOT_MODE, task_provenance
from taskgraph.report.run_graph import transformer_block
from tests.report.conftest import LAYERS, TASKS, FixedRouter, known_logits, make_model


def expected_weights(logits: torch.Tensor) -> np.ndarray:
    """Poly / MHR inference weights from logits, independently: sigmoid, then normalise over K."""
    z = 1.0 / (1.0 + np.exp(-logits.double().numpy()))  # [T, L, H, K]
    return z / z.sum(axis=-1, keepdims=True)


def edges_of(graph: nx.Graph, kind: str) -> list[tuple[str, str, dict]]:
    return [(u, v, d) for u, v, d in graph.edges(data=True) if d["type"] == kind]


def uses_weight(graph: nx.Graph, task: str, layer: int, skill: int) -> float:
    return graph.edges[task_node(task), adapter_node(layer, skill)]["weight"]


def fixed_model(gates: torch.Tensor, weights: torch.Tensor, index: list[list[int]], relation: list[float]):
    model = make_model()
    model.router = FixedRouter(gates, weights, torch.tensor(index, dtype=torch.long), torch.tensor(relation))
    return model


# ----------------------------------------------------------------------------- static routers
def test_poly_graph_structure_and_router_weights():
    model = make_model("poly")
    graph = check_graph(run_graph(model))
    skills = 4
    assert graph.graph == {
        "name": "tiny",
        "router": "poly",
        "relations": "declared",
        "layers": LAYERS,
        "heads": 1,
        "skills": skills,
    }
    kinds = [d["type"] for _, d in graph.nodes(data=True)]
    assert (kinds.count("task"), kinds.count("layer"), kinds.count("adapter")) == (3, LAYERS, LAYERS * skills)
    counts = {k: len(edges_of(graph, k)) for k in ("relates", "uses", "in", "next")}
    assert counts == {
        "relates": 2,
        "uses": 3 * LAYERS * skills,
        "in": LAYERS * skills,
        "next": (LAYERS - 1) * skills * skills,
    }
    want = expected_weights(known_logits(3, LAYERS, 1, skills))[:, :, 0, :]  # [T, L, K]
    got = np.array(
        [[[uses_weight(graph, t, layer, k) for k in range(skills)] for layer in range(LAYERS)] for t in TASKS]
    )
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert want.max() > 0.6 and want.min() < 0.03  # the known logits are far from uniform (1/4)
    routing = learned_routing(model)
    assert got.tolist() == routing.weights[:, :, 0, :].tolist()  # exactly the router's float32 values


def test_poly_task_and_layer_attributes():
    model = make_model("poly")
    graph = run_graph(model)
    w = expected_weights(known_logits(3, LAYERS, 1, 4))  # [T, L, H, K]
    entropy = (-(w * np.log(w)).sum(-1) / math.log(4)).mean(axis=(1, 2))  # [T]
    for t, name in enumerate(TASKS):
        node = graph.nodes[task_node(name)]
        assert [node[f"gate_l{layer}"] for layer in range(LAYERS)] == [1.0] * LAYERS
        assert f"gate_l{LAYERS}" not in node
        assert node["gate_mean"] == 1.0 and node["open_layers"] == LAYERS
        assert node["routing_entropy"] == pytest.approx(entropy[t], rel=1e-5)
        assert node["num_labels"] == model.num_labels[t]
    for layer in range(LAYERS):
        assert graph.nodes[layer_node(layer)]["module"] == model.adapted_names[layer]
        for k in range(4):
            assert graph.nodes[adapter_node(layer, k)]["mean_use"] == pytest.approx(w[:, layer, 0, k].mean(), rel=1e-5)
    assert graph.nodes[task_node("b")]["description"] == "three-way"
    rel = graph.edges[task_node("a"), task_node("b")]
    assert rel == {"type": "relates", "weight": 0.8, "declared": True, "declared_weight": 0.8}
    assert graph.edges[task_node("a"), adapter_node(0, 0)]["gate"] == 1.0


def test_mhr_uses_the_mean_over_heads():
    model = make_model("mhr", heads=2)
    graph = run_graph(model)
    want = expected_weights(known_logits(3, LAYERS, 2, 4)).mean(axis=2)  # [T, L, K]
    got = np.array([[[uses_weight(graph, t, layer, k) for k in range(4)] for layer in range(LAYERS)] for t in TASKS])
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert graph.graph["heads"] == 2


def test_private_keeps_only_the_used_adapter():
    graph = check_graph(run_graph(make_model("private")))
    uses = edges_of(graph, "uses")
    assert len(uses) == 3 * LAYERS  # the zero weights of the one-hot routing are left out
    for t, name in enumerate(TASKS):
        for layer in range(LAYERS):
            assert uses_weight(graph, name, layer, t) == 1.0
        assert graph.nodes[task_node(name)]["routing_entropy"] == 0.0
    assert graph.graph["skills"] == 3


def test_shared_has_one_skill_and_zero_entropy():
    graph = run_graph(make_model("shared"))
    assert graph.graph["skills"] == 1
    assert all(d["weight"] == 1.0 for _, _, d in edges_of(graph, "uses"))
    assert all(graph.nodes[task_node(t)]["routing_entropy"] == 0.0 for t in TASKS)


def test_min_weight_drops_small_uses_edges():
    model = make_model("poly")
    full, pruned = run_graph(model), run_graph(model, min_weight=0.1)
    kept = [(u, v) for u, v, d in edges_of(full, "uses") if d["weight"] > 0.1]
    assert 0 < len(kept) < len(edges_of(full, "uses"))
    assert sorted((u, v) for u, v, _ in edges_of(pruned, "uses")) == sorted(kept)


def test_routing_entropy_numbers():
    w = torch.tensor([[[[1.0, 0.0]]], [[[0.5, 0.5]]], [[[0.9, 0.1]]]])  # [3, 1, 1, 2]
    h = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1)) / math.log(2)
    torch.testing.assert_close(routing_entropy(w), torch.tensor([0.0, 1.0, h]))
    assert routing_entropy(torch.ones(2, 3, 1, 1)).tolist() == [0.0, 0.0]


# ----------------------------------------------------------------------------- a router that learns relations
def test_gates_and_learned_relations_from_the_hook():
    gates = torch.tensor([[1.0, 0.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]])  # [T, L]
    weights = torch.full((3, LAYERS, 1, 2), 0.5)  # [T, L, H, K]
    weights[0, :, 0] = torch.tensor([0.25, 0.75])
    # a–b both ways (averaged), a–c one way (not declared), a self-loop (ignored); b–c (declared) not a candidate
    model = fixed_model(gates, weights, [[0, 1, 0, 2], [1, 0, 2, 2]], [0.6, 0.4, 0.125, 0.9])
    assert isinstance(model.router, LearnsRelations)
    graph = check_graph(run_graph(model))
    assert graph.graph["relations"] == "learned" and graph.graph["skills"] == 2
    assert graph.edges[task_node("a"), task_node("b")] == {
        "type": "relates",
        "weight": pytest.approx(0.5),
        "declared": True,
        "declared_weight": 0.8,
    }
    assert graph.edges[task_node("a"), task_node("c")] == {"type": "relates", "weight": 0.125, "declared": False}
    assert not graph.has_edge(task_node("b"), task_node("c"))
    a, c = graph.nodes[task_node("a")], graph.nodes[task_node("c")]
    assert [a[f"gate_l{i}"] for i in range(LAYERS)] == [1.0, 0.0, 1.0, 0.0]
    assert (a["gate_mean"], a["open_layers"], c["open_layers"]) == (0.5, 2, 0)
    assert graph.edges[task_node("a"), adapter_node(1, 1)] == {"type": "uses", "weight": 0.75, "gate": 0.0}
    assert graph.nodes[layer_node(0)]["gate_mean"] == pytest.approx(2 / 3)
    assert [(r.a, r.b, r.declared) for r in learned_relations(model)] == [("a", "b", True), ("a", "c", False)]


@pytest.mark.parametrize(
    "index, relation, message",
    [
        ([[0], [1]], [float("nan")], "finite and in \\[0, 1\\]"),
        ([[0], [1]], [1.5], "finite and in \\[0, 1\\]"),
        ([[0, 1]], [0.5], "index \\[2, E\\]"),
        ([[0], [7]], [0.5], "task ids outside 0..2"),
    ],
)
def test_malformed_relation_weights_are_model_errors(index, relation, message):
    model = fixed_model(torch.ones(3, LAYERS), torch.full((3, LAYERS, 1, 2), 0.5), index, relation)
    with pytest.raises(ModelError, match=message):
        run_graph(model)


def test_non_finite_routing_is_a_model_error():
    weights = torch.full((3, LAYERS, 1, 2), 0.5)
    weights[1, 2, 0, 0] = float("nan")
    model = fixed_model(torch.ones(3, LAYERS), weights, [[0], [1]], [0.5])
    with pytest.raises(ModelError, match="non-finite weight for task 'b' at adapted layer 2"):
        run_graph(model)


# ----------------------------------------------------------------------------- from folders
def test_run_folder_model_folder_and_model_give_the_same_graph(run_dir):
    from_run, from_model_dir = run_graph(run_dir), run_graph(run_dir / "model")
    from_memory = run_graph(make_model())
    for graph in (from_model_dir, from_memory):
        assert list(graph.nodes(data=True)) == list(from_run.nodes(data=True))
        assert list(graph.edges(data=True)) == list(from_run.edges(data=True))
    assert find_model_dir(run_dir) == run_dir / "model" and find_model_dir(run_dir / "model") == run_dir / "model"


def test_not_a_run_folder(tmp_path):
    with pytest.raises(CheckpointError, match="neither a run folder .* nor a model folder"):
        run_graph(tmp_path)
    with pytest.raises(CheckpointError, match="no such folder"):
        run_graph(tmp_path / "missing")


def test_broken_checkpoint_is_a_checkpoint_error(run_dir, tmp_path):
    broken = tmp_path / "RUN"
    shutil.copytree(run_dir, broken)
    weights = broken / "model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="truncated"):
        run_graph(broken)


def test_graphml_round_trip_keeps_the_learned_attributes(run_dir, tmp_path):
    graph = run_graph(run_dir)
    back = load_graph(export_graph(graph, "graphml", tmp_path / "g.graphml"), "graphml")
    assert dict(back.nodes(data=True)) == dict(graph.nodes(data=True))
    assert {frozenset((u, v)): d for u, v, d in back.edges(data=True)} == {
        frozenset((u, v)): d for u, v, d in graph.edges(data=True)
    }


class _Data(HTMLParser):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.inside, self.text = False, ""
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.inside = tag == "script" and ("id", "taskgraph-data") in attrs

    def handle_data(self, data):
        if self.inside:
            self.text += data

    def handle_endtag(self, tag):
        self.inside = False


def test_html_shows_gates_and_learned_weights():
    gates = torch.tensor([[1.0, 0.0, 1.0, 0.0], [1.0] * 4, [0.0] * 4])
    weights = torch.full((3, LAYERS, 1, 2), 0.5)
    weights[0, :, 0] = torch.tensor([0.25, 0.75])
    model = fixed_model(gates, weights, [[0], [2]], [0.375])
    data = json.loads(_Data(render_html(run_graph(model))).text)
    assert data["gates"][0] == [1.0, 0.0, 1.0, 0.0]
    assert data["tasks"][2]["attrs"]["open_layers"] == 0
    assert data["relations"] == [[0, 2, 0.375, 0, 0, None]]
    assert data["routing"][0][3][0] == [0.25, 0.75]  # task a, module 3, head 0: skills 0 and 1
    assert [m["name"] for m in data["modules"]] == model.adapted_names  # real module paths, not "layer 0"
    assert [m["block"] for m in data["modules"]] == ["encoder.layer.0"] * 2 + ["encoder.layer.1"] * 2


# ----------------------------------------------------------------------------- one task's view
def test_task_view_keeps_the_task_its_relations_and_its_routing():
    graph = run_graph(make_model())
    view = check_graph(task_view(graph, "a"))
    assert view.graph["focus"] == "a" and view.graph["name"] == "tiny: task a"
    assert [n for n, d in view.nodes(data=True) if d["type"] == "task"] == ["task:a", "task:b"]  # c is not related
    assert {frozenset((u, v)) for u, v, _ in edges_of(view, "relates")} == {frozenset(("task:a", "task:b"))}
    uses = edges_of(view, "uses")
    assert len(uses) == LAYERS * 4 and all("task:a" in (u, v) for u, v, _ in uses)
    assert len(edges_of(view, "in")) == LAYERS * 4 and len(edges_of(view, "next")) == (LAYERS - 1) * 16
    for u, v, d in uses:
        assert d == graph.edges[u, v]
    assert view.nodes["task:a"] == graph.nodes["task:a"]
    middle = task_view(graph, "b")
    assert [n for n, d in middle.nodes(data=True) if d["type"] == "task"] == ["task:a", "task:b", "task:c"]
    assert len(edges_of(middle, "relates")) == 2
    assert graph.graph["name"] == "tiny"  # the original is left as it was


def test_task_view_of_an_unknown_task_names_the_known_ones():
    with pytest.raises(GraphError, match=r"unknown task 'zz'; the graph's tasks are \['a', 'b', 'c'\]"):
        task_view(run_graph(make_model()), "zz")


# ----------------------------------------------------------------------------- modules, heads, provenance
def test_layers_are_named_by_module_path_and_grouped_by_transformer_layer():
    model = make_model("poly")
    graph = run_graph(model)
    layers = [graph.nodes[layer_node(layer)] for layer in range(LAYERS)]
    assert [d["label"] for d in layers] == [d["module"] for d in layers] == model.adapted_names
    assert model.adapted_names[0] == "encoder.layer.0.attention.self.query"
    assert [d["block"] for d in layers] == ["encoder.layer.0", "encoder.layer.0", "encoder.layer.1", "encoder.layer.1"]


@pytest.mark.parametrize(
    "module, block",
    [
        ("encoder.layer.0.attention.self.query", "encoder.layer.0"),
        ("transformer.h.11.attn.c_attn", "transformer.h.11"),
        ("encoder.block.2.layer.0.SelfAttention.q", "encoder.block.2"),
        ("model.layers.3.self_attn.q_proj", "model.layers.3"),
        ("pooler.dense", "pooler.dense"),
    ],
)
def test_transformer_block(module, block):
    assert transformer_block(module) == block


def test_mhr_keeps_every_heads_weight_beside_the_mean():
    graph = run_graph(make_model("mhr", heads=2))
    want = expected_weights(known_logits(3, LAYERS, 2, 4))  # [T, L, H, K]
    edge = graph.edges[task_node("b"), adapter_node(2, 3)]
    assert [edge["weight_h0"], edge["weight_h1"]] == pytest.approx(want[1, 2, :, 3].tolist(), rel=1e-6)
    assert edge["weight"] == pytest.approx(want[1, 2, :, 3].mean(), rel=1e-6)
    assert "weight_h0" not in run_graph(make_model("poly")).edges[task_node("b"), adapter_node(2, 3)]  # H = 1


def test_provenance_from_the_adapt_records_of_a_run_chain(run_dir, tmp_path):
    graph = run_graph(run_dir)
    assert {graph.nodes[task_node(t)]["provenance"] for t in TASKS} == {"trained"}
    first, second = tmp_path / "first", tmp_path / "second"
    shutil.copytree(run_dir, first)
    shutil.copytree(run_dir, second)
    (first / ADAPT_RECORD).write_text(
        json.dumps({"source_run": str(run_dir), "task": "b", "mode": "routing", "shots": 16})
    )
    (second / ADAPT_RECORD).write_text(
        json.dumps({"source_run": str(first), "task": "c", "mode": "zero-shot", "shots": 64})
    )
    graph = run_graph(second / "model")  # a model folder reads its run's record, then the chain back
    nodes = {t: graph.nodes[task_node(t)] for t in TASKS}
    assert nodes["a"]["provenance"] == "trained" and "adapt_mode" not in nodes["a"]
    assert (nodes["b"]["provenance"], nodes["b"]["adapt_mode"], nodes["b"]["shots"]) == ("few-shot", "routing", 16)
    assert (nodes["c"]["provenance"], nodes["c"]["adapt_mode"], nodes["c"]["shots"]) == ("zero-shot", "zero-shot", 64)
    (first / ADAPT_RECORD).write_text("{not json")  # a broken record ends the chain, never the export
    assert run_graph(second).nodes[task_node("b")]["provenance"] == "trained"


def test_zero_shot_tasks_of_the_spec_and_the_adapt_record_name():
    assert ADAPT_RECORD == ADAPT_JSON and ZERO_SHOT_MODE in ADAPT_MODES
    found = task_provenance(["a", "b"], ["b"], None)
    assert (found["a"].kind, found["b"].kind) == ("trained", "zero-shot")
