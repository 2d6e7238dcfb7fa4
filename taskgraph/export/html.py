"""HTML: one self-contained page, an inline SVG of the graph plus a little vanilla JavaScript.

The SVG is drawn here, in Python, with the layout of :mod:`taskgraph.export.layout` (seeded,
deterministic), so the picture shows even with scripts off; every node and edge has an SVG
``<title>`` tooltip. The script adds a panel with a node's attributes or an edge's weight on hover,
and highlights a task's neighbourhood on click (or Enter). The graph's node-link data
(``networkx.node_link_data(graph, edges="edges")``) is embedded in
``<script type="application/json" id="taskgraph-data">`` with ``<``, ``>`` and ``&`` written as
``\\u003c``-style escapes, so no text in the graph can close the script element.

Nothing is loaded from anywhere: no URL, no external script or stylesheet, no vendored library, and a
Content-Security-Policy that allows only the page's own style and script (by their SHA-256 hashes).
When the script has run, the root element ``#taskgraph`` carries ``data-rendered="N"`` (the number of
node shapes with a non-empty box) and, if any script error happened, ``data-errors``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
from collections import Counter
from pathlib import Path

import networkx as nx

from taskgraph.atomic import write_text
from taskgraph.export.contract import attribute_lines, check_graph, edge_weight, node_label, node_type, nodes_of_type
from taskgraph.export.formats import EXPORTS
from taskgraph.export.layout import layout
from taskgraph.export.style import (
    NODE_STYLES,
    OTHER_NODE,
    edge_opacity,
    edge_style,
    edge_width,
    is_weighted,
    node_class,
    node_style,
    task_scale,
)
from taskgraph.graph.vocab import ADAPTER, LAYER, TASK

WIDTH, HEIGHT = 1200, 760
PAD_X, PAD_TOP, PAD_BOTTOM = 80, 40, 70

CSS = """\
:root { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; }
body { margin: 0; background: #f6f6f6; }
header { padding: 0.6rem 1rem 0.4rem; }
h1 { font-size: 1.15rem; margin: 0; }
.hint { margin: 0.2rem 0 0; color: #555; font-size: 0.85rem; }
.legend { margin: 0.3rem 0 0; font-size: 0.8rem; color: #444; }
.legend span { display: inline-block; margin-right: 1rem; }
.legend i { display: inline-block; width: 0.8rem; height: 0.8rem; margin-right: 0.3rem;
  vertical-align: -0.1rem; border: 1px solid #555; border-radius: 2px; }
#graph { display: block; width: 100%; height: auto; max-height: 88vh; background: #fff;
  border-top: 1px solid #ddd; border-bottom: 1px solid #ddd; }
.node { cursor: default; transition: opacity 0.15s; }
.node.task { cursor: pointer; }
.node text { font-size: 11px; text-anchor: middle; fill: #333; pointer-events: none; }
.node.task text { font-size: 14px; font-weight: 600; fill: #111; }
.node:focus { outline: none; }
.node:focus > :first-child, .node.selected > :first-child { stroke-width: 4; }
.edge { stroke-linecap: round; transition: opacity 0.15s; }
.edge:hover, .edge.hot { stroke-opacity: 0.9; }
.dim { opacity: 0.1; }
#info { position: fixed; top: 0.6rem; right: 0.6rem; max-width: 30rem; background: #fff;
  border: 1px solid #bbb; border-radius: 4px; padding: 0.5rem 0.7rem; font-size: 0.8rem;
  box-shadow: 0 2px 6px rgba(0, 0, 0, 0.15); }
#info table { border-collapse: collapse; margin-top: 0.3rem; }
#info th { text-align: left; padding-right: 0.7rem; color: #555; font-weight: normal; vertical-align: top; }
#info td { white-space: pre-wrap; overflow-wrap: anywhere; }
"""

SCRIPT = """\
(() => {
  "use strict";
  const root = document.getElementById("taskgraph");
  const errors = [];
  window.addEventListener("error", (event) => {
    errors.push(String(event.message));
    root.setAttribute("data-errors", errors.join("\\n"));
  });
  const data = JSON.parse(document.getElementById("taskgraph-data").textContent);
  const svg = document.getElementById("graph");
  const info = document.getElementById("info");
  const nodeEls = Array.from(svg.querySelectorAll(".node"));
  const edgeEls = Array.from(svg.querySelectorAll(".edge"));
  const index = new Map(data.nodes.map((node, i) => [node.id, i]));
  const neighbours = data.nodes.map(() => []);
  data.edges.forEach((edge, k) => {
    const a = index.get(edge.source);
    const b = index.get(edge.target);
    neighbours[a].push([b, k]);
    neighbours[b].push([a, k]);
  });
  let selected = -1;

  const shown = (value) =>
    typeof value === "number" && !Number.isInteger(value) ? String(Number(value.toPrecision(4))) : String(value);

  function show(title, record) {
    const heading = document.createElement("strong");
    heading.textContent = title;
    const table = document.createElement("table");
    for (const [key, value] of Object.entries(record)) {
      const row = table.insertRow();
      const th = document.createElement("th");
      th.textContent = key;
      row.appendChild(th);
      row.insertCell().textContent = shown(value);
    }
    info.replaceChildren(heading, table);
    info.hidden = false;
  }
  function showNode(i) {
    const { id, ...attrs } = data.nodes[i];
    show(id, attrs);
  }
  function showEdge(k) {
    const { source, target, ...attrs } = data.edges[k];
    show(source + " \\u2014 " + target, attrs);
  }
  function rest() {
    if (selected >= 0) showNode(selected);
    else info.hidden = true;
  }
  function highlight(i) {
    selected = selected === i ? -1 : i;
    const keepNodes = new Set([i]);
    const keepEdges = new Set();
    for (const [j, k] of neighbours[i]) {
      keepNodes.add(j);
      keepEdges.add(k);
    }
    for (const el of nodeEls) {
      const j = Number(el.dataset.i);
      el.classList.toggle("dim", selected >= 0 && !keepNodes.has(j));
      el.classList.toggle("selected", j === selected);
    }
    for (const el of edgeEls) {
      const kept = keepEdges.has(Number(el.dataset.i));
      el.classList.toggle("dim", selected >= 0 && !kept);
      el.classList.toggle("hot", selected >= 0 && kept);
    }
    rest();
  }
  for (const el of nodeEls) {
    const i = Number(el.dataset.i);
    el.addEventListener("mouseenter", () => showNode(i));
    el.addEventListener("mouseleave", rest);
    if (el.classList.contains("task")) {
      el.addEventListener("click", (event) => {
        event.stopPropagation();
        highlight(i);
      });
      el.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          highlight(i);
        }
      });
    }
  }
  for (const el of edgeEls) {
    const k = Number(el.dataset.i);
    el.addEventListener("mouseenter", () => showEdge(k));
    el.addEventListener("mouseleave", rest);
  }
  svg.addEventListener("click", () => {
    if (selected >= 0) highlight(selected);
  });
  const drawn = nodeEls.filter((el) => {
    const box = el.getBBox();
    return box.width > 0 && box.height > 0;
  }).length;
  root.setAttribute("data-rendered", String(drawn));
})();
"""

HINT = (
    "Hover a node or an edge for its attributes and weight; click a task (or focus it and press Enter) "
    "to highlight its neighbourhood, click the background to clear."
)


def embed_json(value: object) -> str:
    """JSON text safe inside a ``<script>`` element: ``<``, ``>`` and ``&`` as unicode escapes."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def csp_hash(source: str) -> str:
    """The Content-Security-Policy source expression allowing exactly ``source``."""
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def render_html(graph: nx.Graph) -> str:
    """The self-contained HTML page of ``graph``."""
    check_graph(graph)
    name = str(graph.graph.get("name", "taskgraph"))
    css = "\n" + CSS + _legend_css()  # element contents, exactly as hashed for the policy
    script = "\n" + SCRIPT
    policy = (
        f"default-src 'none'; style-src {csp_hash(css)}; script-src {csp_hash(script)}; "
        "base-uri 'none'; form-action 'none'"
    )
    data = embed_json(nx.node_link_data(graph, edges="edges"))
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(name)} \u2014 taskgraph</title>",
        f"<style>{css}</style>",
        "</head>",
        "<body>",
        f'<main id="taskgraph" data-nodes="{graph.number_of_nodes()}" data-edges="{graph.number_of_edges()}">',
        f'<header><h1>{_esc(name)}</h1><p class="hint">{HINT}</p>{_legend(graph)}</header>',
        _svg(graph, name),
        '<aside id="info" hidden></aside>',
        "</main>",
        f'<script type="application/json" id="taskgraph-data">{data}</script>',
        f"<script>{script}</script>",
        "</body>",
        "</html>",
        "",
    ])


@EXPORTS.register("html")
def write_html(graph: nx.Graph, out: Path) -> Path:
    """Write :func:`render_html` to ``out`` atomically."""
    return write_text(out, render_html(graph))


def _svg(graph: nx.Graph, name: str) -> str:
    pos = {n: _to_view(p) for n, p in layout(graph).items()}
    index = {n: i for i, n in enumerate(graph)}
    counts = Counter(str(data.get("type", "")) for _, _, data in graph.edges(data=True))
    scale = dict.fromkeys([*NODE_STYLES, "other"], 1.0) | {TASK: task_scale(len(nodes_of_type(graph, TASK)))}
    lines = [
        f'<svg id="graph" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{_esc(name)}: '
        f'{graph.number_of_nodes()} nodes, {graph.number_of_edges()} edges">',
        '<g class="edges">',
    ]
    for k, u, v, data in _drawing_order(graph):
        kind = str(data.get("type", ""))
        style, weight = edge_style(kind), edge_weight(data)
        (x1, y1), (x2, y2) = pos[u], pos[v]
        extra = ' stroke-dasharray="5 4"' if style.dashed else ""
        width = edge_width(weight, 1.0, 6.0) if is_weighted(kind) else 1.0
        opacity = edge_opacity(weight, counts[kind]) if is_weighted(kind) else 0.45
        tip = "\n".join([f"{u} \u2014 {v}", *attribute_lines(data)])
        lines.append(
            f'<line class="edge {_esc(_css_word(kind))}" data-i="{k}" x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" '
            f'stroke="{style.color}" stroke-width="{width:.2f}" stroke-opacity="{opacity:.2f}"{extra}>'
            f"<title>{_esc(tip)}</title></line>"
        )
    lines += ["</g>", '<g class="nodes">']
    for node, data in graph.nodes(data=True):
        kind = node_class(node_type(graph, node))
        x, y = pos[node]
        focus = ' tabindex="0"' if kind == TASK else ""
        tip = "\n".join([node, *attribute_lines(data)])
        lines.append(
            f'<g class="node {kind}" data-i="{index[node]}" transform="translate({x} {y})"{focus}>'
            f"{_shape(kind, scale[kind])}{_label(graph, node, kind, scale[kind])}<title>{_esc(tip)}</title></g>"
        )
    lines += ["</g>", "</svg>"]
    return "\n".join(lines)


def _drawing_order(graph: nx.Graph) -> list[tuple[int, str, str, dict]]:
    """Edges with their data index, structure first and relations last (on top)."""
    edges = [(k, u, v, d) for k, (u, v, d) in enumerate(graph.edges(data=True))]
    return sorted(edges, key=lambda e: (is_weighted(str(e[3].get("type", ""))), e[3].get("type") == "relates", e[0]))


def _shape(kind: str, scale: float) -> str:
    style = node_style(kind)
    paint = f'fill="{style.fill}" stroke="{style.stroke}" stroke-width="1.5"'
    r = round(style.radius * scale, 1)
    if kind == ADAPTER:
        return f'<rect x="{-r}" y="{-r}" width="{2 * r}" height="{2 * r}" rx="2" {paint}/>'
    if kind == LAYER:
        corners = " ".join(
            f"{r * math.cos(math.pi / 3 * i):.2f},{r * math.sin(math.pi / 3 * i):.2f}" for i in range(6)
        )
        return f'<polygon points="{corners}" {paint}/>'
    return f'<circle r="{r}" {paint}/>'


def _label(graph: nx.Graph, node: str, kind: str, scale: float) -> str:
    if kind == ADAPTER:  # many and small: named in their tooltip and the info panel only
        return ""
    return f'<text y="{node_style(kind).radius * scale + 14:.0f}">{_esc(node_label(graph, node))}</text>'


def _legend(graph: nx.Graph) -> str:
    counts = Counter(node_class(node_type(graph, node)) for node in graph)
    items = [f'<span><i class="sw-{k}"></i>{k} ({counts[k]})</span>' for k in [*NODE_STYLES, "other"] if k in counts]
    return f'<p class="legend">{"".join(items)}</p>'


def _legend_css() -> str:
    styles = [*NODE_STYLES.items(), ("other", OTHER_NODE)]
    return "".join(f".legend i.sw-{k} {{ background: {s.fill}; border-color: {s.stroke}; }}\n" for k, s in styles)


def _to_view(p: tuple[float, float]) -> tuple[float, float]:
    x = PAD_X + p[0] * (WIDTH - 2 * PAD_X)
    y = PAD_TOP + p[1] * (HEIGHT - PAD_TOP - PAD_BOTTOM)
    return round(x, 1), round(y, 1)


def _css_word(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in text) or "edge"


def _esc(text: str) -> str:
    return html.escape(text, quote=True)
