"""DOT: valid Graphviz (parsed by pydot; rendered by `dot` where installed), styled and weighted."""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET

import networkx as nx
import pydot
import pytest

from taskgraph.export import render_dot
from taskgraph.export.dot import quote


def unquote(text: str) -> str:
    """A pydot-returned quoted DOT string back to its text (``\\n`` read as a newline, as Graphviz does)."""
    assert text.startswith('"') and text.endswith('"'), text
    out, i, body = [], 0, text[1:-1]
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            out.append({"n": "\n", '"': '"', "\\": "\\"}.get(body[i + 1], "\\" + body[i + 1]))
            i += 2
        else:
            out.append(body[i])
            i += 1
    return "".join(out)


def parse(text: str) -> pydot.Dot:
    graphs = pydot.graph_from_dot_data(text)
    assert graphs is not None and len(graphs) == 1
    return graphs[0]


def node_attrs(dot: pydot.Dot) -> dict[str, dict[str, str]]:
    """Node name -> attributes, without the ``graph`` / ``node`` / ``edge`` default statements."""
    nodes = [n for n in dot.get_nodes() if n.get_name() not in ("graph", "node", "edge")]
    return {unquote(n.get_name()): n.get_attributes() for n in nodes}


def test_pydot_parses_every_node_and_edge(graph):
    dot = parse(render_dot(graph))
    assert dot.get_type() == "graph" and unquote(dot.get_name()) == "example"
    nodes = node_attrs(dot)
    assert list(nodes) == list(graph.nodes)
    edges = {frozenset((unquote(e.get_source()), unquote(e.get_destination()))) for e in dot.get_edges()}
    assert edges == {frozenset(e) for e in graph.edges} and len(dot.get_edges()) == graph.number_of_edges()
    for name, attrs in nodes.items():
        assert unquote(attrs["label"]) == graph.nodes[name]["label"]
        assert unquote(attrs["class"]) == graph.nodes[name]["type"]
    assert {nodes[n]["shape"] for n in graph if n.startswith("task:")} == {"ellipse"}
    assert {nodes[n]["shape"] for n in graph if n.startswith("adapter:")} == {"box"}
    assert {nodes[n]["shape"] for n in graph if n.startswith("layer:")} == {"hexagon"}


def test_weighted_edges_carry_weight_as_label_and_pen_width(graph):
    dot = parse(render_dot(graph))
    seen = 0
    for e in dot.get_edges():
        u, v = unquote(e.get_source()), unquote(e.get_destination())
        data, attrs = graph.edges[u, v], e.get_attributes()
        if data["type"] in ("relates", "uses"):
            assert unquote(attrs["label"]) == f"{data['weight']:.2f}"
            assert float(attrs["penwidth"]) == pytest.approx(0.5 + 3.5 * data["weight"], abs=0.006)
            seen += 1
        else:
            assert attrs["style"] == "dashed" and "label" not in attrs
    assert seen == 2 + 3 * 6
    relates = graph.edges["task:vader-tweets", "task:vader-movie"]
    assert relates["weight"] == 0.8
    assert "penwidth=3.30" in render_dot(graph)


def test_quotes_backslashes_and_newlines_are_escaped(tricky):
    text = render_dot(tricky)
    dot = parse(text)
    assert unquote(dot.get_name()) == 'tricky "spec" <1>'
    nodes = node_attrs(dot)
    assert {n: unquote(a["label"]) for n, a in nodes.items()} == {n: d["label"] for n, d in tricky.nodes(data=True)}
    assert '"say \\"hi\\" \\\\ back\\\\n"' in text  # the literal backslash-n stays two characters
    tooltip = unquote(nodes["task:a"]["tooltip"])
    assert "line one\nline two" in tooltip and "</script>" in tooltip
    statements = [line for line in text.splitlines() if line.strip()]
    assert len(statements) == 5 + tricky.number_of_nodes() + tricky.number_of_edges()  # header, 3 defaults, }


@pytest.mark.parametrize(
    ("text", "quoted"), [("a", '"a"'), ('a"b', '"a\\"b"'), ("a\\", '"a\\\\"'), ("a\r\nb", '"a\\nb"')]
)
def test_quote(text, quoted):
    assert quote(text) == quoted


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed")
@pytest.mark.parametrize("which", ["graph", "tricky"])
def test_graphviz_renders_it(graph, tricky, which):
    g: nx.Graph = {"graph": graph, "tricky": tricky}[which]
    done = subprocess.run(["dot", "-Tsvg"], input=render_dot(g), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no warnings either
    svg = ET.fromstring(done.stdout)
    ns = {"s": "http://www.w3.org/2000/svg"}
    groups = svg.findall(".//s:g[@class]", ns)
    classes = [grp.get("class") for grp in groups]
    assert sum(c.startswith("node") for c in classes) == g.number_of_nodes()
    assert sum(c.startswith("edge") for c in classes) == g.number_of_edges()
    titles = {grp.find("s:title", ns).text for grp in groups if grp.get("class").startswith("node")}
    assert titles == set(g.nodes)
