"""``python -m benchmarks view``: the synthetic learned graphs it loads, and the bench end to end in Chromium."""

from __future__ import annotations

import json

import pytest

from benchmarks.browser import find_chromium
from benchmarks.cli import main
from benchmarks.view import TASKS_PER_COMMUNITY, render_view_markdown, synthetic_run_graph, time_view
from taskgraph.export import check_graph
from taskgraph.export.view_model import view_model


def test_synthetic_graph_has_the_run_graph_shape():
    graph = check_graph(synthetic_run_graph(100, heads=2))
    kinds = [d["type"] for _, d in graph.nodes(data=True)]
    assert (kinds.count("task"), kinds.count("layer"), kinds.count("adapter")) == (100, 4, 32)
    uses = [d for _, _, d in graph.edges(data=True) if d["type"] == "uses"]
    assert len(uses) == 100 * 4 * 8 and all({"weight_h0", "weight_h1", "gate"} <= set(d) for d in uses)
    v = view_model(graph)
    assert len(v["communities"]) == 100 // TASKS_PER_COMMUNITY  # the planted communities are found
    assert sorted(c["size"] for c in v["communities"]) == [TASKS_PER_COMMUNITY] * 5
    assert [t["attrs"]["provenance"] for t in v["tasks"][-2:]] == ["few-shot", "zero-shot"]  # tasks 98, 99
    assert synthetic_run_graph(1).number_of_nodes() == 1 + 4 + 32  # one task: no relations, still a graph


def test_markdown_states_the_target():
    rows = [
        {
            "tasks": 1000,
            "relations": 7000,
            "ready_ms": 512.4,
            "painted_ms": None,
            "loads": 3,
            "export_s": 2.5,
            "html_bytes": 600_000,
        }
    ]
    text = render_view_markdown({"rows": rows, "target_ms": 2000.0, "target_tasks": 1000})
    assert "| 1,000 | 7,000 | 512 ms | – | 3 | 2.5 s | 586 KiB |" in text
    assert "target: ≤ 2000 ms at T = 1,000: met (512 ms)" in text


@pytest.mark.browser
@pytest.mark.skipif(find_chromium() is None, reason="headless Chromium is not installed")
def test_bench_view_end_to_end(tmp_path, capsys):
    out = tmp_path / "view.json"
    assert main(["view", "--tasks", "30", "--repeats", "1", "--json", str(out)]) == 0
    (row,) = json.loads(out.read_text())["rows"]
    assert row["tasks"] == 30 and row["loads"] == 1 and 0 < row["ready_ms"] < 60_000
    assert "| 30 |" in capsys.readouterr().out
    assert time_view([5], repeats=1)["rows"][0]["tasks"] == 5
