"""AdamW groups and the warm-up + cosine schedule."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from taskgraph.spec.models import TrainingSpec
from taskgraph.train.optim import apply_lr, build_optimizer, lr_multiplier


def test_warmup_is_linear_then_cosine_to_near_zero() -> None:
    total, warmup = 20, 4
    m = [lr_multiplier(s, total, warmup) for s in range(total)]
    assert m[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert m[4] == 1.0  # cosine starts at its top
    assert m[12] == pytest.approx(0.5)  # halfway through the 16 cosine steps
    assert m[4 + 12] == pytest.approx(0.5 * (1 + math.cos(math.pi * 12 / 16)))
    assert 0 < m[-1] < 0.01  # the last update still moves
    assert all(a >= b for a, b in zip(m[4:], m[5:]))
    assert lr_multiplier(0, 10, 0) == 1.0
    assert lr_multiplier(25, 20, 4) == 0.0  # past the end: clamped
    assert lr_multiplier(0, 1, 0) == 1.0  # a one-step run trains at the base rate


class _Toy(nn.Module):
    def __init__(self, with_router: bool = True) -> None:
        super().__init__()
        self.adapter, self.router, self.head = nn.Linear(3, 3), nn.Linear(3, 1), nn.Linear(3, 2)
        self.with_router = with_router

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        return {
            "adapters": list(self.adapter.parameters()),
            "router": list(self.router.parameters()) if self.with_router else [],
            "heads": list(self.head.parameters()),
        }


def test_groups_carry_their_learning_rates_and_no_decay_on_the_router() -> None:
    training = TrainingSpec(
        steps=10, warmup_steps=2, weight_decay=0.1, lr={"adapters": 1e-3, "router": 1e-1, "heads": 2e-3}
    )
    optimizer = build_optimizer(_Toy(), training)
    groups = {g["name"]: g for g in optimizer.param_groups}
    assert list(groups) == ["adapters", "router", "heads"]
    assert [groups[n]["lr"] for n in groups] == [1e-3, 1e-1, 2e-3]
    assert [groups[n]["weight_decay"] for n in groups] == [0.1, 0.0, 0.1]
    assert apply_lr(optimizer, 0, training) == 0.5
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([5e-4, 5e-2, 1e-3])
    # a router without parameters (shared, mhr-mu) has no group
    assert [g["name"] for g in build_optimizer(_Toy(with_router=False), training).param_groups] == ["adapters", "heads"]


def test_schedule_matches_torch_lambda_lr() -> None:
    training = TrainingSpec(steps=12, warmup_steps=3)
    ours = build_optimizer(_Toy(), training)
    ref_opt = build_optimizer(_Toy(), training)
    ref = torch.optim.lr_scheduler.LambdaLR(ref_opt, lambda s: lr_multiplier(s, 12, 3))
    for step in range(12):
        apply_lr(ours, step, training)
        assert [g["lr"] for g in ours.param_groups] == pytest.approx([g["lr"] for g in ref_opt.param_groups])
        ref_opt.step()
        ref.step()
