"""The quality bench's statistics and rules on numbers whose answers are known (no training)."""

from __future__ import annotations

import math

import pytest

from benchmarks.quality.stats import (
    LOSS,
    TIE,
    UNDECIDED,
    WIN,
    paired_difference,
    select_lr,
    selection_score,
    t_interval,
    verdict,
)
from taskgraph.metrics.spread import finite, mean_std

T_975_DF2 = 4.302652729749462  # Student's t, 97.5 % quantile, 2 degrees of freedom


def test_mean_std_skips_missing_and_needs_two_for_a_std():
    mean, std = mean_std([0.5, None, 0.7, float("nan")])
    assert mean == pytest.approx(0.6)
    assert std == pytest.approx(math.sqrt(0.02))  # sample std (ddof = 1) of 0.5, 0.7
    assert mean_std([0.4]) == (0.4, None)
    assert mean_std([None]) == (None, None)
    assert finite([1, None, True, float("inf"), 2.5]) == [1.0, 2.5]


def test_t_interval_by_hand():
    mean, low, high = t_interval([0.1, 0.2, 0.3])
    half = T_975_DF2 * 0.1 / math.sqrt(3)  # sd 0.1, n 3
    assert mean == pytest.approx(0.2)
    assert (low, high) == (pytest.approx(0.2 - half), pytest.approx(0.2 + half))
    assert low == pytest.approx(-0.048413771175032955)
    with pytest.raises(ValueError, match="at least 2"):
        t_interval([0.1])
    with pytest.raises(ValueError, match="level"):
        t_interval([0.1, 0.2], level=1.0)


def test_verdict_is_a_win_only_when_the_interval_excludes_zero():
    assert verdict(0.01, 0.2) == WIN
    assert verdict(-0.3, -0.1) == LOSS
    assert verdict(-0.1, 0.2) == TIE
    assert verdict(0.0, 0.2) == TIE  # touching 0 is not excluding it
    assert verdict(None, None) == UNDECIDED


def test_paired_difference_pairs_by_seed():
    a = {0: 0.8, 1: 0.9, 2: 0.85, 3: 0.99}  # seed 3 has no partner
    b = {0: 0.7, 1: 0.8, 2: 0.8, 4: 0.1}
    diff = paired_difference("graph", a, "poly", b)
    assert diff.seeds == (0, 1, 2)
    assert diff.differences == pytest.approx((0.1, 0.1, 0.05))
    assert diff.mean == pytest.approx(0.08333333333333333)
    assert diff.low == pytest.approx(0.011622454504175622)
    assert diff.high == pytest.approx(0.15504421216249104)
    assert diff.verdict == WIN
    d = diff.as_dict()
    assert (d["a"], d["b"], d["verdict"], d["ci_low"]) == ("graph", "poly", WIN, diff.low)


def test_paired_difference_with_one_seed_or_a_failed_cell_decides_nothing():
    one = paired_difference("a", {0: 0.9, 1: None}, "b", {0: 0.7, 1: 0.8})
    assert one.seeds == (0,)
    assert one.mean == pytest.approx(0.2)
    assert (one.low, one.high, one.verdict) == (None, None, UNDECIDED)
    none = paired_difference("a", {}, "b", {0: 0.5})
    assert (none.mean, none.verdict) == (None, UNDECIDED)


def test_paired_difference_holding_zero_is_no_difference():
    diff = paired_difference("mhr", {0: 0.6, 1: 0.7, 2: 0.8}, "poly", {0: 0.5, 1: 0.8, 2: 0.7})
    assert diff.differences == pytest.approx((0.1, -0.1, 0.1))
    assert diff.low < 0 < diff.high
    assert diff.verdict == TIE


def test_select_lr_best_validation_ties_to_the_smaller_rate():
    assert select_lr({1e-3: {0: 0.5}, 3e-3: {0: 0.7}, 1e-2: {0: 0.7}}) == 3e-3
    assert select_lr({1e-2: {0: 0.7}, 1e-3: {0: 0.7}}) == 1e-3
    assert select_lr({1e-3: {0: None}, 1e-2: {0: 0.4}, 3e-3: {0: float("nan")}}) == 1e-2  # failed cells never win
    with pytest.raises(ValueError, match="no learning rate"):
        select_lr({1e-3: {0: None}})


def test_select_lr_on_the_mean_over_seeds_so_one_seed_cannot_flip_it():
    # the walk-through's case: seed 0 at 3e-2 unlucky (0.88) while every other seed there beats 1e-2 by far
    val = {1e-2: {0: 0.90, 1: 0.85, 2: 0.86}, 3e-2: {0: 0.88, 1: 0.95, 2: 0.94}}
    assert select_lr({lr: {0: by_seed[0]} for lr, by_seed in val.items()}) == 1e-2  # seed 0 alone: the wrong rate
    assert select_lr(val) == 3e-2  # the mean over three seeds: the right one
    # a rate that failed on one selection seed is not chosen for its luck on the others
    assert select_lr({1e-2: {0: 0.8, 1: 0.8}, 3e-2: {0: 0.99, 1: None}}) == 1e-2
    assert selection_score({0: 0.5, 1: 0.7}) == pytest.approx(0.6)
    assert selection_score({0: 0.5, 1: float("inf")}) is None and selection_score({}) is None
