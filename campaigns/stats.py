"""The statistics of campaign results (ANALYTICS.md, "Campaign holdouts and uplift").

Pure functions of counts, means and variances: no database, no Django. Every function
answers None where a figure cannot be computed — an empty arm, no variance, a zero
baseline — instead of raising, so a campaign page with an odd audience shows "—" and a
sentence (campaigns/results.py says which), never an error.

- Conversion: d = p_t − p_c with the Wald interval d ± 1.96·SE; with fewer than 10
  conversions (or fewer than 10 non-conversions) in an arm the Wald interval is too narrow
  and can leave [−1, 1], so Newcombe's hybrid score interval (from the two Wilson intervals)
  is used instead. The interval says which method it is.
- Revenue and orders per member: Welch's t interval with Welch–Satterthwaite degrees of
  freedom.
- Relative uplift: (ȳ_t − ȳ_c)/ȳ_c with the delta-method variance
  s_t²/(ȳ_c² n_t) + s_c² ȳ_t²/(ȳ_c⁴ n_c) and a normal 95 % interval.
- Sample-ratio check: χ² (1 degree of freedom) of n_t : n_c against the holdout share.
- Minimum detectable effect (80 % power, α = 0.05 two-sided): 2.8 × √(p̂(1−p̂)(1/n_t + 1/n_c));
  2.8 ≈ z₀.₉₇₅ + z₀.₈₀ = 1.96 + 0.84.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats as scipy_stats

Z95 = 1.96
MDE_FACTOR = 2.8
# Below this many conversions (or non-conversions) in an arm the Wald interval misleads.
WALD_MIN_EVENTS = 10
# A sample-ratio p-value below this means the arms were not split as drawn: distrust them.
SRM_ALERT_P = 0.001

WALD = "wald"
NEWCOMBE = "newcombe"
WELCH = "welch"
DELTA = "delta"


@dataclass(frozen=True)
class Interval:
    """A 95 % confidence interval, and the method that gave it."""

    low: float
    high: float
    method: str = ""

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def wilson_interval(*, x: int, n: int) -> Interval | None:
    """Wilson's score 95 % interval for a proportion x/n; None for an empty arm."""
    if n <= 0 or not 0 <= x <= n:
        return None
    return _wilson(x=x, n=n)


def _wilson(*, x: int, n: int, z: float = Z95) -> Interval:
    denominator = n + z * z
    centre = (x + z * z / 2) / denominator
    half = z / denominator * math.sqrt(x * (n - x) / n + z * z / 4)
    return Interval(max(0.0, centre - half), min(1.0, centre + half), "wilson")


def proportion_diff(
    *, x_t: int, n_t: int, x_c: int, n_c: int
) -> tuple[float | None, Interval | None]:
    """Conversion uplift p_t − p_c and its 95 % interval (Wald, or Newcombe for few events).

    None, None when an arm is empty (nothing to compare).
    """
    if n_t <= 0 or n_c <= 0 or not (0 <= x_t <= n_t and 0 <= x_c <= n_c):
        return None, None
    p_t, p_c = x_t / n_t, x_c / n_c
    d = p_t - p_c
    few = min(x_t, n_t - x_t, x_c, n_c - x_c) < WALD_MIN_EVENTS
    if not few:
        se = math.sqrt(p_t * (1 - p_t) / n_t + p_c * (1 - p_c) / n_c)
        return d, Interval(d - Z95 * se, d + Z95 * se, WALD)
    # Newcombe (1998), method 10: the hybrid score interval from the arms' Wilson intervals.
    w_t = _wilson(x=x_t, n=n_t)
    w_c = _wilson(x=x_c, n=n_c)
    low = d - math.sqrt((p_t - w_t.low) ** 2 + (w_c.high - p_c) ** 2)
    high = d + math.sqrt((w_t.high - p_t) ** 2 + (p_c - w_c.low) ** 2)
    return d, Interval(low, high, NEWCOMBE)


def welch_diff(
    *, mean_t: float, var_t: float, n_t: int, mean_c: float, var_c: float, n_c: int
) -> tuple[float | None, Interval | None, float | None]:
    """Difference of means ȳ_t − ȳ_c with Welch's 95 % t interval and its degrees of freedom.

    `var_*` are sample variances (n − 1 in the denominator). The difference alone (interval
    and df None) when an arm has fewer than two members or neither arm varies.
    """
    if n_t <= 0 or n_c <= 0:
        return None, None, None
    d = float(mean_t - mean_c)
    if n_t < 2 or n_c < 2:
        return d, None, None
    a, b = var_t / n_t, var_c / n_c
    se2 = a + b
    if se2 <= 0:
        return d, None, None
    df = se2 * se2 / (a * a / (n_t - 1) + b * b / (n_c - 1))
    t = float(scipy_stats.t.ppf(0.975, df))
    se = math.sqrt(se2)
    return d, Interval(d - t * se, d + t * se, WELCH), df


def relative_uplift(
    *, mean_t: float, var_t: float, n_t: int, mean_c: float, var_c: float, n_c: int
) -> tuple[float | None, Interval | None]:
    """(ȳ_t − ȳ_c)/ȳ_c with the delta-method 95 % interval; None, None when ȳ_c = 0 (no
    baseline to be relative to) or an arm is empty."""
    if n_t <= 0 or n_c <= 0 or mean_c == 0:
        return None, None
    r = float((mean_t - mean_c) / mean_c)
    variance = var_t / (mean_c**2 * n_t) + var_c * mean_t**2 / (mean_c**4 * n_c)
    se = math.sqrt(max(variance, 0.0))
    return r, Interval(r - Z95 * se, r + Z95 * se, DELTA)


def sample_ratio_p_value(*, n_t: int, n_c: int, holdout_share: float) -> float | None:
    """The χ² test's p-value of the observed split against the drawn share (1 df).

    None when there is nothing to test: no members, or a share of 0 or 1 (one arm only).
    """
    n = n_t + n_c
    if n <= 0 or not 0 < holdout_share < 1:
        return None
    expected_c = n * holdout_share
    expected_t = n - expected_c
    chi2 = (n_c - expected_c) ** 2 / expected_c + (n_t - expected_t) ** 2 / expected_t
    return float(scipy_stats.chi2.sf(chi2, 1))


def sample_ratio_mismatch(p_value: float | None) -> bool:
    """Whether the split is so unlikely under the drawn share that the results are suspect."""
    return p_value is not None and p_value < SRM_ALERT_P


def minimum_detectable_effect(
    *, baseline_rate: float | None, n_treatment: int, n_control: int
) -> float | None:
    """The smallest conversion uplift (absolute, as a share) the campaign can detect with
    80 % power at α = 0.05; None without a baseline or with an empty arm."""
    if baseline_rate is None or n_treatment <= 0 or n_control <= 0:
        return None
    p = min(max(baseline_rate, 0.0), 1.0)
    return MDE_FACTOR * math.sqrt(p * (1 - p) * (1 / n_treatment + 1 / n_control))
