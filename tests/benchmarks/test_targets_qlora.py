"""The targets of a QLoRA / gradient-checkpointing speed record (``taskgraph bench speed --quantize nf4
--gradient-checkpointing``): taskgraph poly's peak memory ≤ 1.05 × PEFT QLoRA's, every router's step ≤ 1.10 × it,
and every checkpointed row keeping at most half of what its twin's forward keeps (peak memory where the record has
no activation figure, and the target says so)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from benchmarks.cli import main as bench_main
from benchmarks.targets import evaluate
from taskgraph.cli import main

ROUTERS = ("shared", "poly", "graph")


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A tiny-Llama nf4 record with every row and its checkpointed twin, timed 2 rounds (no memory subprocesses:
    the memory figures are set by each test)."""
    out = tmp_path_factory.mktemp("qlora") / "speed.json"
    argv = ["bench", "speed", "--model", "tiny-llama", "--quantize", "nf4", "--gradient-checkpointing", "--routers"]
    argv += [*ROUTERS, "--batch", "4", "--seq", "32", "--tasks", "3", "--threads", "1", "--rounds", "2"]
    assert main([*argv, "--warmup", "0", "--no-memory", "--json", str(out)]) == 0
    return json.loads(out.read_text())


def with_memory(record: dict, peak: dict[str, float], held: dict[str, float] | None) -> dict:
    """``record`` as if its memory had been measured: every row ``peak`` MB (by key prefix, default 100)."""
    out = copy.deepcopy(record)
    out["settings"]["memory"] = True
    for key, row in out["rows"].items():
        name = key.split("/")[0]
        row["memory"] = {"peak_mb": peak.get(name, 100.0)}
        if held is not None:
            row["memory"]["activation_mb"] = held.get(name, 40.0 if name.endswith("-gc") else 100.0)
    return out


def test_time_targets_pair_every_router_with_qlora_with_and_without_checkpointing(record: dict) -> None:
    verdicts = evaluate(record)
    pairs = [(t["numerator"], t["denominator"]) for t in verdicts]
    assert pairs == [
        (f"taskgraph-{kind}{gc}/d0", f"peft-lora{gc}/d0") for kind in ROUTERS for gc in ("", "-gc")
    ]  # no memory measured: no memory targets
    assert all(t["limit"] == 1.1 and t["met"] == (t["value"] <= 1.1) for t in verdicts)


def test_qlora_memory_parity_and_activation_halving_are_judged_on_the_figures(record: dict) -> None:
    measured = with_memory(record, {"taskgraph-poly": 104.0, "taskgraph-poly-gc": 106.0}, {"taskgraph-graph-gc": 60.0})
    verdicts = {t["name"]: t for t in evaluate(measured)}
    parity = [t for name, t in verdicts.items() if name.startswith("QLoRA parity (tiny-llama, 4 x 32)")]
    assert [(t["value"], t["limit"], t["met"]) for t in parity] == [(1.04, 1.05, True), (1.06, 1.05, False)]
    halved = [t for name, t in verdicts.items() if name.startswith("gradient checkpointing halves activation memory")]
    assert len(halved) == 6 and all(t["statistic"] == "activation" for t in halved)
    assert {t["numerator"]: t["met"] for t in halved if not t["met"]} == {"taskgraph-graph-gc/d0": False}
    assert all(t["value"] == pytest.approx(0.4) for t in halved if t["met"])


def test_without_an_activation_figure_checkpointing_is_judged_on_peak_memory_and_says_so(
    record: dict, tmp_path: Path, capsys
) -> None:
    peaks = {key.split("/")[0]: 45.0 for key in record["rows"] if "-gc/" in key}  # every twin 0.45 x its plain row
    verdicts = evaluate(with_memory(record, peaks, None))
    halved = [t for t in verdicts if t["name"].startswith("gradient checkpointing halves")]
    assert len(halved) == 6
    assert all("peak memory (the record has no activation figure)" in t["name"] for t in halved)
    assert all(t["statistic"] == "memory" and t["value"] == pytest.approx(0.45) and t["met"] for t in halved)
    path = tmp_path / "speed.json"
    path.write_text(json.dumps(with_memory(record, peaks, None)))
    assert bench_main(["targets", str(path)]) in (0, 1)
    assert "QLoRA parity (tiny-llama, 4 x 32): taskgraph poly vs PEFT QLoRA" in capsys.readouterr().out
