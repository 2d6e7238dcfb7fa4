"""The data formats: GraphML, GEXF and node-link JSON, each read back by networkx unchanged.

- GraphML: :func:`networkx.generate_graphml` (typed keys; floats written exactly).
- GEXF 1.2: written here rather than by :func:`networkx.write_gexf`, which stores an edge's ``type``
  attribute in GEXF's own edge direction field (``type="relates"`` is invalid GEXF and is dropped on
  reading) and fails on an attribute that is an int on one node and a float on another. Here every
  attribute keeps its name, and each (name, value type) pair is declared once, so types survive.
  GEXF requires edge ids: :func:`networkx.read_gexf` returns them as an extra ``id`` edge attribute,
  which :func:`load_graph` drops.
- JSON: :func:`networkx.node_link_data` with ``edges="edges"``; read it with
  ``networkx.node_link_graph(data, edges="edges")``.

:func:`load_graph` reads any of the three back into the graph that was exported.
"""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taskgraph.atomic import write_text
from taskgraph.errors import ExportError
from taskgraph.export.contract import check_graph
from taskgraph.export.formats import EXPORTS

if TYPE_CHECKING:  # networkx is imported where a graph is built or read, not with the package
    import networkx as nx

GEXF_NS = "http://www.gexf.net/1.2draft"
GEXF_TYPES = {bool: "boolean", int: "long", float: "double", str: "string"}
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_READER_GRAPH_KEYS = ("node_default", "edge_default", "mode")  # added by the networkx readers


def render_graphml(graph: nx.Graph) -> str:
    """GraphML text of ``graph`` (typed ``<key>`` declarations, undirected)."""
    _check_xml_text(check_graph(graph))
    import networkx as nx

    return "\n".join(nx.generate_graphml(graph, prettyprint=True)) + "\n"


def render_gexf(graph: nx.Graph) -> str:
    """GEXF 1.2 text of ``graph``: node labels, typed attributes, edge weights (deterministic)."""
    _check_xml_text(check_graph(graph))
    root = ET.Element("gexf", {"xmlns": GEXF_NS, "version": "1.2"})
    meta = ET.SubElement(root, "meta")
    ET.SubElement(meta, "creator").text = "taskgraph"
    attrs = {"defaultedgetype": "undirected", "mode": "static"}
    if "name" in graph.graph:
        attrs["name"] = str(graph.graph["name"])
    g = ET.SubElement(root, "graph", attrs)
    node_rows = [(n, {k: v for k, v in d.items() if k != "label"}) for n, d in graph.nodes(data=True)]
    edge_rows = [(u, v, {k: x for k, x in d.items() if k != "weight"}) for u, v, d in graph.edges(data=True)]
    node_keys = _declare(g, "node", [d for _, d in node_rows])
    edge_keys = _declare(g, "edge", [d for _, _, d in edge_rows])
    nodes = ET.SubElement(g, "nodes")
    for node, data in node_rows:
        label = str(graph.nodes[node].get("label", node))
        el = ET.SubElement(nodes, "node", {"id": node, "label": label})
        _attvalues(el, data, node_keys)
    edges = ET.SubElement(g, "edges")
    for i, (u, v, data) in enumerate(edge_rows):
        attrs = {"id": str(i), "source": u, "target": v}
        if "weight" in graph.edges[u, v]:
            attrs["weight"] = _gexf_value(float(graph.edges[u, v]["weight"]))
        _attvalues(ET.SubElement(edges, "edge", attrs), data, edge_keys)
    ET.indent(root)
    return "<?xml version='1.0' encoding='utf-8'?>\n" + ET.tostring(root, encoding="unicode") + "\n"


def render_json(graph: nx.Graph) -> str:
    """Node-link JSON of ``graph`` (``networkx.node_link_data(graph, edges="edges")``), indented."""
    import networkx as nx

    data = nx.node_link_data(check_graph(graph), edges="edges")
    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def load_graph(path: str | os.PathLike[str], fmt: str) -> nx.Graph:
    """Read a ``graphml``, ``gexf`` or ``json`` export back into the graph that was exported.

    Drops what the networkx readers add and the export never had: GEXF edge ids and the
    ``node_default`` / ``edge_default`` / ``mode`` graph attributes.
    """
    import networkx as nx

    try:
        if fmt == "graphml":
            graph = nx.read_graphml(path)
        elif fmt == "gexf":
            graph = nx.read_gexf(path)
            for _, _, data in graph.edges(data=True):
                data.pop("id", None)
        elif fmt == "json":
            graph = nx.node_link_graph(json.loads(Path(path).read_text("utf-8")), edges="edges")
        else:
            raise ExportError(f"cannot load format {fmt!r}; choose from ['gexf', 'graphml', 'json']")
    except (OSError, ValueError, ET.ParseError, nx.NetworkXError, KeyError) as exc:
        raise ExportError(f"cannot read {str(path)!r} as {fmt}: {exc}") from None
    for key in _READER_GRAPH_KEYS:
        graph.graph.pop(key, None)
    return graph


@EXPORTS.register("graphml")
def write_graphml(graph: nx.Graph, out: Path) -> Path:
    """Write :func:`render_graphml` to ``out`` atomically."""
    return write_text(out, render_graphml(graph))


@EXPORTS.register("gexf")
def write_gexf(graph: nx.Graph, out: Path) -> Path:
    """Write :func:`render_gexf` to ``out`` atomically."""
    return write_text(out, render_gexf(graph))


@EXPORTS.register("json")
def write_json(graph: nx.Graph, out: Path) -> Path:
    """Write :func:`render_json` to ``out`` atomically."""
    return write_text(out, render_json(graph))


def _declare(g: ET.Element, cls: str, rows: list[dict[str, Any]]) -> dict[tuple[str, type], str]:
    """Declare each (attribute name, value type) once; returns its GEXF attribute id."""
    keys: dict[tuple[str, type], str] = {}
    for data in rows:
        for name, value in data.items():
            keys.setdefault((name, type(value)), str(len(keys)))
    if keys:
        block = ET.SubElement(g, "attributes", {"class": cls, "mode": "static"})
        for (name, kind), key in keys.items():
            ET.SubElement(block, "attribute", {"id": key, "title": name, "type": GEXF_TYPES[kind]})
    return keys


def _attvalues(el: ET.Element, data: dict[str, Any], keys: dict[tuple[str, type], str]) -> None:
    if data:
        values = ET.SubElement(el, "attvalues")
        for name, value in data.items():
            ET.SubElement(values, "attvalue", {"for": keys[(name, type(value))], "value": _gexf_value(value)})


def _gexf_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def _check_xml_text(graph: nx.Graph) -> None:
    """XML 1.0 cannot hold most control characters: say which attribute has one."""
    items: list[tuple[str, dict[str, Any]]] = [("graph", graph.graph)]
    items += [(f"node {n!r}", {"id": n, **d}) for n, d in graph.nodes(data=True)]
    items += [(f"edge ({u!r}, {v!r})", d) for u, v, d in graph.edges(data=True)]
    for where, data in items:
        for key, value in data.items():
            if isinstance(value, str) and (bad := _XML_FORBIDDEN.search(value)):
                raise ExportError(
                    f"{where}: {key!r} contains the control character U+{ord(bad.group()):04X}, "
                    f"which XML (GraphML, GEXF) cannot hold; remove it or export json"
                )
