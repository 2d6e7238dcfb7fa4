"""Allocation precision against hand-computed cases, permuted incidences and uniform routing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from taskgraph.metrics import (
    allocation_precision,
    layer_allocation_precision,
    match_adapters,
    random_allocation_precision,
    top_share,
)

# 5 tasks over 4 skills, |S_t| = 2, 2, 2, 2, 3
INCIDENCE = np.array([[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1], [1, 0, 0, 1], [1, 0, 1, 1]], dtype=bool)


def permuted(incidence: np.ndarray, layers: int, heads: int, adapters: int, seed: int = 0) -> np.ndarray:
    """Weights ``[T, L, H, K]``: every task spreads 1 evenly over its skills, each skill sitting at a
    different random adapter in every (layer, head); the K - S spare adapters get 0."""
    rng = np.random.default_rng(seed)
    t, s = incidence.shape
    share = incidence / incidence.sum(1, keepdims=True)  # [T, S]
    w = np.zeros((t, layers, heads, adapters))
    for layer in range(layers):
        for head in range(heads):
            w[:, layer, head, rng.permutation(adapters)[:s]] = share
    return w


@pytest.mark.parametrize("adapters,heads", [(4, 1), (6, 1), (5, 2)])
def test_permuted_incidence_is_perfect(adapters, heads):
    w = permuted(INCIDENCE, layers=3, heads=heads, adapters=adapters)
    result = allocation_precision(w, INCIDENCE)
    assert result.precision == 1.0
    assert result.per_layer_head == [[1.0] * heads] * 3
    assert result.random == pytest.approx(np.mean([2, 2, 2, 2, 3]) / adapters)
    assert allocation_precision(torch.tensor(w), torch.tensor(INCIDENCE)).precision == 1.0  # tensors too


@pytest.mark.parametrize("adapters", [4, 7])
def test_uniform_routing_equals_the_random_baseline(adapters):
    # tie rule: all K adapters tie, each holds |S_t|/K of the top-|S_t| slots, whatever the matching
    w = np.full((5, 2, 1, adapters), 1.0 / adapters)
    result = allocation_precision(w, INCIDENCE)
    expected = np.mean([2 / adapters] * 4 + [3 / adapters])
    assert result.random == pytest.approx(expected)
    assert result.precision == pytest.approx(expected)
    assert random_allocation_precision(INCIDENCE, adapters) == pytest.approx(expected)


def test_hand_computed_layer():
    inc = np.array([[1, 0], [0, 1], [1, 1]], dtype=bool)  # skill 0: tasks 0, 2; skill 1: tasks 1, 2
    w = np.array([[0.1, 0.7, 0.2], [0.3, 0.5, 0.2], [0.6, 0.1, 0.3]])  # [T=3, K=3]
    # agree[k, s]: a0 (0.7, 0.9), a1 (0.8, 0.6), a2 (0.5, 0.5); best: s0 -> a1, s1 -> a0 (1.7)
    assert match_adapters(w, inc).tolist() == [1, 0]
    # task 0: top-1 a1 = s0, its skill -> 1; task 1: top-1 a1 = s0, not s1 -> 0;
    # task 2: top-2 a0 (s1), a2 (unmatched) -> 1/2
    assert layer_allocation_precision(w, inc) == pytest.approx((1 + 0 + 0.5) / 3)
    assert random_allocation_precision(inc, 3) == pytest.approx((1 / 3 + 1 / 3 + 2 / 3) / 3)
    result = allocation_precision(np.stack([w, w[:, ::-1]], axis=1)[:, :, None], inc)  # layer 1: adapters reversed
    assert result.per_layer_head == [[pytest.approx(0.5)], [pytest.approx(0.5)]]  # a relabelling changes nothing


def test_top_share_tie_rule():
    # a0 is above the cut; a1 and a2 tie for the one slot left: half a slot each
    assert top_share(np.array([0.5, 0.25, 0.25, 0.0]), np.array([0, 1, 0, 0], bool), 2) == pytest.approx(0.25)
    assert top_share(np.array([0.5, 0.25, 0.25, 0.0]), np.array([1, 1, 0, 0], bool), 2) == pytest.approx(0.75)
    assert top_share(np.array([0.4, 0.4, 0.2]), np.array([1, 0, 0], bool), 1) == pytest.approx(0.5)
    assert top_share(np.array([0.4, 0.4 + 1e-12, 0.2]), np.array([1, 0, 0], bool), 1) == pytest.approx(
        0.5
    )  # within tol
    assert top_share(np.array([0.9, 0.1, 0.0]), np.array([1, 0, 0], bool), 1) == 1.0
    with pytest.raises(ValueError, match="count"):
        top_share(np.array([1.0]), np.array([True]), 0)


def test_fewer_adapters_than_skills_and_bad_shapes():
    w = np.full((5, 1, 1, 3), 1 / 3)  # K = 3 < S = 4
    assert allocation_precision(w, INCIDENCE) is None
    assert layer_allocation_precision(w[:, 0, 0], INCIDENCE) is None
    assert random_allocation_precision(INCIDENCE, 3) is None
    with pytest.raises(ValueError, match="K >= S"):
        match_adapters(w[:, 0, 0], INCIDENCE)
    with pytest.raises(ValueError, match=r"\[T, L, H, K\]"):
        allocation_precision(np.ones((4, 1, 1, 4)), INCIDENCE)  # 4 tasks vs 5
    assert allocation_precision(np.ones((2, 1, 1, 4)) / 4, np.zeros((2, 4), bool)) is None  # no task has a skill
