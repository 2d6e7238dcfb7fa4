"""Graph exports: write a task graph as GraphML, GEXF, JSON, DOT, Mermaid, HTML or PNG.

Every export reads the plain networkx graph of ``TaskGraph.to_networkx()`` (the contract is in
:mod:`taskgraph.export.contract`) and is written atomically (temporary file + rename)::

    from taskgraph.export import FORMATS, export_graph
    export_graph(task_graph.to_networkx(), "html", "runs/example/graph.html")

=========  ==================================================================================
format     what is written
=========  ==================================================================================
dot        Graphviz source: shapes and colours by node type, edge pen width = weight
gexf       GEXF 1.2 (Gephi): node labels, typed attributes, edge weights
graphml    GraphML (yEd, Cytoscape, networkx): typed attributes, edge weights
html       one self-contained page: the task map (relations, communities) and each task's routing panel
json       node-link JSON (``networkx.node_link_graph(data, edges="edges")`` reads it back)
mermaid    a Mermaid ``flowchart LR`` with weighted edges
png        the graph drawing at ``out`` **and** the task–task relation heatmap beside it, at
           ``<stem>-relations.png`` (``graph.png`` -> ``graph-relations.png``), never over a file there
           that is not a heatmap taskgraph wrote
=========  ==================================================================================

Each format also has a pure ``render_<format>(graph)`` returning the text (or PNG bytes), and
:func:`load_graph` reads a graphml / gexf / json export back into the exported graph.

A trained run's tasks export as PEFT LoRA folders with :func:`export_peft` (``taskgraph export RUN --format peft``),
imported on first use: it loads torch, and the graph formats do not.
"""

from typing import Any

from taskgraph.export.contract import check_graph
from taskgraph.export.dot import render_dot
from taskgraph.export.formats import EXPORTS, export_graph
from taskgraph.export.html import render_html
from taskgraph.export.mermaid import render_mermaid
from taskgraph.export.networkx_formats import load_graph, render_gexf, render_graphml, render_json
from taskgraph.export.png import (
    check_relations_target,
    relation_heatmap_png,
    relations_path,
    render_png,
    render_relation_heatmap_png,
)
from taskgraph.lazy import lazy_api

FORMATS: list[str] = EXPORTS.kinds()

# name -> the module that defines it, imported when first used (PEP 562: a PEFT export loads torch)
LAZY: dict[str, str] = {
    "PeftExport": "taskgraph.export.peft",
    "export_peft": "taskgraph.export.peft",
}

__all__ = [
    "EXPORTS",
    "FORMATS",
    "PeftExport",
    "check_graph",
    "check_relations_target",
    "export_graph",
    "export_peft",
    "load_graph",
    "relation_heatmap_png",
    "relations_path",
    "render_dot",
    "render_gexf",
    "render_graphml",
    "render_html",
    "render_json",
    "render_mermaid",
    "render_png",
    "render_relation_heatmap_png",
]

__getattr__, __dir__ = lazy_api(__name__, LAZY, globals(), None)
