"""GraphML, GEXF and node-link JSON round-trip through networkx: same nodes, edges, attributes, weights."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET

import networkx as nx
import pytest

from taskgraph.errors import ExportError
from taskgraph.export import export_graph, load_graph, render_gexf, render_graphml, render_json

EXACT_FLOATS = [0.1 + 0.2, 1 / 3, 2.0**-40, 1e-300, 0.8, 0.0, 1.0, 123456.789e10]
READERS = {
    "graphml": lambda text: nx.read_graphml(io.BytesIO(text.encode())),
    "gexf": lambda text: nx.read_gexf(io.BytesIO(text.encode())),
    "json": lambda text: nx.node_link_graph(json.loads(text), edges="edges"),
}
RENDER = {"graphml": render_graphml, "gexf": render_gexf, "json": render_json}


def _with_exact_floats(graph: nx.Graph) -> nx.Graph:
    for i, value in enumerate(EXACT_FLOATS):
        graph.nodes["task:vader-movie"][f"gate_l{i}"] = value
    graph.edges["task:vader-movie", "task:rotten-tomatoes"]["weight"] = 0.1 + 0.2
    return graph


@pytest.mark.parametrize("fmt", ["graphml", "json"])
def test_stock_networkx_reader_gives_the_same_graph(graph, same_graph, fmt):
    graph = _with_exact_floats(graph)
    same_graph(READERS[fmt](RENDER[fmt](graph)), graph)


def test_stock_gexf_reader_gives_the_same_graph_plus_edge_ids(graph, same_graph):
    """GEXF requires edge ids; networkx returns them as an 'id' attribute, nothing else differs."""
    graph = _with_exact_floats(graph)
    back = READERS["gexf"](render_gexf(graph))
    assert [back.edges[u, v].pop("id") for u, v in graph.edges] == [str(k) for k in range(graph.number_of_edges())]
    same_graph(back, graph)
    assert back.edges["task:vader-tweets", "task:vader-movie"]["type"] == "relates"  # not lost to GEXF's edge type


@pytest.mark.parametrize("fmt", ["graphml", "gexf", "json"])
def test_load_graph_inverts_export_graph(graph, same_graph, tmp_path, fmt):
    graph = _with_exact_floats(graph)
    out = export_graph(graph, fmt, tmp_path / f"g.{fmt}")
    back = load_graph(out, fmt)
    same_graph(back, graph)
    assert back.graph == {"name": "example"}
    assert back.edges["task:vader-movie", "task:rotten-tomatoes"]["weight"] == 0.30000000000000004


@pytest.mark.parametrize("fmt", ["graphml", "gexf", "json"])
def test_tricky_text_survives(tricky, same_graph, fmt):
    same_graph(load_graph_text(fmt, RENDER[fmt](tricky)), tricky)


def load_graph_text(fmt: str, text: str) -> nx.Graph:
    """Read with the stock networkx reader, dropping the edge ids GEXF requires."""
    graph = READERS[fmt](text)
    if fmt == "gexf":
        for _, _, data in graph.edges(data=True):
            del data["id"]
    return graph


@pytest.mark.parametrize("fmt", ["graphml", "gexf", "json"])
def test_an_attribute_with_mixed_types_keeps_each_type(graph, same_graph, fmt):
    """An int on one node and a float on another (networkx's own GEXF writer fails on this)."""
    graph.nodes["task:vader-tweets"]["score"] = 1
    graph.nodes["task:vader-movie"]["score"] = 1.5
    graph.nodes["task:rotten-tomatoes"]["score"] = True
    graph.nodes["layer:0"]["score"] = "high"
    same_graph(load_graph_text(fmt, RENDER[fmt](graph)), graph)


def test_gexf_is_valid_gexf_with_undirected_edges_and_typed_attributes(graph):
    root = ET.fromstring(render_gexf(graph))
    ns = {"g": "http://www.gexf.net/1.2draft"}
    assert root.get("version") == "1.2"
    g = root.find("g:graph", ns)
    assert g.get("defaultedgetype") == "undirected" and g.get("name") == "example"
    edges = g.findall("g:edges/g:edge", ns)
    assert len(edges) == graph.number_of_edges()
    assert all(e.get("type") in (None, "directed", "undirected", "mutual") for e in edges)
    declared = {(a.get("title"), a.get("type")) for a in g.findall("g:attributes[@class='node']/g:attribute", ns)}
    assert {("type", "string"), ("num_labels", "long"), ("gate_l0", "double"), ("description", "string")} <= declared
    nodes = g.findall("g:nodes/g:node", ns)
    assert [n.get("label") for n in nodes] == [d["label"] for _, d in graph.nodes(data=True)]


def test_json_is_node_link_data(graph):
    data = json.loads(render_json(graph))
    assert data == json.loads(json.dumps(nx.node_link_data(graph, edges="edges")))
    assert set(data) == {"directed", "multigraph", "graph", "nodes", "edges"}
    assert data["directed"] is False and len(data["edges"]) == graph.number_of_edges()


@pytest.mark.parametrize("fmt", ["graphml", "gexf", "json"])
def test_output_is_deterministic(make_graph, fmt):
    assert RENDER[fmt](make_graph()) == RENDER[fmt](make_graph())


@pytest.mark.parametrize("fmt", ["graphml", "gexf"])
def test_control_characters_cannot_go_into_xml(graph, fmt):
    graph.nodes["task:vader-movie"]["description"] = "bell \x07"
    with pytest.raises(ExportError, match=r"node 'task:vader-movie': 'description' contains .* U\+0007.*export json"):
        RENDER[fmt](graph)
    assert "\\u0007" in render_json(graph)


def test_load_graph_errors(tmp_path):
    bad = tmp_path / "bad.graphml"
    bad.write_text("<graphml><unclosed")
    with pytest.raises(ExportError, match="cannot read .*bad.graphml' as graphml"):
        load_graph(bad, "graphml")
    with pytest.raises(ExportError, match="cannot read .*missing.json' as json"):
        load_graph(tmp_path / "missing.json", "json")
    with pytest.raises(ExportError, match=r"cannot load format 'dot'; choose from \['gexf', 'graphml', 'json'\]"):
        load_graph(bad, "dot")
