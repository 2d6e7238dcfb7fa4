"""``taskgraph bench scale`` at toy sizes: the table, the CLI entry points (timings not asserted)."""

from __future__ import annotations

import json
from pathlib import Path

from taskgraph.bench.scale import ScaleSettings, render_scale, run_scale
from taskgraph.cli import main


def test_run_scale_rows_and_table():
    settings = ScaleSettings(tasks=(10, 70), layers=2, skills=2, rounds=2, warmup=0, threads=1, memory=False)
    result = run_scale(settings)
    rows = result["rows"]
    assert [r["tasks"] for r in rows] == [10, 70]
    assert rows[0]["dense"] and rows[0]["relation_edges"] == 45 and rows[0]["refresh_s"] is None
    assert not rows[1]["dense"] and rows[1]["relation_edges"] <= 70 * 8 and rows[1]["refresh_s"] > 0
    assert all(len(r["times_s"]) == 2 and r["median_s"] > 0 and r["attach_s"] > 0 for r in rows)
    assert "targets" not in result and result["bench"] == "scale"  # figures only: no verdicts in the package
    table = render_scale(result)
    assert "| 10 | 45 |" in table and "all pairs" in table and "1 threads" in table and "attach one task" in table


def test_cli_writes_json(tmp_path: Path):
    out = tmp_path / "scale.json"
    argv = [
        "bench",
        "scale",
        "--tasks",
        "10",
        "--rounds",
        "1",
        "--warmup",
        "0",
        "--threads",
        "1",
        "--no-memory",
        "--json",
        str(out),
    ]
    assert main(argv) == 0
    data = json.loads(out.read_text())
    assert data["settings"]["tasks"] == [10] and data["rows"][0]["tasks"] == 10
