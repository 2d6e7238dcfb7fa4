"""Export graphs built by hand, following the contract of ``TaskGraph.to_networkx()``."""

from __future__ import annotations

import networkx as nx
import pytest

from taskgraph.graph.vocab import adapter_node, layer_node, task_node

TASKS = ("vader-tweets", "vader-movie", "rotten-tomatoes")
LAYERS, SKILLS = 2, 3
INJECTION = "</script><script>alert(1)</script>"


def build_graph(description: str = "Tweets scored by VADER.") -> nx.Graph:
    """3 tasks, 2 layers x 3 skills, 2 relations (one declared), every task using every adapter."""
    graph = nx.Graph(name="example")
    for i, name in enumerate(TASKS):
        graph.add_node(task_node(name), type="task", label=name, num_labels=2 + i, gate_l0=0.1 + 0.2, gate_l1=1 / 3 + i)
    graph.nodes[task_node(TASKS[0])]["description"] = description
    for layer in range(LAYERS):
        graph.add_node(layer_node(layer), type="layer", label=f"layer {layer}")
        for skill in range(SKILLS):
            graph.add_node(adapter_node(layer, skill), type="adapter", label=f"L{layer} S{skill}")
            graph.add_edge(adapter_node(layer, skill), layer_node(layer), type="in", weight=1.0)
            if layer:
                graph.add_edge(adapter_node(layer - 1, skill), adapter_node(layer, skill), type="next", weight=1.0)
    graph.add_edge(task_node(TASKS[0]), task_node(TASKS[1]), type="relates", weight=0.8, declared=True)
    graph.add_edge(task_node(TASKS[1]), task_node(TASKS[2]), type="relates", weight=0.123456789, declared=False)
    for i, name in enumerate(TASKS):
        for layer in range(LAYERS):
            for skill in range(SKILLS):
                weight = ((i + 1) * (skill + 2) * (layer + 1) % 7) / 7  # exact floats like 0.2857142857142857
                graph.add_edge(task_node(name), adapter_node(layer, skill), type="uses", weight=weight)
    return graph


def build_tricky_graph() -> nx.Graph:
    """Labels and ids with quotes, backslashes, newlines, markup, colons and a mathtext dollar."""
    graph = nx.Graph(name='tricky "spec" <1>')
    graph.add_node(
        "task:a",
        type="task",
        label='say "hi" \\ back\\n',
        num_labels=2,
        description=f"line one\nline two\t& {INJECTION}",
    )
    graph.add_node("task:b#c", type="task", label="a$b$c$ <b>bold</b> `x` #1 & end", num_labels=3)
    graph.add_node("layer:0", type="layer", label="end")
    graph.add_node("adapter:0:0", type="adapter", label="o x")
    graph.add_edge("task:a", "task:b#c", type="relates", weight=0.5)
    graph.add_edge("task:a", "adapter:0:0", type="uses", weight=0.25)
    graph.add_edge("adapter:0:0", "layer:0", type="in", weight=1.0)
    return graph


@pytest.fixture
def graph() -> nx.Graph:
    return build_graph()


@pytest.fixture
def tricky() -> nx.Graph:
    return build_tricky_graph()


def assert_same_graph(got: nx.Graph, want: nx.Graph) -> None:
    """Same nodes in the same order, same edges, and identical attributes (types included)."""
    assert list(got.nodes) == list(want.nodes)
    assert {frozenset(e) for e in got.edges} == {frozenset(e) for e in want.edges}
    for node, data in want.nodes(data=True):
        assert got.nodes[node] == data, node
        assert {k: type(v) for k, v in got.nodes[node].items()} == {k: type(v) for k, v in data.items()}, node
    for u, v, data in want.edges(data=True):
        assert got.edges[u, v] == data, (u, v)
        assert {k: type(x) for k, x in got.edges[u, v].items()} == {k: type(x) for k, x in data.items()}, (u, v)
    assert got.graph.get("name") == want.graph.get("name")


@pytest.fixture
def make_graph():
    """The builder of :func:`graph`, for variants (another description, ...)."""
    return build_graph


@pytest.fixture
def same_graph():
    """The checker :func:`assert_same_graph`."""
    return assert_same_graph
