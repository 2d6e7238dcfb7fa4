"""HTML: one self-contained page; parsed, checked for URLs, its embedded data compared with the graph."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import networkx as nx
import pytest

from taskgraph.export import render_html
from taskgraph.export.html import SCRIPT, csp_hash, embed_json

INJECTION = "</script><script>alert(1)</script>"


class Page(HTMLParser):
    """Every start tag with its attributes, and every script's type and text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._script: dict[str, str | None] | None = None
        self._text: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._script, self._text = dict(attrs), []

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        if self._script is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "script" and self._script is not None:
            self.scripts.append((self._script, "".join(self._text)))
            self._script = None

    def find(self, tag: str, cls: str | None = None) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and (cls is None or (a.get("class") or "").split()[:1] == [cls])]

    def data(self) -> dict:
        (text,) = [t for a, t in self.scripts if a.get("id") == "taskgraph-data"]
        return json.loads(text)


def test_self_contained_no_url_no_external_resource(graph):
    text = render_html(graph)
    page = Page(text)
    assert not re.search(r"https?:", text, re.IGNORECASE)
    assert not re.search(r"(src|href)\s*=", text, re.IGNORECASE)
    assert all("src" not in a and "href" not in a and "xlink:href" not in a for _, a in page.tags)
    assert page.find("link") == [] and page.find("iframe") == [] and page.find("img") == []
    assert len(page.find("svg")) == 1 and text.count("<svg") == 1
    assert "@import" not in text and "url(" not in text


def test_exactly_our_script_runs_and_the_policy_allows_only_it(graph):
    page = Page(render_html(graph))
    executable = [(a, t) for a, t in page.scripts if a.get("type") != "application/json"]
    assert len(executable) == 1 and executable[0][1].strip() == SCRIPT.strip()
    (meta,) = [a for a in page.find("meta") if a.get("http-equiv") == "Content-Security-Policy"]
    policy = meta["content"]
    assert policy.startswith("default-src 'none';")
    assert f"script-src {csp_hash(executable[0][1])};" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    (style,) = re.findall(r"<style>(.*?)</style>", render_html(graph), re.DOTALL)
    assert f"style-src {csp_hash(style)};" in policy


def test_embedded_data_is_the_graph(graph, same_graph):
    data = Page(render_html(graph)).data()
    same_graph(nx.node_link_graph(data, edges="edges"), graph)
    assert data == json.loads(json.dumps(nx.node_link_data(graph, edges="edges")))
    weights = {frozenset((e["source"], e["target"])): e["weight"] for e in data["edges"]}
    assert weights == {frozenset((u, v)): d["weight"] for u, v, d in graph.edges(data=True)}


def test_script_injection_in_a_description_stays_data(make_graph, same_graph):
    graph = make_graph(description=f"evil {INJECTION} & <!-- <script>")
    text = render_html(graph)
    page = Page(text)
    assert len(page.scripts) == 2  # the data block and our script: nothing injected
    assert INJECTION not in text and "<script>alert" not in text
    assert text.count("<script") == 2
    assert page.data()["nodes"][0]["description"] == f"evil {INJECTION} & <!-- <script>"
    same_graph(nx.node_link_graph(page.data(), edges="edges"), graph)


def test_embed_json_escapes_markup():
    text = embed_json({"a": "</script><b>&"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"a": "</script><b>&"}


def test_svg_draws_every_node_and_edge_with_indices_into_the_data(graph):
    page = Page(render_html(graph))
    data = page.data()
    nodes = page.find("g", "node")
    edges = page.find("line", "edge")
    assert sorted(int(a["data-i"]) for a in nodes) == list(range(graph.number_of_nodes()))
    assert sorted(int(a["data-i"]) for a in edges) == list(range(graph.number_of_edges()))
    for a in nodes:
        assert a["class"].split()[1] == data["nodes"][int(a["data-i"])]["type"]
    assert {a["tabindex"] for a in nodes if "task" in a["class"].split()} == {"0"}  # tasks are focusable
    for a in edges:
        edge = data["edges"][int(a["data-i"])]
        assert a["class"].split()[1] == edge["type"]
        if edge["type"] in ("relates", "uses"):
            assert float(a["stroke-width"]) == pytest.approx(1.0 + 5.0 * edge["weight"], abs=0.006)
        else:
            assert a["stroke-dasharray"] == "5 4"
    assert data["nodes"] and int(page.find("main")[0]["data-nodes"]) == graph.number_of_nodes()


def test_tasks_left_of_the_inventory_and_deterministic(make_graph):
    text = render_html(make_graph())
    assert text == render_html(make_graph())
    page = Page(text)
    data = page.data()
    x = {}
    for a in page.find("g", "node"):
        tx, ty = map(float, re.fullmatch(r"translate\(([\d.]+) ([\d.]+)\)", a["transform"]).groups())
        x[data["nodes"][int(a["data-i"])]["id"]] = tx
    tasks = [v for k, v in x.items() if k.startswith("task:")]
    inventory = [v for k, v in x.items() if not k.startswith("task:")]
    assert max(tasks) < min(inventory)


def test_text_is_escaped_in_the_markup(tricky):
    text = render_html(tricky)
    page = Page(text)
    assert "<b>bold</b>" not in text and "&lt;b&gt;bold&lt;/b&gt;" in text
    assert "<title>tricky &quot;spec&quot; &lt;1&gt; \u2014 taskgraph</title>" in text
    assert len(page.scripts) == 2
    assert page.data()["nodes"][0]["description"] == tricky.nodes["task:a"]["description"]


def test_an_empty_graph_is_a_valid_page():
    page = Page(render_html(nx.Graph(name="empty")))
    assert page.data()["nodes"] == [] and page.find("g", "node") == []
