"""Mermaid: a flowchart whose every line is a header, a node, an edge with its weight, or a class."""

from __future__ import annotations

import re

import networkx as nx
import pytest

from taskgraph.export import render_mermaid
from taskgraph.export.mermaid import escape_label, mermaid_ids

NODE = re.compile(r'^  ([A-Za-z]+\d+)(\(\[|\[|\{\{|\()"([^"]*)"(\]\)|\]|\}\}|\))$')
WEIGHTED = re.compile(r'^  ([A-Za-z]+\d+) -- "(\d\.\d\d)" --- ([A-Za-z]+\d+)$')
DOTTED = re.compile(r"^  ([A-Za-z]+\d+) -\.- ([A-Za-z]+\d+)$")
CLASSDEF = re.compile(r"^  classDef (task|adapter|layer|other) fill:#[0-9a-f]{6},stroke:#[0-9a-f]{6}$")
CLASS = re.compile(r"^  class ([A-Za-z0-9,]+) (task|adapter|layer|other)$")
SHAPES = {"task": ("([", "])"), "adapter": ("[", "]"), "layer": ("{{", "}}")}
ENTITIES = {"#quot;": '"', "#lt;": "<", "#gt;": ">", "#amp;": "&", "#96;": "`", "#35;": "#"}


def unescape(label: str) -> str:
    return re.sub(r"#(?:quot|lt|gt|amp|96|35);", lambda m: ENTITIES[m.group()], label)


def parse(text: str) -> dict:
    """Every line of the flowchart, sorted into nodes, weighted edges, dotted edges and classes."""
    lines = text.splitlines()
    assert lines[0].startswith("%% taskgraph: ") and lines[1] == "flowchart LR"
    parsed: dict = {"nodes": {}, "weighted": [], "dotted": [], "classes": {}}
    for line in lines[2:]:
        if m := NODE.match(line):
            assert m.group(1) not in parsed["nodes"], f"node {m.group(1)} declared twice"
            parsed["nodes"][m.group(1)] = (m.group(2), unescape(m.group(3)), m.group(4))
        elif m := WEIGHTED.match(line):
            parsed["weighted"].append((m.group(1), m.group(3), m.group(2)))
        elif m := DOTTED.match(line):
            parsed["dotted"].append((m.group(1), m.group(2)))
        elif m := CLASS.match(line):
            parsed["classes"][m.group(2)] = m.group(1).split(",")
        else:
            assert CLASSDEF.match(line), f"unexpected line {line!r}"
    return parsed


def check_structure(graph: nx.Graph, text: str) -> None:
    parsed = parse(text)
    ids = mermaid_ids(graph)
    node_of = {v: k for k, v in ids.items()}
    assert len(node_of) == graph.number_of_nodes()  # ids are unique
    assert list(parsed["nodes"]) == [ids[n] for n in graph]  # one line per node, in graph order
    for mid, (opening, label, closing) in parsed["nodes"].items():
        data = graph.nodes[node_of[mid]]
        assert label == " ".join(data["label"].split())
        assert (opening, closing) == SHAPES.get(data["type"], ("(", ")"))
    edges = [(node_of[a], node_of[b], w) for a, b, w in parsed["weighted"]]
    edges += [(node_of[a], node_of[b], None) for a, b in parsed["dotted"]]
    assert len(edges) == graph.number_of_edges()  # one line per edge
    assert {frozenset(e[:2]) for e in edges} == {frozenset(e) for e in graph.edges}
    for u, v, weight in edges:
        data = graph.edges[u, v]
        if data["type"] in ("relates", "uses"):
            assert weight == f"{data['weight']:.2f}"
        else:
            assert weight is None
    for kind, members in parsed["classes"].items():
        assert {graph.nodes[node_of[m]]["type"] for m in members} == {kind}


def test_structure(graph):
    text = render_mermaid(graph)
    check_structure(graph, text)
    assert '  task0 -- "0.80" --- task1' in text.splitlines()  # vader-tweets -- vader-movie
    assert '  task1 -- "0.12" --- task2' in text.splitlines()
    assert sum(1 for line in text.splitlines() if WEIGHTED.match(line)) == 2 + 3 * 6


def test_tricky_labels_are_escaped_and_ids_are_safe(tricky):
    text = render_mermaid(tricky)
    check_structure(tricky, text)
    assert "task:" not in text and "$" in text
    assert all(re.fullmatch(r"(task|adapter|layer|n)\d+", i) for i in mermaid_ids(tricky).values())  # never `end`
    assert "say #quot;hi#quot; \\ back\\n" in text
    assert "#lt;b#gt;bold#lt;/b#gt; #96;x#96; #35;1 #amp; end" in text


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ('a "b"', "a #quot;b#quot;"),
        ("x<y>&z", "x#lt;y#gt;#amp;z"),
        ("two\nlines", "two lines"),
        ("#1 `c`", "#35;1 #96;c#96;"),
    ],
)
def test_escape_label(text, escaped):
    assert escape_label(text) == escaped
    assert unescape(escaped) == " ".join(text.split())


def test_unknown_node_types_get_a_neutral_id_and_class():
    graph = nx.Graph(name="odd")
    graph.add_node("x", type="end", label="x")
    graph.add_node("y", label="y")
    graph.add_edge("x", "y", type="custom", weight=0.5)
    text = render_mermaid(graph)
    assert mermaid_ids(graph) == {"x": "n0", "y": "n1"}
    assert '  n0("x")' in text and '  n0 -- "0.50" --- n1' in text and "  class n0,n1 other" in text
