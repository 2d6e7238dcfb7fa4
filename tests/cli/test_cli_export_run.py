"""``taskgraph export RUN``: the learned graph of a run folder or model folder, ``--task``, and error paths."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import networkx as nx
import pytest
import yaml

from taskgraph.cli import main
from taskgraph.export import load_graph, relations_path
from taskgraph.report import run_graph
from tests.conftest import minimal_spec
from tests.report.conftest import LAYERS, build_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_run(tmp_path_factory.mktemp("cli-run") / "RUN")


def export(*args: str) -> int:
    return main(["export", *map(str, args)])


def node_link(path: Path) -> nx.Graph:
    return nx.node_link_graph(json.loads(path.read_text()), edges="edges")


def test_run_folder_exports_the_learned_graph(run_dir, tmp_path, capsys):
    out = tmp_path / "g.json"
    assert export(run_dir, "--format", "json", "--out", out) == 0
    assert f"wrote {out} (json, learned graph: 23 nodes" in capsys.readouterr().out
    got, want = node_link(out), run_graph(run_dir)
    assert dict(got.nodes(data=True)) == dict(want.nodes(data=True))
    assert got.graph["router"] == "poly" and got.nodes["task:a"]["gate_l3"] == 1.0
    uses = [d["weight"] for _, _, d in got.edges(data=True) if d["type"] == "uses"]
    assert len(uses) == 3 * LAYERS * 4 and len(set(uses)) > 10  # learned, not the uniform 1/K


@pytest.mark.parametrize("fmt", ["graphml", "gexf"])
def test_model_folder_exports_the_same_graph(run_dir, tmp_path, fmt):
    out = tmp_path / f"g.{fmt}"
    assert export(run_dir / "model", "--format", fmt, "--out", out) == 0
    got, want = load_graph(out, fmt), run_graph(run_dir)
    assert dict(got.nodes(data=True)) == dict(want.nodes(data=True))
    assert {frozenset((u, v)): d for u, v, d in got.edges(data=True)} == {
        frozenset((u, v)): d for u, v, d in want.edges(data=True)
    }


def test_html_of_a_run_embeds_gates_and_routing(run_dir, tmp_path):
    out = tmp_path / "g.html"
    assert export(run_dir, "--format", "html", "--out", out) == 0
    text = out.read_text()
    start = text.index('id="taskgraph-data">') + len('id="taskgraph-data">')
    data = json.loads(text[start : text.index("</script>", start)])
    a = next(i for i, t in enumerate(data["tasks"]) if t["id"] == "task:a")
    assert data["gates"][a] == [1.0] * LAYERS
    assert {"gate_mean", "open_layers", "routing_entropy", "provenance"} <= set(data["tasks"][a]["attrs"])
    assert len(data["routing"][a]) == LAYERS and len(data["modules"]) == LAYERS  # [module][head][skill]
    assert data["modules"][0]["name"] == "encoder.layer.0.attention.self.query"


@pytest.mark.parametrize("fmt", ["dot", "mermaid", "png"])
def test_every_drawing_format_takes_a_run(run_dir, tmp_path, fmt):
    out = tmp_path / f"g.{fmt}"
    assert export(run_dir, "--format", fmt, "--out", out) == 0
    assert out.stat().st_size > 500
    if fmt == "png":
        assert relations_path(out).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_task_restricts_a_run_to_its_neighbourhood(run_dir, tmp_path, capsys):
    out = tmp_path / "c.json"
    assert export(run_dir, "--format", "json", "--task", "c", "--out", out) == 0
    assert "learned graph around task 'c'" in capsys.readouterr().out
    g = node_link(out)
    assert sorted(n for n, d in g.nodes(data=True) if d["type"] == "task") == ["task:b", "task:c"]
    uses = [(u, v) for u, v, d in g.edges(data=True) if d["type"] == "uses"]
    assert len(uses) == LAYERS * 4 and all("task:c" in e for e in uses)
    assert [(u, v) for u, v, d in g.edges(data=True) if d["type"] == "relates"] in (
        [("task:b", "task:c")],
        [("task:c", "task:b")],
    )
    assert g.graph["focus"] == "c"


def test_task_on_a_spec_file(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(minimal_spec()))
    out = tmp_path / "a.json"
    assert export(spec, "--format", "json", "--task", "a", "--layers", "2", "--out", out) == 0
    g = node_link(out)
    assert sorted(n for n, d in g.nodes(data=True) if d["type"] == "task") == ["task:a", "task:b"]
    assert sum(1 for _, _, d in g.edges(data=True) if d["type"] == "uses") == 2 * 4


def test_unknown_task_exit_2_naming_the_known_ones(run_dir, tmp_path, capsys):
    out = tmp_path / "x.json"
    assert export(run_dir, "--format", "json", "--task", "nope", "--out", out) == 2
    err = capsys.readouterr().err
    assert "unknown task 'nope'" in err and "['a', 'b', 'c']" in err and "Traceback" not in err
    assert not out.exists()


def test_a_folder_that_is_neither_exit_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert export(tmp_path / "empty", "--format", "json", "--out", tmp_path / "x.json") == 2
    err = capsys.readouterr().err
    assert "neither a run folder" in err and "nor a model folder" in err and "Traceback" not in err


def test_layers_with_a_run_exit_2(run_dir, tmp_path, capsys):
    assert export(run_dir, "--format", "json", "--layers", "2", "--out", tmp_path / "x.json") == 2
    assert "--layers is for spec files" in capsys.readouterr().err


def test_a_corrupted_run_exit_2_and_nothing_written(run_dir, tmp_path, capsys):
    broken = shutil.copytree(run_dir, tmp_path / "RUN")
    manifest = broken / "model" / "manifest.json"
    manifest.write_text(manifest.read_text()[:50])
    out = tmp_path / "x.json"
    assert export(broken, "--format", "json", "--out", out) == 2
    err = capsys.readouterr().err
    assert "manifest.json" in err and "not valid JSON" in err and "Traceback" not in err
    assert not out.exists()


def test_peft_is_not_an_export_format_here(run_dir, tmp_path):
    assert export(run_dir, "--format", "peft", "--out", tmp_path / "p") == 2
