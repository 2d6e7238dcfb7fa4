"""AUROC (Mann–Whitney, ties 1/2) against brute-force counts and hand examples; pair AUROC of [T, T] scores."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from taskgraph.metrics import auroc, pair_auroc, pair_counts, pair_index, pair_means, random_pair_auroc


def brute_force(scores, labels) -> float:
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def test_auroc_hand_examples():
    assert auroc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0  # perfect
    assert auroc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 0.0  # inverted
    assert auroc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]) == 0.5  # all tied
    assert auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)  # 3 of 4 pairs ordered
    assert auroc([1, 1, 2], [0, 1, 1]) == pytest.approx(0.75)  # one tie (1/2) and one win
    assert auroc(torch.tensor([0.3, 0.7]), torch.tensor([False, True])) == 1.0


def test_auroc_matches_brute_force_with_many_ties():
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(2, 30))
        scores = rng.integers(0, 4, n).astype(float)  # few values: many ties
        labels = rng.random(n) < 0.4
        if labels.all() or not labels.any():
            continue
        assert auroc(scores, labels) == pytest.approx(brute_force(scores, labels))


def test_auroc_empty_class_and_errors():
    assert auroc([0.1, 0.2], [1, 1]) is None
    assert auroc([0.1, 0.2], [0, 0]) is None
    assert auroc([], []) is None
    with pytest.raises(ValueError, match="length"):
        auroc([0.1, 0.2], [1])
    with pytest.raises(ValueError, match="finite"):
        auroc([0.1, float("nan")], [0, 1])


GROUPS = np.array([0, 0, 1, 1, 1])  # tasks 0-1 and 2-4 related within their group
TRUTH = (GROUPS[:, None] == GROUPS[None, :]) & ~np.eye(5, dtype=bool)


def test_pair_auroc_over_unordered_pairs():
    perfect = TRUTH.astype(float) * 0.9 + 0.05
    assert pair_auroc(perfect, TRUTH) == 1.0
    assert pair_auroc(1 - perfect, TRUTH) == 0.0
    assert pair_auroc(np.zeros((5, 5)), TRUTH) == 0.5
    rng = np.random.default_rng(1)
    scores = rng.random((5, 5))  # asymmetric: a pair scores (S[i, j] + S[j, i]) / 2
    pairs = list(itertools.combinations(range(5), 2))
    sym = [(scores[i, j] + scores[j, i]) / 2 for i, j in pairs]
    labels = [TRUTH[i, j] for i, j in pairs]
    assert pair_auroc(scores, TRUTH) == pytest.approx(brute_force(sym, labels))
    assert pair_auroc(torch.tensor(scores), torch.tensor(TRUTH)) == pytest.approx(brute_force(sym, labels))


def test_pair_auroc_leaves_out_declared_pairs():
    scores = TRUTH.astype(float)
    scores[0, 2] = scores[2, 0] = 5.0  # an unrelated pair scored highest ...
    assert pair_auroc(scores, TRUTH) < 1.0
    declared = np.zeros((5, 5), dtype=bool)
    declared[2, 0] = True  # ... was declared (one direction is enough): left out
    assert pair_auroc(scores, TRUTH, declared) == 1.0
    assert pair_counts(TRUTH) == (10, 4)
    assert pair_counts(TRUTH, declared) == (9, 4)
    i, j = pair_index(5, declared)
    assert (0, 2) not in set(zip(i.tolist(), j.tolist())) and len(i) == 9
    only_related = np.ones((3, 3), dtype=bool) & ~np.eye(3, dtype=bool)
    assert pair_auroc(np.eye(3), only_related) is None  # one class


def test_random_baseline_and_pair_means():
    value = random_pair_auroc(TRUTH, draws=20, seed=0)
    assert 0.3 < value < 0.7
    assert value == random_pair_auroc(TRUTH, draws=20, seed=0)  # seeded
    assert value != random_pair_auroc(TRUTH, draws=20, seed=1)
    assert random_pair_auroc(np.zeros((4, 4), dtype=bool)) is None
    scores = np.where(TRUTH, 0.8, 0.2)
    scores[3, 4] = 0.4  # the pair (3, 4) scores (0.4 + 0.8) / 2
    related, unrelated = pair_means(scores, TRUTH)
    assert related == pytest.approx((0.8 * 3 + 0.6) / 4) and unrelated == pytest.approx(0.2)
    assert pair_means(scores, np.zeros((5, 5), dtype=bool)) == (
        None,
        pytest.approx(np.mean([(scores[i, j] + scores[j, i]) / 2 for i, j in itertools.combinations(range(5), 2)])),
    )
    with pytest.raises(ValueError, match=r"\[T, T\]"):
        pair_auroc(np.zeros((4, 4)), TRUTH)
