"""``python -m benchmarks.numerics_paths``: a spec trained under the CPU's own and the plainest code paths, the two
loss curves compared and each side's figures kept; the block rendered from the record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from benchmarks.numerics_paths import FIGURES, PLAINEST, main, numerics_block, parting
from benchmarks.quality.planted_suites import planted_suite
from benchmarks.quality.suites import Budget
from tests.quality.guard import UNIVERSE


def test_parting_finds_the_largest_gap_and_the_first_step_past_the_threshold():
    assert parting([1.0, 0.9, 0.8, 0.7], [1.0, 0.9, 0.7995, 0.69]) == {
        "largest": pytest.approx(0.01),
        "first_apart": 4,
        "steps": 4,
    }
    assert parting([1.0, 0.5], [1.0, 0.5])["first_apart"] is None
    with pytest.raises(ValueError):
        parting([1.0], [1.0, 2.0])  # curves of two lengths: the runs did not train alike


def test_the_block_reads_the_record():
    side = {"val_accuracy": 0.9, "test_accuracy": 0.95, "allocation_precision": 0.6}
    record = {
        "spec": "configs/routers/graph.yaml",
        "cpu": "Some CPU (AVX2)",
        "apart": 1e-3,
        "date": "D",
        "versions": {"torch": "T"},
        "seeds": {
            "0": {"curves": {"largest": 2e-6, "first_apart": None, "steps": 1500}, "own": side, "plainest": side},
            "1": {
                "curves": {"largest": 0.31, "first_apart": 412, "steps": 1500},
                "own": side,
                "plainest": {**side, "test_accuracy": 0.9125},
            },
        },
    }
    block = numerics_block(record, "numerics-x")
    assert "| 0 | 0.9000 / 0.9000 | 0.9500 / 0.9500 | 0.6000 / 0.6000 | 2.0e-06 | never |" in block
    assert "| 1 | 0.9000 / 0.9000 | 0.9500 / 0.9125 | 0.6000 / 0.6000 | 3.1e-01 | 412 of 1500 |" in block
    assert "1 of 2 seeds end with the same test accuracy on both sides" in block and "is 0.0375" in block
    assert "Some CPU (AVX2)" in block and "`benchmarks/results/numerics-x.json`" in block


def test_a_tiny_spec_is_measured_on_both_sides(tmp_path: Path, capsys):
    suite = planted_suite(Budget(steps=12, batch_size=16, lrs=(0.03,), shots=(4,), adapt_steps=1), UNIVERSE)
    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump(suite.cell_spec("graph", 0.03, 0)))
    assert main([str(spec), "--name", "tiny", "--seeds", "0", "--results", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "numerics-tiny.json").read_text())
    assert record["sides"] == {"own": {}, "plainest": PLAINEST}
    [seed] = record["seeds"].values()
    assert seed["curves"]["steps"] == 12 and seed["curves"]["largest"] >= 0
    for side in ("own", "plainest"):
        assert set(seed[side]) == set(FIGURES) and 0 <= seed[side]["test_accuracy"] <= 1
    assert "wrote " in capsys.readouterr().out


def test_a_missing_spec_is_a_usage_error(tmp_path: Path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["configs/no-such.yaml", "--name", "x", "--results", str(tmp_path)])
    assert exit_.value.code == 2 and "configs/no-such.yaml: no such spec" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
