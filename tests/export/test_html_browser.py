"""The HTML export in a real browser: headless Chromium loads it and it draws every node, error-free.

Marked ``browser``; skipped when Chromium is absent (CI installs it: see .notes/chromium.md).
The page's script records ``data-rendered`` (node shapes with a non-empty box) and ``data-errors``
(uncaught errors) on its root; Chromium's log on stderr shows any console message, including
Content-Security-Policy refusals.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import networkx as nx
import pytest

from taskgraph.export import export_graph, render_html


def _chromium() -> str | None:
    if os.path.exists("/usr/bin/chromium"):
        return "/usr/bin/chromium"
    return shutil.which("chromium")


CHROMIUM = _chromium()
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (apt-get install chromium)"),
]
ROOT = re.compile(r'<main id="taskgraph"[^>]*>')


def load(page: Path, tmp_path: Path) -> tuple[str, str]:
    """The DOM after the page's script ran, and Chromium's console log lines."""
    done = subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
            "--virtual-time-budget=2000", "--dump-dom", page.resolve().as_uri(),
        ],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return done.stdout, "\n".join(console)


def root_attrs(dom: str) -> dict[str, str]:
    (tag,) = ROOT.findall(dom)
    return dict(re.findall(r'([\w-]+)="([^"]*)"', tag))


def test_chromium_draws_every_node_without_errors(graph, tmp_path):
    page = export_graph(graph, "html", tmp_path / "graph.html")
    dom, console = load(page, tmp_path)
    root = root_attrs(dom)
    assert console == ""
    assert "data-errors" not in root
    assert root["data-rendered"] == str(graph.number_of_nodes()) == "11"


def test_chromium_runs_no_injected_script(make_graph, tmp_path):
    payload = "</script><script>document.documentElement.setAttribute('data-pwned', '1')</script>"
    graph = make_graph(description=payload)
    graph.nodes["layer:0"]["label"] = payload
    page = export_graph(graph, "html", tmp_path / "graph.html")
    dom, console = load(page, tmp_path)
    assert "data-pwned" not in dom.split(">", 2)[1]  # the <html> tag: the payload never ran
    assert console == ""
    assert root_attrs(dom)["data-rendered"] == str(graph.number_of_nodes())


def test_chromium_draws_a_larger_graph(tmp_path):
    """20 tasks, 6 layers x 8 skills: every node drawn, within the virtual-time budget."""
    graph = nx.Graph(name="larger")
    for t in range(20):
        graph.add_node(f"task:t{t}", type="task", label=f"t{t}", num_labels=2)
    for layer in range(6):
        graph.add_node(f"layer:{layer}", type="layer", label=f"layer {layer}")
        for skill in range(8):
            node = f"adapter:{layer}:{skill}"
            graph.add_node(node, type="adapter", label=f"L{layer} S{skill}")
            graph.add_edge(node, f"layer:{layer}", type="in", weight=1.0)
            for t in range(20):
                graph.add_edge(f"task:t{t}", node, type="uses", weight=((t + skill + layer) % 10) / 10)
    for t in range(19):
        graph.add_edge(f"task:t{t}", f"task:t{t + 1}", type="relates", weight=0.5)
    page = export_graph(graph, "html", tmp_path / "graph.html")
    dom, console = load(page, tmp_path)
    assert console == ""
    assert root_attrs(dom)["data-rendered"] == str(graph.number_of_nodes()) == "74"


HARNESS = """<script>
(() => {
  const q = (s) => document.querySelectorAll(s).length;
  const info = document.getElementById("info");
  const out = {};
  document.querySelector('.node[data-i="0"]').dispatchEvent(new MouseEvent("click", { bubbles: true }));
  const title = () => info.querySelector("strong").textContent;
  out.click = [q(".node.dim"), q(".edge.dim"), q(".edge.hot"), q(".node.selected"), title()];
  const edge = document.querySelector('.edge[data-i="EDGE"]');
  edge.dispatchEvent(new MouseEvent("mouseenter"));
  out.edge = [info.querySelector("strong").textContent, info.querySelector("table").textContent];
  edge.dispatchEvent(new MouseEvent("mouseleave"));
  out.back = info.querySelector("strong").textContent;
  document.getElementById("graph").dispatchEvent(new MouseEvent("click", { bubbles: true }));
  out.cleared = [q(".dim"), info.hidden];
  document.querySelector('.node[data-i="1"]').dispatchEvent(new KeyboardEvent("keydown", { key: "Enter" }));
  out.enter = q(".node.dim");
  document.getElementById("taskgraph").setAttribute("data-test", JSON.stringify(out));
})();
</script>"""


def test_chromium_hover_and_click(graph, tmp_path):
    """Our script, driven by synthetic events (a test page: the CSP is removed to let the driver run)."""
    text = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", render_html(graph))
    relates = list(graph.edges).index(("task:vader-tweets", "task:vader-movie"))
    page = tmp_path / "driven.html"
    page.write_text(text.replace("</body>", HARNESS.replace("EDGE", str(relates)) + "</body>"))
    dom, console = load(page, tmp_path)
    assert console == ""
    result = json.loads(html.unescape(root_attrs(dom)["data-test"]))
    # task 0 keeps itself, its related task and its 6 adapters (3 of 11 nodes dim); its 7 of 29 edges stand out
    assert result["click"] == [3, 22, 7, 1, "task:vader-tweets"]
    assert result["edge"][0] == "task:vader-tweets \u2014 task:vader-movie"
    assert result["edge"][1] == "typerelatesweight0.8declaredtrue"
    assert result["back"] == "task:vader-tweets"  # leaving the edge shows the selected task again
    assert result["cleared"] == [0, True]
    assert result["enter"] == 11 - 1 - 2 - 6  # task 1 relates to tasks 0 and 2, uses 6 adapters
