"""Mermaid: a ``flowchart LR`` with one line per node and one line per edge.

Node ids are generated (``task0``, ``adapter3``, ``layer1``, ``n4`` for other types, ...) so that
ids such as ``task:a`` never reach Mermaid's grammar (nor its keywords, such as ``end``). Labels are
quoted with Mermaid's entity codes for ``"``, ``#``, ``<``, ``>``, ``&`` and backticks. Weighted
edges (relations, adapter use) read ``a -- "0.80" --- b``; structural edges (``in``, ``next``) are
dotted, ``a -.- b``. Node types become classes (``classDef``) with the colours of the other formats.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from taskgraph.atomic import write_text
from taskgraph.export.contract import check_graph, edge_weight, node_label, node_type
from taskgraph.export.formats import EXPORTS
from taskgraph.export.style import NODE_STYLES, OTHER_NODE, is_weighted, node_class, node_style

if TYPE_CHECKING:  # networkx is imported where a graph is built or read, not with the package
    import networkx as nx

_ENTITIES = {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "&": "#amp;", "`": "#96;"}


def escape_label(text: str) -> str:
    """``text`` made safe inside a double-quoted Mermaid label (one line)."""
    one_line = " ".join(text.split())
    return "".join(_ENTITIES.get(ch, ch) for ch in one_line)


def mermaid_ids(graph: nx.Graph) -> dict[str, str]:
    """A safe Mermaid id for every node: its type (``n`` for unknown types) and its position."""
    ids: dict[str, str] = {}
    for i, node in enumerate(graph):
        kind = node_class(node_type(graph, node))
        ids[node] = f"{'n' if kind == 'other' else kind}{i}"
    return ids


def render_mermaid(graph: nx.Graph) -> str:
    """Mermaid flowchart text of ``graph``."""
    check_graph(graph)
    ids = mermaid_ids(graph)
    name = " ".join(str(graph.graph.get("name", "taskgraph")).split())
    lines = [f"%% taskgraph: {name}", "flowchart LR"]
    for node in graph:
        opening, closing = node_style(node_type(graph, node)).mermaid
        label = escape_label(node_label(graph, node))
        lines.append(f'  {ids[node]}{opening}"{label}"{closing}')
    for u, v, data in graph.edges(data=True):
        if is_weighted(str(data.get("type", ""))):
            lines.append(f'  {ids[u]} -- "{edge_weight(data):.2f}" --- {ids[v]}')
        else:
            lines.append(f"  {ids[u]} -.- {ids[v]}")
    for kind, style in [*NODE_STYLES.items(), ("other", OTHER_NODE)]:
        members = [ids[n] for n in graph if node_class(node_type(graph, n)) == kind]
        if members:
            lines.append(f"  classDef {kind} fill:{style.fill},stroke:{style.stroke}")
            lines.append(f"  class {','.join(members)} {kind}")
    return "\n".join(lines) + "\n"


@EXPORTS.register("mermaid")
def write_mermaid(graph: nx.Graph, out: Path) -> Path:
    """Write :func:`render_mermaid` to ``out`` atomically."""
    return write_text(out, render_mermaid(graph))
