"""The whole speed bench on a tiny BERT built from a config: structure of the figures, and sanity.

The real MiniLM run is a benchmark (`taskgraph bench speed`), not a test; this checks that every
row builds, runs, is timed and compared, that peak memory comes back from the subprocesses, and that the
markdown and the JSON written by the CLI hold it all (figures and ratios: the research targets judged on this record
are benchmarks/targets.py's, tested in tests/benchmarks/test_targets.py).
"""

from __future__ import annotations

import argparse
import json
import math

import pytest
import torch

from taskgraph.bench.report import render_markdown
from taskgraph.bench.rows import ROUTER_KINDS, Shape
from taskgraph.bench.speed import BenchError, SpeedSettings, bench_rows, run_speed_bench
from taskgraph.cli import bench as bench_cli

MEMORY_ROWS = ("peft-lora/d0.1", "taskgraph-mhr/d0.1")
SETTINGS = SpeedSettings(
    model="tiny",
    rounds=2,
    warmup=1,
    tasks=4,
    many_tasks=50,
    mhr_heads=4,
    threads=1,
    memory_rows=MEMORY_ROWS,
    memory_steps=1,
    shape=Shape(batch=4, seq=8),
)


@pytest.fixture(scope="module")
def result():
    threads = torch.get_num_threads()
    out = run_speed_bench(SETTINGS)
    assert torch.get_num_threads() == threads  # the bench ran on 1 thread and gave the setting back
    return out


def _finite_positive(x) -> bool:
    return isinstance(x, float) and math.isfinite(x) and x > 0


def test_every_row_is_timed_and_compared(result):
    rows = result["rows"]
    expected = [r.key for r in bench_rows(SETTINGS, 0.1)]
    assert list(rows) == expected
    # two dropout tables with the same rows, the mixed-adapter row only in the dropout-0 one
    for kind in ROUTER_KINDS:
        assert f"taskgraph-{kind}/d0.1" in rows and f"taskgraph-{kind}/d0" in rows
    assert "peft-mixed/d0" in rows and "peft-mixed/d0.1" not in rows
    assert {"taskgraph-poly-t50/d0.1", "taskgraph-mhr-t50/d0.1", "base-infer", "folded-infer"} <= set(rows)
    assert "taskgraph-shared-llora/d0.1" in rows and "taskgraph-shared-llora/d0" not in rows  # the L-LoRA row
    for key, row in rows.items():
        assert len(row["times_s"]) == SETTINGS.rounds, key
        assert all(_finite_positive(t) for t in row["times_s"]), key
        assert _finite_positive(row["median_s"]), key
        ratio = row["ratio"]
        assert ratio["rounds"] == SETTINGS.rounds
        assert 0 < ratio["ci_low"] <= ratio["median"] <= ratio["ci_high"] < math.inf, key
    assert rows["peft-lora/d0.1"]["ratio"]["median"] == 1.0
    assert rows["folded-infer"]["reference"] == "base-infer"
    assert rows["taskgraph-poly/d0"]["reference"] == "peft-lora/d0"
    assert rows["taskgraph-poly-t50/d0.1"]["tasks"] == 50
    assert rows["taskgraph-mhr/d0.1"]["heads"] == 4


def test_peak_memory_from_subprocesses(result):
    rows = result["rows"]
    for key in MEMORY_ROWS:
        assert _finite_positive(rows[key]["memory"]["peak_mb"]), rows[key]["memory"]
    assert _finite_positive(rows["taskgraph-mhr/d0.1"]["memory"]["ratio"])
    assert rows["peft-lora/d0.1"]["memory"]["ratio"] == 1.0
    assert "memory" not in rows["taskgraph-poly/d0.1"]  # not asked for


def test_figures_only_and_environment(result):
    assert "targets" not in result  # no verdicts in the package
    env = result["environment"]
    assert env["threads"] == 1 and env["device"] == "cpu" and env["model_dropout"] == 0.1


def test_markdown_tables(result):
    text = render_markdown(result)
    assert "## Training step, base dropout 0.1" in text and "## Training step, base dropout 0" in text
    assert "## Inference (eval, no grad)" in text and "Targets" not in text
    assert "| taskgraph mhr (H=4) |" in text and "| PEFT Poly n_splits=4 |" in text
    assert "1 torch threads" in text


def test_cli_writes_json(tmp_path, monkeypatch, capsys):
    parser = argparse.ArgumentParser()
    bench_cli.add_parser(parser.add_subparsers())
    out = tmp_path / "speed.json"
    args = parser.parse_args(
        [
            "bench",
            "speed",
            "--model",
            "tiny",
            "--rounds",
            "2",
            "--warmup",
            "0",
            "--batch",
            "2",
            "--seq",
            "4",
            "--tasks",
            "2",
            "--many-tasks",
            "3",
            "--threads",
            "1",
            "--no-memory",
            "--json",
            str(out),
        ]
    )
    assert args.run(args) == 0
    data = json.loads(out.read_text())
    assert data["settings"]["rounds"] == 2 and data["settings"]["memory"] is False
    assert "peft-lora/d0.1" in data["rows"] and "memory" not in data["rows"]["peft-lora/d0.1"]
    assert "# taskgraph bench speed" in capsys.readouterr().out


def test_bad_settings_are_one_clear_error():
    with pytest.raises(BenchError) as err:
        SpeedSettings(model="gpt5", rounds=1, tasks=1).check()
    text = str(err.value)
    assert "model 'gpt5' is unknown" in text and "rounds must be at least 2" in text and "tasks" in text


def test_a_quantized_base_table_puts_every_router_beside_peft_lora_on_the_same_base():
    from dataclasses import replace

    from taskgraph.bench.speed import load_base
    from taskgraph.model.quantize import is_quantized

    settings = replace(SETTINGS, quantize="int8", memory=False, rounds=2, warmup=0)
    assert any(is_quantized(p) for p in load_base(settings, 0.1).parameters())
    out = run_speed_bench(settings)
    rows = out["rows"]
    assert list(rows) == [r.key for r in bench_rows(settings, 0.1)]
    assert {r["kind"] for r in rows.values()} == {"peft-lora", "floor", "taskgraph"}
    # PEFT LoRA on the int8 base and on the unquantized one, the floor and every router, at both dropouts
    assert len(rows) == 2 * (3 + len(ROUTER_KINDS))
    assert [k for k, r in rows.items() if r["full_precision"]] == ["peft-lora-full/d0.1", "peft-lora-full/d0"]
    assert "targets" not in out  # figures only: benchmarks/targets.py judges them (tests/benchmarks/test_targets.py)
    assert out["environment"]["quantize"] == "int8"
    assert "every row's base quantized: int8" in render_markdown(out)
    with pytest.raises(BenchError, match=r"quantize 'int4' is unknown; choose from \['none', 'int8', 'nf4'\]"):
        replace(settings, quantize="int4").check()
