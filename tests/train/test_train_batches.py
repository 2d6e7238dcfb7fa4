"""The seeded multi-task sampler: probabilities, epochs, state (the collator and encoding: tests/data)."""

from __future__ import annotations

import json

import pytest
import torch

from taskgraph.errors import CheckpointError
from taskgraph.train.batches import MultiTaskSampler, sampling_probabilities


def test_sampling_probabilities_closed_forms() -> None:
    sizes = [10, 40, 90]
    assert sampling_probabilities(sizes, "uniform").tolist() == pytest.approx([1 / 3] * 3)
    assert sampling_probabilities(sizes, "proportional").tolist() == pytest.approx([1 / 14, 4 / 14, 9 / 14])
    # p ∝ n^(1/2): sqrt(10) : sqrt(40) : sqrt(90) = 1 : 2 : 3
    assert sampling_probabilities(sizes, "temperature", 2.0).tolist() == pytest.approx([1 / 6, 2 / 6, 3 / 6])
    assert sampling_probabilities(sizes, "temperature", 1.0).tolist() == pytest.approx([1 / 14, 4 / 14, 9 / 14])
    with pytest.raises(ValueError, match="choose from"):
        sampling_probabilities(sizes, "square")
    with pytest.raises(ValueError, match="at least one"):
        sampling_probabilities([3, 0], "uniform")


def test_sampler_frequencies_follow_probabilities() -> None:
    sampler = MultiTaskSampler([10, 40, 90], "temperature", 2.0, seed=3)
    draws = [t for t, _ in sampler.sample(6000)]
    freq = torch.bincount(torch.tensor(draws), minlength=3).double() / len(draws)
    assert freq.tolist() == pytest.approx([1 / 6, 2 / 6, 3 / 6], abs=0.02)


def test_every_row_once_per_epoch_and_epochs_differ() -> None:
    sampler = MultiTaskSampler([5, 7], "uniform", 1.0, seed=0)
    rows: dict[int, list[int]] = {0: [], 1: []}
    while len(rows[0]) < 15:
        for task, row in sampler.sample(4):
            rows[task].append(row)
    epochs = [rows[0][i : i + 5] for i in (0, 5, 10)]
    assert all(sorted(e) == [0, 1, 2, 3, 4] for e in epochs)
    assert len({tuple(e) for e in epochs}) > 1  # a new order each epoch
    assert sampler.epoch[0] >= 2


def test_sampler_state_roundtrip_through_json_continues_identically() -> None:
    a = MultiTaskSampler([5, 7, 3], "proportional", 1.0, seed=11)
    for _ in range(9):
        a.sample(4)
    state = json.loads(json.dumps(a.state_dict()))
    expected = [a.sample(4) for _ in range(6)]
    b = MultiTaskSampler([5, 7, 3], "proportional", 1.0, seed=11)
    b.load_state_dict(state)
    assert [b.sample(4) for _ in range(6)] == expected
    fresh = MultiTaskSampler([5, 7, 3], "proportional", 1.0, seed=11)
    assert [fresh.sample(4) for _ in range(6)] != expected  # the state, not the seed, decides


def test_sampler_rejects_state_of_other_data() -> None:
    state = MultiTaskSampler([5, 7], "uniform", 1.0, seed=0).state_dict()
    with pytest.raises(CheckpointError, match="data changed"):
        MultiTaskSampler([5, 8], "uniform", 1.0, seed=0).load_state_dict(state)
    with pytest.raises(CheckpointError, match="malformed"):
        MultiTaskSampler([5, 7], "uniform", 1.0, seed=0).load_state_dict({**state, "generator": "not base64!"})
