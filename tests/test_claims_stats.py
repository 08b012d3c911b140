"""The claims' statistics helpers: coverage and detection on data with known answers."""

import numpy as np
import pytest

from claims.stats import bootstrap_interval, permutation_slope_test, slope_interval


def test_bootstrap_interval_covers_the_mean_and_shrinks_with_n():
    rng = np.random.default_rng(0)
    small = bootstrap_interval(rng.normal(3.0, 1.0, 20))
    large = bootstrap_interval(rng.normal(3.0, 1.0, 400))
    assert small.low < 3.0 < small.high and large.low < 3.0 < large.high
    assert large.high - large.low < (small.high - small.low) / 2


def test_slope_interval_recovers_a_known_slope_and_rejects_zero():
    rng = np.random.default_rng(1)
    x = np.repeat(np.arange(5.0), 8)
    fit = slope_interval(x, -0.5 * x + rng.normal(0, 0.1, x.size))
    assert fit.low < -0.5 < fit.high and fit.high < 0 and fit.p_value < 1e-6


@pytest.mark.parametrize(("slope", "detected"), [(0.0, False), (1.0, True)])
def test_permutation_slope_test_detects_only_a_real_slope(slope, detected):
    rng = np.random.default_rng(2)
    x = np.repeat(np.arange(4.0), 10)
    p_value = permutation_slope_test(
        x, slope * x + rng.normal(0, 1.0, x.size), num_permutations=999
    )
    assert (p_value < 0.01) == detected
