"""The graph every export takes, and the check that it is one.

Exports read a plain undirected :class:`networkx.Graph` as built by ``TaskGraph.to_networkx()``:

- node ids are strings: ``task:<name>``, ``adapter:<layer>:<skill>``, ``layer:<layer>``;
- node attributes are scalars (``str``, ``int``, ``float``, ``bool``; never ``None``): ``type``
  (``task`` | ``adapter`` | ``layer``), ``label`` (display name), on tasks ``num_labels`` and
  optionally ``description``, and any further scalar (gate values of a trained run, ...), which every
  format keeps or shows;
- edge attributes are scalars: ``type`` (``relates`` | ``uses`` | ``in`` | ``next``), ``weight``
  (a float in [0, 1]), optionally ``declared`` on relations;
- graph attribute ``name`` (the spec name).

A few attribute names are taken by the file formats themselves and are refused so that nothing is
lost or overwritten in a round trip: ``id`` on nodes; ``id``, ``source``, ``target`` and ``key`` on
edges.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from taskgraph.errors import ExportError

if TYPE_CHECKING:  # networkx is imported where a graph is built or read, not with the package
    import networkx as nx

SCALARS = (str, int, float, bool)
RESERVED_NODE_ATTRS = frozenset({"id"})
RESERVED_EDGE_ATTRS = frozenset({"id", "source", "target", "key"})


def check_graph(graph: Any) -> nx.Graph:
    """Return ``graph`` if it follows the export contract; :class:`ExportError` saying where otherwise."""
    import networkx as nx

    if not isinstance(graph, nx.Graph) or graph.is_directed() or graph.is_multigraph():
        raise ExportError(
            f"exports take an undirected networkx.Graph (from TaskGraph.to_networkx()); got {type(graph).__name__}"
        )
    _check_attrs("graph", graph.graph, ())
    for node, data in graph.nodes(data=True):
        if not isinstance(node, str):
            raise ExportError(f"node {node!r}: node ids must be strings such as 'task:<name>'")
        _check_attrs(f"node {node!r}", data, RESERVED_NODE_ATTRS)
        for key in ("type", "label"):
            if key in data and not isinstance(data[key], str):
                raise ExportError(f"node {node!r}: attribute {key!r} must be a string, got {data[key]!r}")
    for u, v, data in graph.edges(data=True):
        _check_attrs(f"edge ({u!r}, {v!r})", data, RESERVED_EDGE_ATTRS)
    return graph


def _check_attrs(where: str, attrs: dict[str, Any], reserved: Iterable[str]) -> None:
    for key, value in attrs.items():
        if not isinstance(key, str):
            raise ExportError(f"{where}: attribute names must be strings, got {key!r}")
        if key in reserved:
            raise ExportError(
                f"{where}: attribute name {key!r} is reserved by the export formats; "
                f"reserved names are {sorted(reserved)}"
            )
        if type(value) not in SCALARS:  # exact types: numpy scalars and None are refused
            raise ExportError(
                f"{where}: attribute {key!r} is {type(value).__name__} ({value!r}); exports take "
                f"str, int, float or bool (convert tensors and numpy values with .item())"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise ExportError(f"{where}: attribute {key!r} is {value!r}; exports take finite numbers")
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ExportError(f"{where}: attribute {key!r} is not valid Unicode text") from None


def node_type(graph: nx.Graph, node: str) -> str:
    """The ``type`` of ``node`` (``"other"`` when it has none)."""
    return str(graph.nodes[node].get("type", "other"))


def node_label(graph: nx.Graph, node: str) -> str:
    """The display name of ``node`` (its id when it has no label)."""
    return str(graph.nodes[node].get("label", node))


def edge_weight(data: dict[str, Any]) -> float:
    """The weight of an edge (1.0 when it has none)."""
    return float(data.get("weight", 1.0))


def nodes_of_type(graph: nx.Graph, kind: str) -> list[str]:
    """The nodes of one type, in the graph's order."""
    return [n for n in graph if node_type(graph, n) == kind]


def attribute_lines(data: dict[str, Any], skip: Iterable[str] = ()) -> list[str]:
    """``key: value`` lines of a node's or edge's attributes, floats to 4 significant digits."""
    skipped = set(skip)
    return [f"{k}: {_show(v)}" for k, v in data.items() if k not in skipped]


def _show(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
