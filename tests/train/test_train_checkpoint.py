"""Checkpoint pieces: optimizer state through safetensors + JSON, RNG states, atomic folders, pruning."""

from __future__ import annotations

import copy
import json
import random

import numpy as np
import pytest
import safetensors.torch
import torch
from torch import nn

from taskgraph.errors import CheckpointError
from taskgraph.spec import load_spec
from taskgraph.spec.models import TrainingSpec
from taskgraph.train.optim import build_optimizer
from taskgraph.train.run_checkpoint import (
    TrainerState,
    capture_rng,
    list_checkpoints,
    load_optimizer_state,
    optimizer_tensors,
    read_checkpoint,
    restore_rng,
    write_checkpoint,
)


class _Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.adapter, self.router, self.head = nn.Linear(4, 4), nn.Linear(4, 2), nn.Linear(4, 3)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        return {
            "adapters": list(self.adapter.parameters()),
            "router": list(self.router.parameters()),
            "heads": list(self.head.parameters()),
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.adapter(x))).sum() + self.router(x).pow(2).sum()


def _steps(model: _Toy, optimizer: torch.optim.Optimizer, seeds: range) -> None:
    for seed in seeds:
        x = torch.randn(5, 4, generator=torch.Generator().manual_seed(seed))
        optimizer.zero_grad()
        model(x).backward()
        optimizer.step()


def test_optimizer_state_roundtrip_continues_bit_identically() -> None:
    training = TrainingSpec(weight_decay=0.01)
    a = _Toy()
    opt_a = build_optimizer(a, training)
    _steps(a, opt_a, range(3))
    tensors, meta = optimizer_tensors(opt_a)
    assert set(tensors) >= {"state.0.exp_avg", "state.0.exp_avg_sq", "state.0.step"}
    tensors = safetensors.torch.load(safetensors.torch.save(tensors))  # through the file format
    meta = json.loads(json.dumps(meta))  # and through JSON
    b = copy.deepcopy(a)
    opt_b = build_optimizer(b, training)
    load_optimizer_state(opt_b, tensors, meta, "test")
    _steps(a, opt_a, range(3, 6))
    _steps(b, opt_b, range(3, 6))
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    fresh = copy.deepcopy(b)
    with pytest.raises(CheckpointError, match="parameter groups"):
        load_optimizer_state(
            build_optimizer(fresh, training), tensors, {**meta, "param_groups": meta["param_groups"][:2]}, "test"
        )


def test_rng_states_roundtrip_through_json() -> None:
    state = json.loads(json.dumps(capture_rng(cuda=False)))
    first = (torch.rand(3), random.random(), np.random.rand(2))
    restore_rng(state, cuda=False)
    again = (torch.rand(3), random.random(), np.random.rand(2))
    assert torch.equal(first[0], again[0]) and first[1] == again[1] and np.array_equal(first[2], again[2])


class _Saved(_Toy):
    """A model with a save_pretrained that writes a marker file (the real one is tested in tests/model)."""

    def save_pretrained(self, folder) -> None:  # noqa: ANN001
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model.safetensors").write_bytes(b"weights")


def test_checkpoints_are_renamed_into_place_and_pruned(make_spec, tmp_path) -> None:  # noqa: ANN001
    spec = load_spec(make_spec())
    model = _Saved()
    optimizer = build_optimizer(model, spec.training)
    _steps(model, optimizer, range(1))
    run = tmp_path / "run"
    for step in (4, 8, 12):
        state = TrainerState(step=step, rng=capture_rng(cuda=False), sampler={"any": "json"})
        folder = write_checkpoint(run, model, optimizer, state, spec, keep=2)
        assert folder.name == f"step-{step:06d}"
    assert [p.name for p in list_checkpoints(run)] == ["step-000008", "step-000012"]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-000008", "step-000012"]
    record = json.loads((run / "checkpoints" / "step-000012" / "trainer.json").read_text())
    assert record["step"] == 12 and record["scheduler"] == {"step": 12, "total": 24, "warmup": 2}
    assert record["optimizer"]["file"] == "optimizer.safetensors"
    # no manifest.json (this toy's save_pretrained writes none): reading says so
    with pytest.raises(CheckpointError, match="manifest.json"):
        read_checkpoint(run / "checkpoints" / "step-000012", spec)
    # a record copied into another step's folder is caught
    (run / "checkpoints" / "step-000099").mkdir()
    (run / "checkpoints" / "step-000099" / "trainer.json").write_text(json.dumps({**record, "format": "other"}))
    with pytest.raises(CheckpointError, match="not a taskgraph trainer record"):
        read_checkpoint(run / "checkpoints" / "step-000099", spec)
