"""The record the HTML view embeds, read from export graphs of every shape."""

from __future__ import annotations

import json

import networkx as nx
import pytest

from benchmarks.view import synthetic_run_graph
from taskgraph.export.view_model import LOOSE_ADAPTERS, view_model
from taskgraph.graph import TaskGraph
from taskgraph.spec import spec_from_dict
from tests.conftest import minimal_spec


def test_the_fixture_graph(graph):
    v = view_model(graph)
    assert json.loads(json.dumps(v)) == v  # JSON-ready as it is
    assert [t["id"] for t in v["tasks"]] == ["task:vader-tweets", "task:vader-movie", "task:rotten-tomatoes"]
    assert v["tasks"][0]["attrs"] == {"num_labels": 2, "description": "Tweets scored by VADER."}  # gates apart
    assert v["gates"] == [[0.3, round(1 / 3 + i, 4)] for i in range(3)]  # gate_l0, gate_l1, rounded
    assert v["relations"] == [[0, 1, 0.8, 0, 1, None], [1, 2, 0.1235, 0, 0, None]]
    assert (v["topK"], v["maxRank"], v["heads"]) == (2, 1, 1)
    assert [m["name"] for m in v["modules"]] == ["layer 0", "layer 1"]  # no module path: the label
    assert [[s["id"] for s in m["skills"]] for m in v["modules"]] == [
        [f"adapter:{layer}:{k}" for k in range(3)] for layer in range(2)
    ]
    for t, task in enumerate(v["tasks"]):
        for m in range(2):
            for k in range(3):
                want = graph.edges[task["id"], f"adapter:{m}:{k}"]["weight"]
                assert v["routing"][t][m][0][k] == round(want, 4)
    assert v["others"] == [] and v["otherEdges"] == {}


def test_communities_and_positions_are_consistent():
    v = view_model(synthetic_run_graph(60))
    assert sum(c["size"] for c in v["communities"]) == 60
    assert [c["size"] for c in v["communities"]] == sorted((c["size"] for c in v["communities"]), reverse=True)
    assert all(0 <= t["x"] <= 1 and 0 <= t["y"] <= 1 for t in v["tasks"])
    weights = [r[2] for r in v["relations"]]
    assert weights == sorted(weights, reverse=True)
    assert v["tasks"][-1]["attrs"]["provenance"] in ("few-shot", "zero-shot")


def test_heads_and_real_module_names_of_a_run_graph():
    v = view_model(synthetic_run_graph(20, heads=3))
    assert v["heads"] == 3
    assert v["modules"][1]["name"] == "encoder.layer.0.attention.self.value"
    assert v["modules"][1]["block"] == "encoder.layer.0"
    rows = v["routing"][4][1]  # task 4, module 1: 3 heads of 8 skills, each a distribution
    assert len(rows) == 3 and all(len(r) == 8 and sum(r) == pytest.approx(1.0, abs=1e-3) for r in rows)


def test_a_spec_graph_has_no_routing_and_missing_uses_are_zero():
    spec = spec_from_dict(minimal_spec())
    tasks_only = view_model(TaskGraph.from_spec(spec).to_networkx())
    assert tasks_only["routing"] is None and tasks_only["gates"] is None and tasks_only["modules"] == []
    with_layers = TaskGraph.from_spec(spec).to_networkx(num_layers=2, skills=2)
    with_layers.remove_edge("task:a", "adapter:1:0")
    v = view_model(with_layers)
    assert v["routing"][0][1][0] == [0.0, 0.5] and v["routing"][1][1][0] == [0.5, 0.5]
    assert v["gates"] is None


def test_loose_adapters_and_nodes_of_other_types(tricky):
    tricky.add_node("adapter:9:9", type="adapter", label="alone")
    tricky.add_node("thing", type="widget", label="w", size=3)
    tricky.add_edge("thing", "task:a", type="pokes", weight=0.5)
    v = view_model(tricky)
    assert [m["name"] for m in v["modules"]] == ["end", LOOSE_ADAPTERS]
    assert v["others"] == [{"id": "thing", "attrs": {"type": "widget", "label": "w", "size": 3}}]
    assert v["otherEdges"] == {"pokes": 1}


def test_an_empty_graph():
    v = view_model(nx.Graph())
    assert v["tasks"] == [] and v["relations"] == [] and v["communities"] == [] and v["maxRank"] == 0
