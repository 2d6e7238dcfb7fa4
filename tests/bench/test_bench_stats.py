"""The bench's statistics on numbers whose answers are known."""

from __future__ import annotations

import math

import pytest

from taskgraph.bench.stats import (
    RatioSummary,
    all_finite_positive,
    bootstrap_median_ci,
    median,
    paired_ratios,
    ratio_summary,
)


def test_median_odd_even_and_empty():
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5
    assert median([7.0]) == 7.0
    with pytest.raises(ValueError, match="no values"):
        median([])


def test_paired_ratios_are_per_round():
    assert paired_ratios([2.0, 3.0, 10.0], [1.0, 2.0, 4.0]) == [2.0, 1.5, 2.5]
    with pytest.raises(ValueError, match="one value per round"):
        paired_ratios([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="positive"):
        paired_ratios([1.0], [0.0])


def test_pairing_cancels_a_shared_slowdown():
    # the machine is 3x slower in round 2 for both configurations: pairing removes it exactly
    ref = [1.0, 3.0, 1.0, 1.0, 1.0]
    new = [1.1, 3.3, 1.1, 1.1, 1.1]
    s = ratio_summary(new, ref)
    assert s.median == pytest.approx(1.1) and s.low == pytest.approx(1.1) and s.high == pytest.approx(1.1)
    # the unpaired medians agree here, but a ratio of medians would not see the spread at all
    assert median(new) / median(ref) == pytest.approx(1.1)


def test_constant_values_give_a_zero_width_interval():
    assert bootstrap_median_ci([1.25] * 30) == (1.25, 1.25)


def test_two_values_interval_is_their_range():
    # resampling two values gives medians 1 (p=1/4), 2 (p=1/2), 3 (p=1/4): the 2.5 % and 97.5 %
    # quantiles are the two values themselves
    assert bootstrap_median_ci([1.0, 3.0], resamples=4000, seed=1) == (1.0, 3.0)


def test_interval_is_seeded_and_covers_the_median():
    values = [1.0, 1.2, 0.9, 1.1, 1.05, 0.95, 1.3, 1.0, 0.98, 1.02]
    a = bootstrap_median_ci(values, seed=3)
    assert a == bootstrap_median_ci(values, seed=3)
    assert a[0] <= median(values) <= a[1]
    assert min(values) <= a[0] and a[1] <= max(values)
    narrow = bootstrap_median_ci(values, level=0.5, seed=3)
    assert a[0] <= narrow[0] <= narrow[1] <= a[1]


def test_interval_shrinks_with_more_rounds():
    few = [1.0, 1.2, 0.8, 1.1, 0.9]
    many = few * 20
    lo_few, hi_few = bootstrap_median_ci(few, seed=0)
    lo_many, hi_many = bootstrap_median_ci(many, seed=0)
    assert hi_many - lo_many < hi_few - lo_few


def test_bad_arguments():
    with pytest.raises(ValueError, match="no values"):
        bootstrap_median_ci([])
    with pytest.raises(ValueError, match="level"):
        bootstrap_median_ci([1.0], level=1.0)


def test_ratio_summary_fields_and_text():
    s = ratio_summary([2.0, 2.0, 2.0], [1.0, 1.0, 1.0])
    assert s == RatioSummary(2.0, 2.0, 2.0, 3)
    assert s.as_dict() == {"median": 2.0, "ci_low": 2.0, "ci_high": 2.0, "rounds": 3}
    assert str(s) == "2.000 [2.000, 2.000]"


def test_all_finite_positive():
    assert all_finite_positive([0.1, 2.0])
    assert not all_finite_positive([])
    assert not all_finite_positive([1.0, 0.0])
    assert not all_finite_positive([1.0, math.nan])
    assert not all_finite_positive([math.inf])
