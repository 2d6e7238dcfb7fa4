"""export_graph: the format registry, output-path errors, atomic writes, and the graph contract."""

from __future__ import annotations

import os
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

import taskgraph.export.dot as dot_module
from taskgraph.errors import ExportError, TaskgraphError
from taskgraph.export import EXPORTS, FORMATS, check_graph, export_graph, relations_path
from taskgraph.registry import DuplicateKindError

ALL = ["dot", "gexf", "graphml", "html", "json", "mermaid", "png"]


def test_formats_are_the_sorted_registry():
    assert FORMATS == ALL
    assert EXPORTS.kinds() == ALL


def test_registering_a_format_twice_is_an_error():
    with pytest.raises(DuplicateKindError, match="'dot' is already registered"):
        EXPORTS.register("dot")(lambda graph, out: out)


def test_unknown_format_names_the_choices(graph, tmp_path):
    with pytest.raises(ExportError) as info:
        export_graph(graph, "svg", tmp_path / "g.svg")
    assert "unknown export format 'svg'" in str(info.value)
    assert str(ALL) in str(info.value)
    assert not (tmp_path / "g.svg").exists()


@pytest.mark.parametrize("fmt", ALL)
def test_every_format_writes_one_complete_file(graph, tmp_path, fmt):
    out = tmp_path / "deep" / "er" / f"graph.{fmt}"  # missing folders are created
    assert export_graph(graph, fmt, out) == out
    expected = {out.name} | ({relations_path(out).name} if fmt == "png" else set())
    assert {p.name for p in out.parent.iterdir()} == expected  # no temporary file left behind
    assert out.stat().st_size > 200
    if fmt == "png":
        assert relations_path(out) == tmp_path / "deep" / "er" / "graph-relations.png"
        assert relations_path(out).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_export_accepts_a_string_path(graph, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert export_graph(graph, "json", "g.json") == Path("g.json")
    assert (tmp_path / "g.json").is_file()


def test_out_is_a_directory(graph, tmp_path):
    with pytest.raises(ExportError, match="html export: cannot write .*: it is a directory; give a file path") as info:
        export_graph(graph, "html", tmp_path)
    assert str(tmp_path / "graph.html") in str(info.value)


def test_out_under_a_file(graph, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(ExportError, match="file.txt' is a file, not a folder"):
        export_graph(graph, "dot", blocker / "sub" / "g.dot")
    assert blocker.read_text() == "x"


@pytest.mark.parametrize("out", ["", ".", ".."])
def test_out_is_not_a_file_path(graph, out):
    with pytest.raises(ExportError, match="dot export: cannot write .*: it is (not a file path|a directory)"):
        export_graph(graph, "dot", out)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_out_in_a_read_only_folder(graph, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(ExportError, match="not writable"):
            export_graph(graph, "json", locked / "g.json")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_out_where_nothing_can_be_created(graph):
    """/proc refuses new files even to root: the OS error becomes an ExportError."""
    with pytest.raises(ExportError, match="json export: cannot write '/proc/taskgraph-export-test/g.json'"):
        export_graph(graph, "json", "/proc/taskgraph-export-test/g.json")


def test_a_failing_render_leaves_the_old_file_untouched(graph, tmp_path, monkeypatch):
    out = tmp_path / "g.dot"
    out.write_text("previous")

    def broken(graph: nx.Graph) -> str:
        raise RuntimeError("renderer crashed")

    monkeypatch.setattr(dot_module, "render_dot", broken)
    with pytest.raises(RuntimeError, match="renderer crashed"):
        export_graph(graph, "dot", out)
    assert out.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["g.dot"]


def test_a_failing_write_removes_the_temporary_file(graph, tmp_path, monkeypatch):
    out = tmp_path / "g.json"

    def no_rename(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(ExportError, match="json export: cannot write .*g.json': No space left on device"):
        export_graph(graph, "json", out)
    assert list(tmp_path.iterdir()) == []


def test_export_error_is_a_taskgraph_error():
    assert issubclass(ExportError, TaskgraphError)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda g: g.nodes["task:vader-movie"].update(description=None), "attribute 'description' is NoneType"),
        (lambda g: g.nodes["task:vader-movie"].update(gate_l0=np.float32(0.5)), "convert tensors and numpy"),
        (lambda g: g.nodes["task:vader-movie"].update(gate_l0=float("nan")), "finite numbers"),
        (lambda g: g.nodes["task:vader-movie"].update(gate_l0=[1, 2]), "is list"),
        (lambda g: g.nodes["task:vader-movie"].update(id="x"), "'id' is reserved"),
        (lambda g: g.nodes["task:vader-movie"].update(label=3), "'label' must be a string"),
        (lambda g: g.edges["task:vader-tweets", "task:vader-movie"].update(source="x"), "'source' is reserved"),
        (lambda g: g.edges["task:vader-tweets", "task:vader-movie"].update(weight=float("inf")), "finite"),
        (lambda g: g.add_node(3, type="task", label="three"), "node ids must be strings"),
        (lambda g: g.graph.update(created=None), "graph: attribute 'created'"),
        (lambda g: g.nodes["task:vader-movie"].update(description="bad \ud800"), "not valid Unicode"),
    ],
)
def test_graphs_outside_the_contract_are_refused_with_the_place(graph, tmp_path, mutate, message):
    mutate(graph)
    with pytest.raises(ExportError, match=message.replace("(", r"\(").replace("[", r"\[")):
        export_graph(graph, "json", tmp_path / "g.json")
    assert not (tmp_path / "g.json").exists()


@pytest.mark.parametrize("make", [nx.DiGraph, nx.MultiGraph, dict])
def test_only_undirected_simple_graphs(make):
    with pytest.raises(ExportError, match="undirected networkx.Graph"):
        check_graph(make())


@pytest.mark.parametrize("value", [np.int64(3), np.float64(0.5), np.bool_(True)])
def test_numpy_scalars_are_refused(graph, value):
    graph.nodes["task:vader-movie"]["gate_l0"] = value
    with pytest.raises(ExportError, match=rf"is {type(value).__name__} .*\.item\(\)"):
        check_graph(graph)
