"""benchmarks/infer_table.py: several bench infer results as one record and one table."""

from __future__ import annotations

from benchmarks.infer_table import infer_block, infer_record


def result(router: str, tasks: int, per_task: float) -> dict:
    def row(label: str, median_s: float, ratio: float) -> dict:
        return {
            "label": label,
            "median_s": median_s,
            "examples_per_s": 512 / median_s,
            "time_vs_mixed": {"median": ratio, "low": ratio - 0.01, "high": ratio + 0.01, "rounds": 8},
        }

    return {
        "settings": {
            "model": "minilm",
            "router": router,
            "tasks": tasks,
            "texts": 512 // tasks,
            "seq": 64,
            "batch": 64,
            "rounds": 8,
            "warmup": 1,
            "threads": 2,
            "seed": 0,
        },
        "environment": {"torch": "2.13.0+cpu"},
        "rows": {
            "mixed": row("routed, mixed-task batches", 1.0, 1.0),
            "per-task": row("routed, one task per batch", per_task, per_task),
            "fold": row("fold each task, then its texts", 1.4, 1.4),
            "prefolded": row("pre-folded models, one task after another", 1.2, 1.2),
        },
    }


def test_one_column_per_configuration_and_the_ranges_computed() -> None:
    record = infer_record([result("poly", 8, 1.25), result("graph", 32, 1.3)])
    assert (
        record["runs"][1]["command"]
        == "taskgraph bench infer --router graph --tasks 32 --texts 16 --rounds 8 --threads 2"
    )
    text = infer_block(record)
    assert "| poly, T = 8 × 64 | graph, T = 32 × 16 |" in text
    assert "| routed, mixed-task batches | 1.000 (1,000 ms, 512 ex/s) | 1.000 (1,000 ms, 512 ex/s) |" in text
    assert "| routed, one task per batch | 1.250 [1.240, 1.260] | 1.300 [1.290, 1.310] |" in text
    assert "one task at a time through the same routed model takes 1.25–1.30 ×" in text
    assert "folding each task first 1.40 ×" in text
    assert "pre-folded (the same batches, the adapters' own cost): 1.04–1.08 ×" in text


def test_a_missing_or_lying_result_is_one_paragraph_and_exit_2(tmp_path, capsys) -> None:
    import json

    from benchmarks.infer_table import main

    out = tmp_path / "record.json"
    assert main([str(tmp_path / "absent.json"), "--out", str(out)]) == 2
    assert "absent.json: cannot read the taskgraph bench infer --json result" in capsys.readouterr().err
    lying = tmp_path / "lying.json"
    lying.write_text(json.dumps({**result("poly", 8, 1.25), "rows": {"mixed": {}}}))
    assert main([str(lying), "--out", str(out)]) == 2
    assert "lying.json: not a taskgraph bench infer result (rows ['mixed']" in capsys.readouterr().err
    assert not out.exists()  # nothing half-written
    good = tmp_path / "good.json"
    good.write_text(json.dumps(result("poly", 8, 1.25)))
    assert main([str(good), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["runs"][0]["settings"]["router"] == "poly"
