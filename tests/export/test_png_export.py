"""PNG: the graph drawing and the relation heatmap, with matplotlib's Agg canvas and no global state."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import networkx as nx
import numpy as np
import pytest
import yaml

from taskgraph.cli import main
from taskgraph.errors import ExportError
from taskgraph.export import export_graph, relation_heatmap_png, relations_path, render_png, render_relation_heatmap_png
from taskgraph.export.png import DPI, is_relation_heatmap, png_text, relation_matrix
from tests.conftest import minimal_spec

PNG = b"\x89PNG\r\n\x1a\n"
REPO = Path(__file__).resolve().parents[2]


def pixels(data: bytes) -> np.ndarray:
    assert data[:8] == PNG
    return matplotlib.image.imread(io.BytesIO(data), format="png")  # [H, W, 4]


def test_drawing_size_and_content(graph):
    image = pixels(render_png(graph))
    assert image.shape == (7 * DPI, 11 * DPI, 4)
    colours = image[..., :3].reshape(-1, 3)  # [H*W, 3]
    task_fill = np.array([0x9E, 0xCA, 0xE1]) / 255
    adapter_fill = np.array([0xFD, 0xD4, 0x9E]) / 255
    assert (np.abs(colours - task_fill).max(axis=1) < 0.01).sum() > 3000  # three big task discs (~4200 px)
    assert (np.abs(colours - adapter_fill).max(axis=1) < 0.01).sum() > 900  # six adapter squares (~1200 px)


def test_relation_matrix_numbers(graph):
    tasks = ["task:vader-tweets", "task:vader-movie", "task:rotten-tomatoes"]
    matrix, declared = relation_matrix(graph, tasks)
    expected = np.array([[np.nan, 0.8, np.nan], [0.8, np.nan, 0.123456789], [np.nan, 0.123456789, np.nan]])
    np.testing.assert_array_equal(matrix, expected)
    np.testing.assert_array_equal(declared, [[False, True, False], [True, False, False], [False, False, False]])


def test_heatmap_colours_follow_the_weights(graph):
    """The 0.8 cell is bright (viridis high), the missing pairs are the light-grey 'bad' colour."""
    image = pixels(render_relation_heatmap_png(graph))[..., :3]
    grey = np.array([0xE6, 0xE6, 0xE6]) / 255
    assert (np.abs(image - grey).max(axis=2) < 0.01).sum() > 60000  # 3 diagonal + 4 missing cells (~80000 px)
    bright = matplotlib.colormaps["viridis"](0.8)[:3]
    assert (np.abs(image - bright).max(axis=2) < 0.01).sum() > 24000  # the two 0.8 cells (~32000 px)


def test_export_writes_drawing_and_heatmap_beside_it(graph, tmp_path):
    out = export_graph(graph, "png", tmp_path / "graph.png")
    assert out == tmp_path / "graph.png"
    assert relations_path(out) == tmp_path / "graph-relations.png"
    assert out.read_bytes() == render_png(graph)
    assert relations_path(out).read_bytes() == render_relation_heatmap_png(graph)
    assert relations_path(tmp_path / "plot") == tmp_path / "plot-relations.png"


def test_relation_heatmap_png_writes_one_file(graph, tmp_path):
    out = relation_heatmap_png(graph, tmp_path / "r.png")
    assert out == tmp_path / "r.png" and [p.name for p in tmp_path.iterdir()] == ["r.png"]
    assert pixels(out.read_bytes()).shape[2] == 4


def test_png_is_deterministic(make_graph):
    assert render_png(make_graph()) == render_png(make_graph())
    assert render_relation_heatmap_png(make_graph()) == render_relation_heatmap_png(make_graph())


def test_dollar_signs_and_markup_are_plain_text(tricky):
    assert pixels(render_png(tricky)).shape[0] > 0  # "a$b$c$" would be broken mathtext
    assert pixels(render_relation_heatmap_png(tricky)).shape[0] > 0


@pytest.mark.parametrize("n_tasks", [0, 1, 20])
def test_any_number_of_tasks(n_tasks):
    graph = nx.Graph(name="sized")
    for t in range(n_tasks):
        graph.add_node(f"task:t{t}", type="task", label=f"t{t}", num_labels=2)
    for t in range(n_tasks - 1):
        graph.add_edge(f"task:t{t}", f"task:t{t + 1}", type="relates", weight=0.5)
    assert pixels(render_png(graph)).shape == (7 * DPI, 11 * DPI, 4)
    assert pixels(render_relation_heatmap_png(graph)).shape[0] >= 4.5 * DPI


def test_no_pyplot_and_no_backend_change():
    """In a fresh interpreter: exporting PNGs imports no pyplot and leaves the backend setting alone."""
    code = (
        "import matplotlib, sys, networkx as nx\n"
        "before = matplotlib.rcParams._get_backend_or_none()\n"
        "from taskgraph.export import render_png, render_relation_heatmap_png\n"
        "g = nx.Graph(name='x'); g.add_node('task:a', type='task', label='a', num_labels=2)\n"
        "render_png(g); render_relation_heatmap_png(g)\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n"
        "assert matplotlib.rcParams._get_backend_or_none() == before, 'backend changed'\n"
        "print('ok')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"} | {"PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_the_heatmap_carries_its_identity_and_the_drawing_none(graph, tmp_path):
    assert png_text(render_relation_heatmap_png(graph)) == {"taskgraph": "relation-heatmap"}
    assert png_text(render_png(graph)) == {}
    out = export_graph(graph, "png", tmp_path / "fig.png")
    assert is_relation_heatmap(relations_path(out)) and not is_relation_heatmap(out)
    assert png_text(b"not a png") == {} and png_text(PNG + b"\x00\x00") == {}  # cut short: no chunk, no error


def user_png() -> bytes:
    """A PNG of the user's: a matplotlib figure with no taskgraph text chunk."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1, 1))
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


@pytest.mark.parametrize("kind", ["user png", "taskgraph drawing", "text", "folder", "fifo"])
def test_a_file_beside_out_that_taskgraph_did_not_write_is_never_replaced(graph, tmp_path, kind):
    out, sibling = tmp_path / "fig.png", tmp_path / "fig-relations.png"
    if kind == "folder":
        sibling.mkdir()
    elif kind == "fifo":
        os.mkfifo(sibling)  # reading it to look for the mark would block
    else:
        sibling.write_bytes({"user png": user_png(), "taskgraph drawing": render_png(graph), "text": b"notes"}[kind])
    before = sibling.read_bytes() if sibling.is_file() else None
    with pytest.raises(ExportError) as info:
        export_graph(graph, "png", out)
    message = str(info.value)
    assert repr(str(sibling)) in message and "is not a relation heatmap taskgraph wrote" in message
    assert "give another --out (nothing was written)" in message
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["fig-relations.png"]
    assert (sibling.read_bytes() if sibling.is_file() else None) == before


def test_cli_png_refuses_a_users_file_beside_out_and_replaces_its_own_heatmap(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(minimal_spec()))
    out, sibling = tmp_path / "fig.png", tmp_path / "fig-relations.png"
    sibling.write_bytes(user_png())
    before = sibling.read_bytes()
    assert main(["export", str(spec), "--format", "png", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: png export: ") and err.count("\n") == 1 and "Traceback" not in err
    assert sibling.read_bytes() == before and not out.exists()
    sibling.unlink()
    assert main(["export", str(spec), "--format", "png", "--out", str(out)]) == 0
    first = sibling.read_bytes()
    assert main(["export", str(spec), "--format", "png", "--out", str(out)]) == 0  # its own heatmap: replaced
    assert sibling.read_bytes() == first and is_relation_heatmap(sibling)
