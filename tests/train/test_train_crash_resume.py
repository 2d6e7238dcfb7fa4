"""Crash recovery: a run killed hard (fault hooks, a real SIGKILL) and resumed ends with weights
bit-identical (torch.equal on every tensor) to the uninterrupted reference run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from taskgraph.cli import main

FAULT_EXIT = 86


def _command(spec: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "taskgraph", "train", str(spec), "--out", str(out)]


def _train_losses(run: Path) -> list[tuple[int, float]]:
    lines = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in lines if r["split"] == "train"]


def _resume_and_compare(spec: Path, out: Path, reference: Path, same_weights) -> None:  # noqa: ANN001
    assert main(["train", str(spec), "--out", str(out), "--resume"]) == 0
    same_weights(out / "model", reference / "model")
    same_weights(out / "best", reference / "best")
    same_weights(out / "checkpoints" / "step-000024", reference / "checkpoints" / "step-000024")
    assert _train_losses(out) == _train_losses(reference)  # the log was cut back, no step twice
    leftovers = [p.name for p in (out / "checkpoints").iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_fault_at_step_then_resume_is_bit_identical(reference, tmp_path, child_env, same_weights) -> None:  # noqa: ANN001
    out = tmp_path / "run"
    proc = subprocess.run(
        _command(reference.spec, out),
        env=child_env(TASKGRAPH_FAULT_AT_STEP="6"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == FAULT_EXIT, proc.stderr
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step-000004"]
    assert not (out / "model").exists()
    _resume_and_compare(reference.spec, out, reference.run, same_weights)


def test_fault_inside_a_checkpoint_write_then_resume_is_bit_identical(
    reference,
    tmp_path,
    child_env,  # noqa: ANN001
    same_weights,
) -> None:
    out = tmp_path / "run"
    proc = subprocess.run(
        _command(reference.spec, out),
        env=child_env(TASKGRAPH_FAULT_IN_CHECKPOINT="8"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == FAULT_EXIT, proc.stderr
    (partial,) = (out / "checkpoints").glob(".step-000008.stage-*")  # the killed writer's staging folder
    assert (partial / "model.safetensors").is_file() and not (partial / "trainer.json").exists()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [partial.name, "step-000004"]
    _resume_and_compare(reference.spec, out, reference.run, same_weights)


def test_sigkill_after_the_first_checkpoint_then_resume_is_bit_identical(
    reference,
    tmp_path,
    child_env,  # noqa: ANN001
    same_weights,
) -> None:
    out = tmp_path / "run"
    first = out / "checkpoints" / "step-000004"
    child = subprocess.Popen(
        _command(reference.spec, out), env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 240
        while not first.is_dir() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert first.is_dir(), child.stderr.read().decode() if child.poll() is not None else "no checkpoint in time"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=60)
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL  # killed mid-run, not finished
    assert not (out / "train.json").exists()
    _resume_and_compare(reference.spec, out, reference.run, same_weights)
