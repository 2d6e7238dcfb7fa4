"""End to end through the CLI: train (interrupted) → resume → export → predict errors, on a tiny planted spec."""

from __future__ import annotations

import json

import networkx as nx
import yaml

from taskgraph.cli import main
from taskgraph.data import planted_spec


def test_train_resume_export(tmp_path, capsys):
    data = planted_spec(skills=4, tasks=6, held_out=0, steps=8, examples_per_task=60, router="graph")
    data["training"].update(
        {
            "eval_every": 4,
            "checkpoint_every": 2,
            "batch_size": 8,
            "lr": {"adapters": 1e-2, "router": 1e-2, "heads": 1e-2},
        }
    )
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    run = tmp_path / "run"
    assert main(["train", str(spec), "--out", str(run), "--max-steps", "5"]) == 0
    assert "stopped at step 5 of 8" in capsys.readouterr().out
    assert main(["train", str(spec), "--out", str(run)]) == 2  # a run is there: refuse to clobber it
    assert "already holds a run" in capsys.readouterr().err
    assert main(["train", str(spec), "--out", str(run), "--resume"]) == 0
    out = capsys.readouterr().out
    assert "done" in out and "mean" in out
    summary = json.loads((run / "train.json").read_text())
    assert (
        summary["steps"] == 8 and summary["completed"] and summary["resumed_from"] == 5
    )  # --max-steps checkpoints where it stops
    plots = sorted(p.name for p in (run / "plots").iterdir())
    assert "loss.png" in plots and "routing-l0.png" in plots and "val_accuracy.png" in plots

    graphml = tmp_path / "g.graphml"
    assert main(["export", str(run), "--format", "graphml", "--out", str(graphml)]) == 0
    g = nx.read_graphml(graphml)
    tasks = [n for n, d in g.nodes(data=True) if d["type"] == "task"]
    assert len(tasks) == 6
    assert all(f"gate_l{l}" in g.nodes[tasks[0]] for l in range(4))  # 2 layers × query, value
    relates = [d for _, _, d in g.edges(data=True) if d["type"] == "relates"]
    assert len(relates) == 15 and all(0.0 <= d["weight"] <= 1.0 for d in relates)  # learned R, all pairs
    html = tmp_path / "g.html"
    assert main(["export", str(run), "--format", "html", "--task", tasks[0].split(":", 1)[1], "--out", str(html)]) == 0
    assert "http://" not in html.read_text() and "https://" not in html.read_text()
    assert main(["export", str(run), "--format", "json", "--task", "nope", "--out", str(tmp_path / "x.json")]) == 2
    assert "nope" in capsys.readouterr().err
