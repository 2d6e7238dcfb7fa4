"""The research targets, judged by ``python -m benchmarks targets`` on the records taskgraph's benches write: every
verdict is the record's own figure against the limit, and a record of no known bench is exit 2."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest

from benchmarks.cli import main as bench_main
from benchmarks.targets import evaluate, evaluate_lm, evaluate_ops, evaluate_scale, evaluate_speed
from taskgraph.bench import ratio_summary
from taskgraph.cli import main


@pytest.fixture(scope="module")
def speed_record(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ``taskgraph bench speed`` record: T = 2, the scaling rows at T = 3, no memory."""
    out = tmp_path_factory.mktemp("speed") / "speed.json"
    argv = ["bench", "speed", "--model", "tiny", "--rounds", "2", "--warmup", "0", "--batch", "2", "--seq", "4"]
    assert main([*argv, "--tasks", "2", "--many-tasks", "3", "--threads", "1", "--no-memory", "--json", str(out)]) == 0
    return out


def test_speed_targets_are_judged_on_the_records_times(speed_record: Path, tmp_path: Path, capsys) -> None:
    verdicts_file = tmp_path / "verdicts.json"
    assert bench_main(["targets", str(speed_record), "--json", str(verdicts_file)]) == 0
    assert "## Targets: taskgraph bench speed" in capsys.readouterr().out
    (verdicts,) = json.loads(verdicts_file.read_text())["targets"].values()
    record = json.loads(speed_record.read_text())
    kinds = {r["router"] for r in record["rows"].values() if r["kind"] == "taskgraph" and r["tasks"] == 2}
    names = [t["name"] for t in verdicts]
    assert sum(n.startswith("routing is free") for n in names) == 2 * len(kinds)
    assert any(n.startswith("private mixed-task") for n in names)
    assert any(n.startswith("poly: T=3 vs T=2") for n in names)
    assert any(n.startswith("merged (folded) inference") for n in names)
    assert not any(t["statistic"] == "memory" for t in verdicts)  # --no-memory: no memory target applies
    llora = next(t for t in verdicts if t["name"].startswith("L-LoRA step vs LoRA step"))
    assert (llora["numerator"], llora["denominator"], llora["limit"]) == (
        "taskgraph-shared-llora/d0.1",
        "taskgraph-shared/d0.1",
        1.2,
    )
    for t in verdicts:
        rows = record["rows"]
        summary = ratio_summary(rows[t["numerator"]]["times_s"], rows[t["denominator"]]["times_s"], seed=0)
        assert t["value"] == (summary.high if t["statistic"] == "ci_high" else summary.median)
        assert math.isfinite(t["value"]) and t["met"] == (t["value"] <= t["limit"])


def test_memory_targets_count_only_measured_rows(speed_record: Path) -> None:
    record = json.loads(speed_record.read_text())
    record["settings"]["memory"] = True
    rows = record["rows"]
    rows["peft-lora/d0.1"]["memory"] = {"peak_mb": 100.0}
    rows["taskgraph-mhr/d0.1"]["memory"] = {"peak_mb": 105.0}
    rows["taskgraph-poly/d0.1"]["memory"] = {"peak_mb": 120.0}
    memory = [t for t in evaluate_speed(record) if t["statistic"] == "memory"]
    measured = {t["numerator"]: (t["value"], t["met"]) for t in memory if t["value"] is not None}
    assert measured == {"taskgraph-mhr/d0.1": (1.05, True), "taskgraph-poly/d0.1": (1.2, False)}
    assert all(t["met"] is None for t in memory if t["value"] is None)


def test_ops_lm_and_scale_targets() -> None:
    ops = {
        "bench": "ops",
        "excess": [
            {"model": "tiny", "row": "taskgraph graph", "worst_ratio": 1.15, "flat": True},
            {"model": "tiny", "row": "taskgraph poly", "worst_ratio": 1.4, "flat": True},
        ],
    }
    assert [t["met"] for t in evaluate_ops(ops)] == [True, False]  # graph ≤ 1.2 (issue 28), a static router ≤ 1.3
    lm: dict[str, Any] = {
        "bench": "lm",
        "settings": {"routers": ["private", "poly"]},
        "train": {"private": {"high": 1.0}, "poly": {"high": 1.06}},
        "generate": {
            "private": {"vs_peft_lora": {"high": 1.1}, "vs_peft_mixed": {"high": 0.6}},
            "poly": {"vs_peft_lora": {"high": 1.2}, "vs_peft_mixed": {"high": 0.9}},
        },
    }
    assert {t["name"]: t["met"] for t in evaluate_lm(lm)} == {
        "train/private vs PEFT LoRA": True,
        "train/poly vs PEFT LoRA": False,
        "generate/private vs PEFT LoRA": True,
        "generate/poly vs PEFT LoRA": False,
        "generate/private vs PEFT mixed (time)": True,  # 0.6 ≤ 1 / 1.5
    }
    rows = [{"tasks": 1_000, "median_s": 0.004, "attach_s": 0.9}, {"tasks": 10_000, "median_s": 0.04}]
    scale = {"bench": "scale", "rows": rows}
    assert [(t["value"], t["met"]) for t in evaluate_scale(scale)] == [
        (pytest.approx(10.0), True),
        (0.04, True),
        (0.9, True),
    ]
    rows[1]["median_s"], rows[0]["attach_s"] = 0.05, 1.0  # issue 28: < 50 ms, < 1 s (strict)
    assert [t["met"] for t in evaluate_scale(scale)] == [False, False, False]
    small = copy.deepcopy(scale)
    small["rows"] = small["rows"][:1]
    assert [t["name"] for t in evaluate(small)] == ["attach one task at T = 1,000, seconds"]  # the step's need 10,000


def test_a_record_of_no_bench_with_targets_is_exit_2(tmp_path: Path, capsys) -> None:
    path = tmp_path / "infer.json"
    path.write_text(json.dumps({"rows": {}}))
    assert bench_main(["targets", str(path)]) == 2
    err = capsys.readouterr().err
    assert "'bench' is None" in err and "['lm', 'ops', 'scale', 'speed']" in err and "Traceback" not in err
    path.write_text("{not json")
    assert bench_main(["targets", str(path)]) == 2
    assert "cannot read the bench record" in capsys.readouterr().err


def test_a_quantized_base_record_is_judged_router_by_router_against_peft_lora_on_that_base():
    import json
    from pathlib import Path

    from benchmarks.targets import evaluate

    record = json.loads(
        (Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "speed-int8-cpu.json").read_text()
    )
    verdicts = evaluate(record)
    kinds = ("shared", "private", "poly", "mhr", "mhr-mu", "graph")
    assert [t["name"].split(":")[1].split(" vs")[0].strip() for t in verdicts] == [f"taskgraph {k}" for k in kinds] * 2
    assert all(
        t["name"].startswith("int8 base: ") and t["limit"] == 1.1 and t["statistic"] == "median" for t in verdicts
    )
    assert all(t["met"] == (t["value"] <= 1.1) for t in verdicts)
    slow = {
        **record,
        "rows": {
            k: {**r, "times_s": [2 * x for x in r["times_s"]]} if k.startswith("taskgraph-graph/") else r
            for k, r in record["rows"].items()
        },
    }
    assert [t["met"] for t in evaluate(slow) if "taskgraph graph " in t["name"]] == [False, False]  # the check can fail
