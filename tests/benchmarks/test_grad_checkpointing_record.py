"""``python -m benchmarks.grad_checkpointing --json OUT``: the record the docs' gradient-checkpointing table is
rendered from holds, per family and router, both runs' figures and their ratios, and the gradients agree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.grad_checkpointing import main


def test_the_record_holds_both_runs_and_their_ratios(tmp_path: Path, capsys) -> None:
    out = tmp_path / "gc.json"
    main(["--families", "llama", "--seq", "64", "--batch", "2", "--rounds", "1", "--json", str(out)])
    record = json.loads(out.read_text())
    assert record["bench"] == "grad-checkpointing" and record["settings"]["seq"] == 64
    assert record["command"].endswith(f"--rounds 1 --json {out}")
    (row,) = record["rows"]
    assert (row["family"], row["router"]) == ("llama", "poly")
    assert row["held_ratio"] == pytest.approx(row["on"]["held_mib"] / row["off"]["held_mib"])
    assert row["held_ratio"] < 0.5  # checkpointing keeps each block's input only
    assert row["max_grad_diff"] == 0.0
    assert f"wrote {out}" in capsys.readouterr().out
