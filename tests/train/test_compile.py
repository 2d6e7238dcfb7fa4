"""``training.compile: true``: the training steps run through ``torch.compile(model)`` and give what eager gives.

The CI test compiles with the ``aot_eager`` backend (``TASKGRAPH_COMPILE_BACKEND``): Dynamo's tracing, graph breaks
and AOTAutograd's joint graph, without inductor's C++ code generation, which takes minutes on a 2-core machine
(about 150 s for one tiny model here). The inductor test runs when ``TASKGRAPH_TEST_INDUCTOR=1``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from torch.testing import assert_close

from taskgraph.spec.models import Spec
from taskgraph.train import train
from tests.train.conftest import spec_dict


def _spec(folder: Path, compile_: bool) -> Spec:
    data = spec_dict(folder, steps=2, eval_every=2, checkpoint_every=2, compile=compile_)
    data["adapters"]["dropout"] = 0.0
    data["model"]["config"].update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return Spec.model_validate(data)


def _train_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str) -> tuple[Path, Path]:
    monkeypatch.setenv("TASKGRAPH_COMPILE_BACKEND", backend)
    monkeypatch.setenv("TASKGRAPH_PROGRESS", "off")
    torch._dynamo.reset()
    runs = []
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for compile_ in (False, True):
            run = tmp_path / f"run-{compile_}"
            train(_spec(tmp_path, compile_), run, base_dir=tmp_path)
            runs.append(run)
    finally:
        torch.set_num_threads(before)
    return runs[0], runs[1]


def _compare(eager: Path, compiled: Path, atol: float) -> None:
    losses = [
        [
            json.loads(line)["loss"]
            for line in (run / "log.jsonl").read_text().splitlines()
            if json.loads(line)["split"] == "train"
        ]
        for run in (eager, compiled)
    ]
    assert len(losses[0]) == 2 and losses[0] == pytest.approx(losses[1], abs=atol)
    weights = [load_file(str(run / "model" / "model.safetensors")) for run in (eager, compiled)]
    assert weights[0].keys() == weights[1].keys()
    moved = 0
    for name, value in weights[0].items():
        assert_close(weights[1][name], value, rtol=0, atol=atol, msg=name)
        moved += name.endswith(".B") and bool(value.abs().max() > 0)
    assert moved  # the adapters trained (B starts at 0)


def test_compiled_steps_equal_eager_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    eager, compiled = _train_both(tmp_path, monkeypatch, "aot_eager")
    _compare(eager, compiled, atol=1e-6)
    recorded = [yaml.safe_load((run / "spec.yaml").read_text())["training"] for run in (eager, compiled)]
    assert "compile" not in recorded[0] and recorded[1]["compile"] is True  # off: dumps (and hashes) as before


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("TASKGRAPH_TEST_INDUCTOR") != "1",
    reason="inductor compiles C++ for minutes on a 2-core CI machine; TASKGRAPH_TEST_INDUCTOR=1 runs it",
)
def test_inductor_compiled_steps_equal_eager_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(torch._inductor.config, "fallback_random", True)  # eager's random numbers (Poly's noise)
    eager, compiled = _train_both(tmp_path, monkeypatch, "inductor")
    _compare(eager, compiled, atol=1e-4)  # fused kernels sum in another order
