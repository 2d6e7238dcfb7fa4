"""HTML: one self-contained page, the learned graph a person can read: a task map and a panel per task.

The page embeds the record of :mod:`taskgraph.export.view_model` (tasks placed by stress majorization on
their relations and coloured by community, the relations strongest first with their per-task ranks, the
adapted modules by their real paths grouped by transformer layer, every task's routing and gates) and
draws it with the script ``assets/view.js`` (vanilla JavaScript, SVG; no library):

- the map: each task's ``k`` strongest relations (a slider, :data:`~taskgraph.export.task_map.DEFAULT_TOP_K`
  when the page opens) above a weight threshold (a second slider), wider and darker the stronger; a legend
  of the communities (click one to pick it out); wheel to zoom, drag to pan; labels appear when few enough
  tasks fill the view; a search box jumps to a task;
- click a task (or focus it and press Enter): its panel, with its provenance (trained, few-shot, zero-shot, attached),
  its most related tasks, its routing as a heatmap (adapted module x skill, the mean over heads and each
  head) with the gate of every module, and its attributes; "compare" (or shift-click) puts a second task
  beside it; click a skill (a heatmap column) for the tasks that use it most in each module;
- ``#task=NAME``, ``#task=A&compare=B`` or ``#skill=K`` in the address opens the page that way.

Nothing is loaded from anywhere: no URL, no external script or stylesheet, and a Content-Security-Policy
that allows only the page's own style and script (by their SHA-256 hashes). The data is embedded in
``<script type="application/json" id="taskgraph-data">`` with ``<``, ``>`` and ``&`` written as
``\\u003c``-style escapes, so no text in the graph can close the script element, and the script writes
text only through ``textContent``. When the script has run, the root element ``#taskgraph`` carries
``data-rendered`` (task shapes with a non-empty box), ``data-shown-edges``, ``data-ready-ms`` (the page
clock when the map is drawn and laid out), ``data-painted-ms`` (after the next frame) and, if any script
error happened, ``data-errors``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from taskgraph.atomic import write_text
from taskgraph.export.contract import check_graph
from taskgraph.export.formats import EXPORTS

if TYPE_CHECKING:  # networkx is imported where a graph is built or read, not with the package
    import networkx as nx

ASSETS = "assets"
CSS = resources.files("taskgraph.export").joinpath(ASSETS, "view.css").read_text(encoding="utf-8")
SCRIPT = resources.files("taskgraph.export").joinpath(ASSETS, "view.js").read_text(encoding="utf-8")

HINT = (
    "Click a task for its routing, gates and related tasks (shift-click a second one to compare); click a skill "
    "in the heatmap for the tasks that use it most. Wheel to zoom, drag to pan."
)
CONTROLS = """<div class="controls">
<label>strongest <input type="range" id="topk" min="0" max="1" step="1" value="0" aria-label="relations per task"> \
<output id="topk-out"></output> relations per task</label>
<label>weight \u2265 <input type="range" id="minw" min="0" max="1000" step="1" value="0" aria-label="weight threshold"> \
<output id="minw-out"></output></label>
<span id="shown"></span>
<input type="search" id="search" list="task-names" placeholder="find a task" aria-label="find a task">
<datalist id="task-names"></datalist>
<button id="reset" type="button">fit view</button>
</div>"""


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
    css = "\n" + CSS  # element contents, exactly as hashed for the policy
    script = "\n" + SCRIPT
    policy = (
        f"default-src 'none'; style-src {csp_hash(css)}; script-src {csp_hash(script)}; "
        "base-uri 'none'; form-action 'none'"
    )
    from taskgraph.export.view_model import view_model  # numpy and scipy: imported when a page is drawn

    record = view_model(graph)
    return "\n".join(
        [
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
            f'<main id="taskgraph" data-tasks="{len(record["tasks"])}" data-relations="{len(record["relations"])}">',
            f'<header><h1>{_esc(name)}</h1><span class="meta" id="meta"></span>',
            CONTROLS,
            '<div class="legend" id="legend"></div>',
            f'<p class="meta">{HINT}</p></header>',
            '<div id="body">',
            f'<svg id="map" role="img" aria-label="{_esc(name)}: {len(record["tasks"])} tasks, '
            f'{len(record["relations"])} relations"></svg>',
            '<aside id="panel" hidden></aside>',
            "</div>",
            '<noscript><p class="empty">This view draws with JavaScript, which is off; the same graph is in '
            "taskgraph export --format graphml, dot or png.</p></noscript>",
            "</main>",
            f'<script type="application/json" id="taskgraph-data">{embed_json(record)}</script>',
            f"<script>{script}</script>",
            "</body>",
            "</html>",
            "",
        ]
    )


@EXPORTS.register("html")
def write_html(graph: nx.Graph, out: Path) -> Path:
    """Write :func:`render_html` to ``out`` atomically."""
    return write_text(out, render_html(graph))


def _esc(text: str) -> str:
    return html.escape(text, quote=True)
