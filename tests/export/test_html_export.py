"""HTML: one self-contained page; parsed, checked for URLs, its embedded record compared with the graph."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import networkx as nx

from taskgraph.export import render_html
from taskgraph.export.html import CSS, SCRIPT, csp_hash, embed_json
from taskgraph.export.view_model import view_model

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
    assert "import(" not in SCRIPT and "fetch(" not in SCRIPT and "XMLHttpRequest" not in SCRIPT
    assert ".innerHTML" not in SCRIPT and "insertAdjacentHTML" not in SCRIPT  # text goes in as text only


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
    assert style.strip() == CSS.strip()
    assert f"style-src {csp_hash(style)};" in policy


def test_script_and_style_ship_as_package_assets():
    assets = resources.files("taskgraph.export").joinpath("assets")
    assert assets.joinpath("view.js").read_text(encoding="utf-8") == SCRIPT
    assert assets.joinpath("view.css").read_text(encoding="utf-8") == CSS
    pyproject = (Path(__file__).parents[2] / "pyproject.toml").read_text(encoding="utf-8")
    assert '"taskgraph.export" = ["assets/*.js", "assets/*.css"]' in pyproject  # a wheel carries them


def test_embedded_record_is_the_view_model(graph):
    data = Page(render_html(graph)).data()
    assert data == json.loads(json.dumps(view_model(graph)))
    assert [t["name"] for t in data["tasks"]] == ["vader-tweets", "vader-movie", "rotten-tomatoes"]
    assert [(a, b, w) for a, b, w, *_ in data["relations"]] == [(0, 1, 0.8), (1, 2, 0.1235)]
    assert [m["id"] for m in data["modules"]] == ["layer:0", "layer:1"]
    # uses weights land at routing[task][module][head][skill]
    assert data["routing"][2][1][0][2] == round(graph.edges["task:rotten-tomatoes", "adapter:1:2"]["weight"], 4)
    main = Page(render_html(graph)).find("main")[0]
    assert (main["data-tasks"], main["data-relations"]) == ("3", "2")


def test_script_injection_in_a_description_stays_data(make_graph):
    graph = make_graph(description=f"evil {INJECTION} & <!-- <script>")
    graph.nodes["task:vader-movie"]["label"] = INJECTION
    text = render_html(graph)
    page = Page(text)
    assert len(page.scripts) == 2  # the data block and our script: nothing injected
    assert INJECTION not in text and "<script>alert" not in text
    assert text.count("<script") == 2
    data = page.data()
    assert data["tasks"][0]["attrs"]["description"] == f"evil {INJECTION} & <!-- <script>"
    assert data["tasks"][1]["name"] == INJECTION


def test_embed_json_escapes_markup():
    text = embed_json({"a": "</script><b>&"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"a": "</script><b>&"}


def test_deterministic(make_graph):
    assert render_html(make_graph()) == render_html(make_graph())


def test_text_is_escaped_in_the_markup(tricky):
    text = render_html(tricky)
    page = Page(text)
    assert "<b>bold</b>" not in text
    assert "<title>tricky &quot;spec&quot; &lt;1&gt; \u2014 taskgraph</title>" in text
    assert len(page.scripts) == 2
    data = page.data()
    assert data["tasks"][0]["attrs"]["description"] == tricky.nodes["task:a"]["description"]
    assert data["tasks"][1]["name"] == tricky.nodes["task:b#c"]["label"]


def test_an_empty_graph_is_a_valid_page():
    page = Page(render_html(nx.Graph(name="empty")))
    data = page.data()
    assert data["tasks"] == [] and data["relations"] == [] and data["routing"] is None
    assert len(page.scripts) == 2
