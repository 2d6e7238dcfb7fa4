"""The HTML view in a real browser: headless Chromium loads it, draws every task error-free, and it works.

Marked ``browser``; skipped when Chromium is absent (``.ci/run`` installs it). The page's script records
``data-rendered`` (task shapes with a non-empty box), ``data-shown-edges`` and ``data-errors`` (uncaught
errors) on its root; Chromium's console lines (``:CONSOLE``) show any console message, including
Content-Security-Policy refusals. Interactions are driven by a harness script appended to a copy of the
page whose policy is removed (the policy allows our script only, by its hash).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from benchmarks.browser import find_chromium, load, screenshot
from benchmarks.view import synthetic_run_graph
from taskgraph.export import export_graph, render_html
from taskgraph.export.style import COMMUNITY_PALETTE

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(find_chromium() is None, reason="headless Chromium is not installed (apt-get install chromium)"),
]
PAYLOAD = "</script><script>document.documentElement.setAttribute('data-pwned', '1')</script>"


def driven(graph, harness: str, tmp_path: Path) -> dict:
    """Load ``graph``'s page with ``harness`` run after our script; the JSON the harness left in ``data-test``."""
    text = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", render_html(graph))
    page = tmp_path / "driven.html"
    page.write_text(text.replace("</body>", f"<script>(() => {{ {harness} }})();</script></body>"), encoding="utf-8")
    loaded = load(page)
    assert loaded.console == [] and "data-errors" not in loaded.root, (loaded.console, loaded.root)
    return json.loads(loaded.root["data-test"])


DRIVER = """
const q = (s) => document.querySelectorAll(s).length;
const out = {};
const put = () => document.getElementById("taskgraph").setAttribute("data-test", JSON.stringify(out));
const slide = (id, value) => {
  const input = document.getElementById(id);
  input.value = String(value);
  input.dispatchEvent(new Event("input"));
};
const click = (selector, shift = false) =>
  document.querySelector(selector).dispatchEvent(new MouseEvent("click", { bubbles: true, shiftKey: shift }));
const panel = document.getElementById("panel");
"""


def test_chromium_draws_every_task_without_errors(graph, tmp_path):
    page = export_graph(graph, "html", tmp_path / "graph.html")
    loaded = load(page)
    assert loaded.console == []
    assert "data-errors" not in loaded.root
    assert loaded.root["data-rendered"] == "3"
    assert loaded.root["data-shown-edges"] == "2"  # both relations are among each task's 3 strongest


def test_chromium_runs_no_injected_script(make_graph, tmp_path):
    graph = make_graph(description=PAYLOAD)
    graph.nodes["task:vader-movie"]["label"] = PAYLOAD
    graph.nodes["layer:0"]["label"] = PAYLOAD
    graph.nodes["layer:1"]["module"] = PAYLOAD
    page = export_graph(graph, "html", tmp_path / "graph.html")
    loaded = load(page, fragment="task=" + PAYLOAD)  # the panel of the task with the payload name is open
    assert "data-pwned" not in loaded.dom.split(">", 2)[1]  # the <html> tag: the payload never ran
    assert loaded.console == []
    assert loaded.root["data-rendered"] == "3"
    assert "<script>document" not in loaded.dom  # the name is text in the panel, never markup


def test_the_sliders_hide_and_show_relations(tmp_path):
    graph = synthetic_run_graph(60)
    relations = sum(1 for _, _, d in graph.edges(data=True) if d["type"] == "relates")
    result = driven(
        graph,
        DRIVER
        + """
out.start = [q("#map .edge"), Number(document.getElementById("topk").value)];
slide("topk", 1); out.k1 = q("#map .edge");
slide("topk", 0); out.k0 = q("#map .edge");
slide("topk", document.getElementById("topk").max); out.all = q("#map .edge");
slide("minw", 1000); out.strongest = q("#map .edge");
out.shown = document.getElementById("shown").textContent;
put();
""",
        tmp_path,
    )
    start, default_k = result["start"]
    assert default_k == 3
    assert 60 <= start < relations  # each task's 3 strongest: sparse, and every task has some
    assert 30 <= result["k1"] < start  # each task's strongest: at least T/2 edges
    assert result["k0"] == 0
    assert result["all"] == relations
    assert result["strongest"] == 1  # only the strongest relation reaches the top of the weight slider
    assert result["shown"] == f"1 of {relations} relations shown"


def test_clicking_a_task_opens_its_panel_and_compare_and_skill(graph, tmp_path):
    result = driven(
        graph,
        DRIVER
        + """
click('.node[data-t="0"]');
out.open = [panel.hidden, panel.querySelector("h2").firstChild.textContent, q("#panel table.heat td.w"),
            q("#panel table.heat th.block"), q("#map .node.dim"), q("#map .edge.hot")];
click('.node[data-t="2"]', true);
out.compare = [...panel.querySelectorAll(".col")].map((c) => c.dataset.task);
click('#panel th.skill[data-k="1"]');
out.skill = [panel.querySelector(".col").dataset.skill, q("#panel .bar-row")];
click("#close");
out.closed = [panel.hidden, q("#map .dim")];
put();
""",
        tmp_path,
    )
    # task 0 relates to task 1 only: task 2 dims; their relation is highlighted; 2 modules x 3 skills
    assert result["open"] == [False, "vader-tweets", 2 * 3, 0, 1, 1]
    assert result["compare"] == ["vader-tweets", "rotten-tomatoes"]
    assert result["skill"] == ["1", 2 * 3]  # per module, its top tasks (3 tasks, 2 modules)
    assert result["closed"] == [True, 0]


def test_run_panel_names_modules_groups_layers_and_shows_heads_and_provenance(tmp_path):
    graph = synthetic_run_graph(50, heads=2)
    result = driven(
        graph,
        DRIVER
        + """
window.taskgraphView.select(window.taskgraphView.find("task-0049"), false);
out.badge = panel.querySelector(".badge").textContent;
out.blocks = [...panel.querySelectorAll("th.block")].map((th) => th.textContent);
out.modules = [...panel.querySelectorAll("table.heat")[0].querySelectorAll("th.module")].map((th) => th.title);
out.tables = [...panel.querySelectorAll("table.heat caption")].map((c) => c.textContent);
put();
""",
        tmp_path,
    )
    assert result["badge"] == "zero-shot"  # the last 2 % are adapted, few-shot and zero-shot in turn
    assert result["blocks"] == ["encoder.layer.0", "encoder.layer.1"] * 3  # mean + 2 heads
    assert result["modules"] == [
        "encoder.layer.0.attention.self.query",
        "encoder.layer.0.attention.self.value",
        "encoder.layer.1.attention.self.query",
        "encoder.layer.1.attention.self.value",
    ]
    assert result["tables"] == ["mean over heads", "head 0", "head 1"]


def test_search_jumps_to_a_task(tmp_path):
    result = driven(
        synthetic_run_graph(200),
        DRIVER
        + """
const search = document.getElementById("search");
const before = window.taskgraphView.view.w;
search.value = "task-0123";
search.dispatchEvent(new Event("change"));
out.found = [panel.querySelector("h2").firstChild.textContent, window.taskgraphView.view.w < before];
search.value = "no such task";
search.dispatchEvent(new Event("change"));
out.miss = search.classList.contains("miss");
put();
""",
        tmp_path,
    )
    assert result["found"] == ["task-0123", True]  # selected, and the view zoomed in on it
    assert result["miss"] is True


def test_screenshot_at_200_tasks_is_drawn_with_its_legend(tmp_path):
    page = export_graph(synthetic_run_graph(200), "html", tmp_path / "view.html")
    loaded = load(page)
    assert loaded.console == [] and loaded.root["data-rendered"] == "200"
    assert loaded.dom.count('class="item" data-community=') == 10  # 10 communities of 20 in the legend
    png = screenshot(page, tmp_path / "view.png")
    pixels = matplotlib.image.imread(png)[:, :, :3]  # [H, W, 3] in [0, 1]
    assert pixels.shape[:2] == (900, 1400)
    assert float(pixels.std()) > 0.05  # not blank
    colours = [tuple(int(c[i : i + 2], 16) / 255 for i in (1, 3, 5)) for c in COMMUNITY_PALETTE[:10]]
    for colour in colours:  # every community colour is painted (legend and nodes)
        assert (np.abs(pixels - np.array(colour)).max(axis=-1) < 0.02).sum() > 50, colour


def test_a_thousand_tasks_load_and_draw(tmp_path):
    page = export_graph(synthetic_run_graph(1000), "html", tmp_path / "view.html")
    loaded = load(page)
    assert loaded.console == [] and "data-errors" not in loaded.root
    assert loaded.root["data-rendered"] == "1000"
    assert 1000 <= int(loaded.root["data-shown-edges"]) <= 3 * 1000
