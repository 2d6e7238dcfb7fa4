"""Where each node goes in a drawing (HTML and PNG share it): deterministic, in the unit square.

Tasks take the left part, placed by a seeded :func:`networkx.spring_layout` over their relation
weights, so strongly related tasks sit together. The adapter inventory takes the right part as a
grid read from the graph's structure (not from node names): one column per layer node, holding the
adapters joined to it by an ``in`` edge in graph order, with the layer node at the foot of its
column. Adapters without a layer and nodes of unknown type make one extra column.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from taskgraph.export.contract import node_type, nodes_of_type
from taskgraph.graph.vocab import ADAPTER, LAYER, TASK

if TYPE_CHECKING:  # networkx is imported where a graph is built or read, not with the package
    import networkx as nx

Position = tuple[float, float]

TASK_REGION = (0.0, 0.42)  # x range of the tasks when there is an inventory beside them
INVENTORY_REGION = (0.5, 1.0)  # x range of the adapter / layer grid
SEED = 0


def layout(graph: nx.Graph) -> dict[str, Position]:
    """Positions ``(x, y)`` in [0, 1]² for every node of ``graph``; y grows downwards.

    Args:
        graph: an export graph (see :mod:`taskgraph.export.contract`).
    """
    tasks = nodes_of_type(graph, TASK)
    columns = inventory_columns(graph)
    task_region = TASK_REGION if columns else (0.0, 1.0)
    inventory_region = INVENTORY_REGION if tasks else (0.0, 1.0)
    positions = _place_tasks(graph, tasks, task_region)
    positions.update(_place_columns(columns, inventory_region))
    return {n: positions[n] for n in graph}


def inventory_columns(graph: nx.Graph) -> list[list[str]]:
    """Columns of the inventory grid: each layer's adapters then the layer; leftovers last."""
    order = {n: i for i, n in enumerate(graph)}
    placed: set[str] = set()
    columns: list[list[str]] = []
    for layer in nodes_of_type(graph, LAYER):
        adapters = sorted(
            (n for n in graph[layer] if node_type(graph, n) == ADAPTER and n not in placed),
            key=order.__getitem__,
        )
        placed.update(adapters)
        columns.append(adapters + [layer])
    leftovers = [n for n in graph if node_type(graph, n) not in (TASK, LAYER) and n not in placed]
    if leftovers:
        columns.append(leftovers)
    return columns


def _place_tasks(graph: nx.Graph, tasks: list[str], region: tuple[float, float]) -> dict[str, Position]:
    if not tasks:
        return {}
    if len(tasks) == 1:
        return {tasks[0]: (sum(region) / 2, 0.5)}
    import networkx as nx

    sub = nx.Graph()
    sub.add_nodes_from(tasks)
    sub.add_edges_from(
        (u, v, {"weight": float(d.get("weight", 1.0))}) for u, v, d in graph.subgraph(tasks).edges(data=True)
    )
    raw = nx.spring_layout(sub, weight="weight", seed=SEED, iterations=200)
    xs = {n: float(p[0]) for n, p in raw.items()}
    ys = {n: float(p[1]) for n, p in raw.items()}
    x_lo, x_hi, y_lo, y_hi = min(xs.values()), max(xs.values()), min(ys.values()), max(ys.values())
    return {n: (_rescale(xs[n], x_lo, x_hi, region), _rescale(ys[n], y_lo, y_hi, (0.0, 1.0))) for n in tasks}


def _place_columns(columns: list[list[str]], region: tuple[float, float]) -> dict[str, Position]:
    positions: dict[str, Position] = {}
    lo, hi = region
    for i, column in enumerate(columns):
        x = lo + (hi - lo) * (i + 0.5) / len(columns)
        rows = len(column)
        for j, node in enumerate(column):
            y = 0.5 if rows == 1 else j / (rows - 1)
            positions[node] = (round(x, 4), round(y, 4))
    return positions


def _rescale(value: float, lo: float, hi: float, region: tuple[float, float]) -> float:
    a, b = region
    if hi - lo < 1e-12:
        return round((a + b) / 2, 4)
    return round(a + (b - a) * (value - lo) / (hi - lo), 4)
