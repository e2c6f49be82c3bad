"""The statistics of campaign results against examples worked by hand (ANALYTICS.md)."""

from __future__ import annotations

import math

import pytest

from campaigns.stats import (
    NEWCOMBE,
    WALD,
    WELCH,
    minimum_detectable_effect,
    proportion_diff,
    relative_uplift,
    sample_ratio_mismatch,
    sample_ratio_p_value,
    welch_diff,
    wilson_interval,
)


def close(value: float | None, expected: float, places: float = 1e-5) -> bool:
    return value is not None and abs(value - expected) < places


def test_conversion_uplift_with_enough_conversions_is_walds_interval():
    # 90 of 900 treated converted (10 %), 10 of 200 held out (5 %): d = 0.05.
    # SE = √(0.1·0.9/900 + 0.05·0.95/200) = √(0.0001 + 0.0002375) = √0.0003375 = 0.0183712
    # 95 % CI = 0.05 ± 1.96·0.0183712 = 0.05 ± 0.0360075 = [0.0139925, 0.0860075]
    d, interval = proportion_diff(x_t=90, n_t=900, x_c=10, n_c=200)
    assert d == pytest.approx(0.05)
    assert interval.method == WALD
    assert close(interval.low, 0.0139925) and close(interval.high, 0.0860075)


def test_wilson_intervals_of_each_arm():
    # 5 of 100: z² = 3.8416, centre = (5 + 1.9208)/103.8416 = 0.0666476,
    # half = 1.96/103.8416 · √(5·95/100 + 0.9604) = 0.0188749 · 2.389644 = 0.0451043
    low, high = wilson_interval(x=5, n=100).low, wilson_interval(x=5, n=100).high
    assert close(low, 0.0215434) and close(high, 0.1117520)
    # 90 of 900: centre = 91.9208/903.8416 = 0.1016996,
    # half = 1.96/903.8416 · √(90·810/900 + 0.9604) = 0.00216852 · 9.053198 = 0.0196316
    interval = wilson_interval(x=90, n=900)
    assert close(interval.low, 0.0820681) and close(interval.high, 0.1213322)
    assert wilson_interval(x=0, n=0) is None


def test_fewer_than_ten_conversions_in_an_arm_uses_newcombes_hybrid_score_interval():
    # n_t = 900, x_t = 90; n_c = 100, x_c = 5 (< 10 conversions): d = 0.1 − 0.05 = 0.05.
    # With the Wilson intervals above, l_t = 0.0820681, u_t = 0.1213322,
    # l_c = 0.0215434, u_c = 0.1117520:
    # low  = d − √((0.1 − 0.0820681)² + (0.1117520 − 0.05)²) = 0.05 − √0.00413492 = −0.0143029
    # high = d + √((0.1213322 − 0.1)² + (0.05 − 0.0215434)²) = 0.05 + √0.00126486 = 0.0855646
    d, interval = proportion_diff(x_t=90, n_t=900, x_c=5, n_c=100)
    assert d == pytest.approx(0.05)
    assert interval.method == NEWCOMBE
    assert close(interval.low, -0.0143029) and close(interval.high, 0.0855646)
    # Wald would have said 0.05 ± 1.96·√(0.0001 + 0.000475) = [0.0030, 0.0970]: it claims
    # an uplift the few conversions cannot show.
    assert interval.contains(0.0)


def test_everyone_converting_is_not_a_zero_width_interval():
    # All 50 treated and all 50 held out converted: Wald's SE would be 0.
    d, interval = proportion_diff(x_t=50, n_t=50, x_c=50, n_c=50)
    assert d == 0
    assert interval.method == NEWCOMBE
    assert interval.low < 0 < interval.high


@pytest.mark.parametrize(
    "counts", [dict(x_t=0, n_t=0, x_c=1, n_c=10), dict(x_t=1, n_t=10, x_c=0, n_c=0)]
)
def test_an_empty_arm_has_no_uplift(counts):
    assert proportion_diff(**counts) == (None, None)


def test_welch_interval_on_a_small_revenue_example():
    # Treated: 10 members, mean ¥12, variance 36; held out: 5 members, mean ¥8, variance 16.
    # d = 4; s_t²/n_t = 3.6, s_c²/n_c = 3.2, SE² = 6.8, SE = 2.6076810
    # df = 6.8² / (3.6²/9 + 3.2²/4) = 46.24 / (1.44 + 2.56) = 11.56
    # t(0.975, 11.56) = 2.18803 (between t(11) = 2.201 and t(12) = 2.179)
    # CI = 4 ± 2.18803·2.6076810 = 4 ± 5.7057265 = [−1.7057265, 9.7057265]
    d, interval, df = welch_diff(mean_t=12.0, var_t=36.0, n_t=10, mean_c=8.0, var_c=16.0, n_c=5)
    assert d == 4
    assert df == pytest.approx(11.56)
    assert interval.method == WELCH
    assert close(interval.low, -1.7057265) and close(interval.high, 9.7057265)


def test_welch_without_variance_or_with_a_single_member_gives_the_difference_only():
    assert welch_diff(mean_t=5, var_t=0, n_t=3, mean_c=2, var_c=0, n_c=3) == (3, None, None)
    assert welch_diff(mean_t=5, var_t=1, n_t=1, mean_c=2, var_c=1, n_c=3) == (3, None, None)
    assert welch_diff(mean_t=5, var_t=1, n_t=0, mean_c=2, var_c=1, n_c=3) == (None, None, None)


def test_relative_uplift_with_the_delta_method():
    # r = (12 − 8)/8 = 0.5
    # var = 36/(8²·10) + 16·12²/(8⁴·5) = 0.05625 + 2304/20480 = 0.05625 + 0.1125 = 0.16875
    # SE = √0.16875 = 0.4107919; CI = 0.5 ± 1.96·0.4107919 = [−0.3051522, 1.3051522]
    r, interval = relative_uplift(mean_t=12.0, var_t=36.0, n_t=10, mean_c=8.0, var_c=16.0, n_c=5)
    assert r == pytest.approx(0.5)
    assert close(interval.low, -0.3051522) and close(interval.high, 1.3051522)


def test_relative_uplift_needs_a_baseline():
    assert relative_uplift(mean_t=3, var_t=1, n_t=10, mean_c=0, var_c=0, n_c=10) == (None, None)


def test_sample_ratio_check():
    # 1,000 members, 10 % holdout: expected 900 : 100; observed 880 : 120.
    # χ² = 20²/900 + 20²/100 = 0.4444 + 4 = 4.4444; p = P(χ²₁ > 4.4444) = 0.035015
    p = sample_ratio_p_value(n_t=880, n_c=120, holdout_share=0.1)
    assert close(p, 0.035015)
    assert not sample_ratio_mismatch(p)
    # 850 : 150: χ² = 50²/900 + 50²/100 = 2.7778 + 25 = 27.7778; p = 1.361e-7 < 0.001: warn.
    p = sample_ratio_p_value(n_t=850, n_c=150, holdout_share=0.1)
    assert p == pytest.approx(1.361e-7, rel=1e-3)
    assert sample_ratio_mismatch(p)
    # Exactly as drawn: χ² = 0, p = 1.
    assert sample_ratio_p_value(n_t=900, n_c=100, holdout_share=0.1) == pytest.approx(1.0)


def test_sample_ratio_check_without_two_arms_has_no_p_value():
    assert sample_ratio_p_value(n_t=0, n_c=0, holdout_share=0.1) is None
    assert sample_ratio_p_value(n_t=100, n_c=0, holdout_share=0) is None
    assert not sample_ratio_mismatch(None)


def test_minimum_detectable_effect():
    # p̂ = 0.1, 900 : 100: 2.8 · √(0.1·0.9·(1/900 + 1/100)) = 2.8 · √(0.09 · 0.0111111)
    #   = 2.8 · √0.001 = 2.8 · 0.0316228 = 0.0885438
    mde = minimum_detectable_effect(baseline_rate=0.1, n_treatment=900, n_control=100)
    assert close(mde, 0.0885438)
    assert close(mde, 2.8 * math.sqrt(0.001))


def test_minimum_detectable_effect_without_a_holdout_or_a_baseline():
    assert minimum_detectable_effect(baseline_rate=0.1, n_treatment=900, n_control=0) is None
    assert minimum_detectable_effect(baseline_rate=None, n_treatment=900, n_control=100) is None
