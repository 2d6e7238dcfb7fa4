"""The drawing layout shared by HTML and PNG: deterministic, in the unit square, read from structure."""

from __future__ import annotations

import networkx as nx
import pytest

from taskgraph.export.layout import INVENTORY_REGION, TASK_REGION, inventory_columns, layout


def test_deterministic_and_inside_the_unit_square(make_graph):
    first, second = layout(make_graph()), layout(make_graph())
    assert first == second
    assert list(first) == list(make_graph().nodes)
    assert all(0.0 <= x <= 1.0 and 0.0 <= y <= 1.0 for x, y in first.values())


def test_tasks_left_inventory_grid_right(graph):
    pos = layout(graph)
    for node, (x, _) in pos.items():
        lo, hi = TASK_REGION if node.startswith("task:") else INVENTORY_REGION
        assert lo <= x <= hi, node
    # one column per layer: its 3 adapters top to bottom, then the layer at the foot
    column = [pos[f"adapter:0:{s}"] for s in range(3)] + [pos["layer:0"]]
    assert column == [(0.625, 0.0), (0.625, 0.3333), (0.625, 0.6667), (0.625, 1.0)]
    assert pos["layer:1"] == (0.875, 1.0)


def test_strongly_related_tasks_sit_closer():
    graph = nx.Graph(name="pull")
    for t in "abcd":
        graph.add_node(f"task:{t}", type="task", label=t, num_labels=2)
    graph.add_edge("task:a", "task:b", type="relates", weight=1.0)
    graph.add_edge("task:c", "task:d", type="relates", weight=1.0)
    graph.add_edge("task:b", "task:c", type="relates", weight=0.05)
    pos = layout(graph)

    def dist(u: str, v: str) -> float:
        (x1, y1), (x2, y2) = pos[f"task:{u}"], pos[f"task:{v}"]
        return ((x1 - x2) ** 2 + (y1 - y2) ** 2) ** 0.5

    assert dist("a", "b") < dist("a", "d") and dist("c", "d") < dist("a", "d")


def test_columns_come_from_in_edges_not_names():
    graph = nx.Graph(name="renamed")
    graph.add_node("L-first", type="layer", label="first")
    graph.add_node("L-second", type="layer", label="second")
    for name, layer in [("zeta", "L-second"), ("alpha", "L-first"), ("beta", "L-second"), ("gamma", "L-first")]:
        graph.add_node(name, type="adapter", label=name)
        graph.add_edge(name, layer, type="in", weight=1.0)
    graph.add_node("loose", type="adapter", label="no layer")
    graph.add_node("mystery", type="something", label="?")
    columns = inventory_columns(graph)
    assert columns == [["alpha", "gamma", "L-first"], ["zeta", "beta", "L-second"], ["loose", "mystery"]]
    pos = layout(graph)  # no tasks: the inventory takes the whole width
    assert pos["alpha"][0] == pytest.approx(1 / 6, abs=1e-4) and pos["mystery"] == (0.8333, 1.0)


@pytest.mark.parametrize("n", [0, 1, 2])
def test_few_tasks(n):
    graph = nx.Graph()
    graph.add_nodes_from((f"task:{i}", {"type": "task", "label": str(i)}) for i in range(n))
    pos = layout(graph)
    assert len(pos) == n
    if n == 1:
        assert pos["task:0"] == (0.5, 0.5)
    if n == 2:
        assert pos["task:0"] != pos["task:1"]
