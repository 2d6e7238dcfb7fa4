"""Graphviz DOT: an undirected graph with node shapes and colours by type and weighted edges.

Every id and string is double-quoted with ``\\``, ``"`` and newlines escaped, so any node id or
label is safe. Relations and adapter use are drawn with a pen width growing with their weight and
labelled with it; structural edges (``in``, ``next``) are dashed. Each node's attributes appear as
its tooltip (shown by Graphviz's SVG output) and its type as its ``class``. Render with e.g.
``dot -Tsvg graph.dot -o graph.svg`` (``neato`` or ``fdp`` for large graphs).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from taskgraph.atomic import write_text
from taskgraph.export.contract import attribute_lines, check_graph, edge_weight, node_label, node_type
from taskgraph.export.formats import EXPORTS
from taskgraph.export.style import edge_style, edge_width, is_weighted, node_style

if TYPE_CHECKING:  # networkx is imported where a graph is built or read, not with the package
    import networkx as nx


def quote(text: str) -> str:
    """A double-quoted DOT string holding ``text`` exactly (as a label, Graphviz reads it back)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    return f'"{escaped}"'


def render_dot(graph: nx.Graph) -> str:
    """DOT text of ``graph``."""
    check_graph(graph)
    lines = [f"graph {quote(str(graph.graph.get('name', 'taskgraph')))} {{"]
    lines.append("  graph [rankdir=LR, overlap=false, splines=true, fontname=Helvetica];")
    lines.append("  node [style=filled, fontname=Helvetica, fontsize=11];")
    lines.append("  edge [fontname=Helvetica, fontsize=9];")
    for node, data in graph.nodes(data=True):
        kind = node_type(graph, node)
        look = node_style(kind)
        attrs = {
            "label": quote(node_label(graph, node)),
            "shape": look.dot_shape,
            "fillcolor": quote(look.fill),
            "color": quote(look.stroke),
            "class": quote(kind),
            "tooltip": quote("\n".join([node, *attribute_lines(data)])),
        }
        lines.append(f"  {quote(node)} [{_attr_list(attrs)}];")
    for u, v, data in graph.edges(data=True):
        kind = str(data.get("type", ""))
        weight = edge_weight(data)
        attrs = {"color": quote(edge_style(kind).color), "class": quote(kind)}
        if is_weighted(kind):
            attrs["penwidth"] = f"{edge_width(weight):.2f}"
            attrs["label"] = quote(f"{weight:.2f}")
        else:
            attrs["style"] = "dashed"
        attrs["tooltip"] = quote("\n".join([f"{u} -- {v}", *attribute_lines(data)]))
        lines.append(f"  {quote(u)} -- {quote(v)} [{_attr_list(attrs)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


@EXPORTS.register("dot")
def write_dot(graph: nx.Graph, out: Path) -> Path:
    """Write :func:`render_dot` to ``out`` atomically."""
    return write_text(out, render_dot(graph))


def _attr_list(attrs: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in attrs.items())
