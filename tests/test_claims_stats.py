"""The claims' statistics helpers: coverage and detection on data with known answers."""

import math

import numpy as np
import pytest
import scipy.stats

from claims import stats
from claims.stats import (
    bootstrap_interval,
    geometric_mean_interval,
    grouped_slope_interval,
    mean_rule_power,
    median_rule_power,
    min_detectable_hit_rate,
    min_detectable_margin,
    pilot_hit_rate,
    replicates_for_standard_error,
    seeds_for_mean_interval,
    seeds_for_median_rule,
    slope_interval,
    spearman_interval,
    t_interval,
)


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


def test_t_interval_covers_the_mean_and_is_exact_for_constants():
    rng = np.random.default_rng(3)
    fit = t_interval(rng.normal(2.0, 1.0, 30))
    assert fit.low < 2.0 < fit.high and fit.p_value < 1e-6
    constant = t_interval([0.7, 0.7, 0.7])
    assert (constant.estimate, constant.low, constant.high) == (0.7, 0.7, 0.7)


def test_geometric_mean_interval_is_the_exponentiated_log_interval():
    ratios = [1.5, 2.0, 2.5, 1.8]
    fit, logs = geometric_mean_interval(ratios), t_interval(np.log(ratios))
    assert fit.estimate == pytest.approx(np.exp(np.mean(np.log(ratios))))
    assert (fit.low, fit.high) == pytest.approx((np.exp(logs.low), np.exp(logs.high)))


def test_slope_interval_of_constant_values_is_an_exact_zero():
    fit = slope_interval([1, 2, 3], [4.0, 4.0, 4.0])
    assert (fit.estimate, fit.low, fit.high, fit.p_value) == (0.0, 0.0, 0.0, 1.0)


@pytest.mark.parametrize(("noise", "tracks"), [(0.0, True), (30.0, False)])
def test_spearman_interval_separates_tracking_from_noise(noise, tracks):
    rng = np.random.default_rng(4)
    x = np.repeat([2, 3, 5, 8, 10], 5)
    fit = spearman_interval(x, x + rng.normal(0, noise, x.size), groups=x)
    assert fit.low <= fit.estimate <= fit.high
    assert (fit.low >= 0.9) == tracks


def test_median_rule_power_matches_the_binomial_tail():
    # P(Binomial(5, 0.5) >= 3) = 1/2; a sure hit always passes
    assert median_rule_power(0.5, 5) == pytest.approx(0.5)
    assert median_rule_power(1.0, 5) == pytest.approx(1.0)
    assert median_rule_power(0.8, 7) > median_rule_power(0.8, 3)


def test_seeds_for_median_rule_and_its_detectable_rate_agree():
    rates = [pilot_hit_rate(3, 3)] * 5  # 0.875 each, five settings
    assert pilot_hit_rate(3, 3) == pytest.approx(0.875)
    n = seeds_for_median_rule(rates, power=0.9)
    assert n == 5 and median_rule_power(0.875, 5) ** 5 >= 0.9 > median_rule_power(0.875, 3) ** 5
    assert min_detectable_hit_rate(5, n, power=0.9) <= 0.875
    assert seeds_for_median_rule([0.5] * 5, max_seeds=9) == 10  # hopeless: max + 1


def test_seeds_for_mean_interval_reaches_its_power_by_simulation():
    sd, margin = 1.0, 1.0
    n = seeds_for_mean_interval(sd, margin, power=0.9)
    assert min_detectable_margin(sd, n) <= margin < min_detectable_margin(sd, n - 1)
    assert seeds_for_mean_interval(0.0, 0.0, max_seeds=50) == 51  # on the threshold: never
    rng = np.random.default_rng(5)
    # how often the t-interval of n draws around +margin lies entirely above 0
    hits = [t_interval(rng.normal(margin, sd, n)).low > 0 for _ in range(2000)]
    assert np.mean(hits) > 0.85


def test_power_law_limit_recovers_the_limit_of_noiseless_data():
    from claims.stats import power_law_limit

    sizes = np.repeat([20.0, 30.0, 50.0, 70.0, 100.0], 4)
    fit = power_law_limit(sizes, -1.6 + 2.0 * sizes**-0.5, num_resamples=99)
    assert fit.estimate == pytest.approx(-1.6, abs=1e-9)
    assert fit.low == pytest.approx(-1.6, abs=1e-9) and fit.high == pytest.approx(-1.6, abs=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_power_law_limit_interval_covers_the_limit_of_noisy_data(seed):
    from claims.stats import power_law_limit

    rng = np.random.default_rng(seed)
    sizes = np.repeat([20.0, 30.0, 50.0, 70.0, 100.0, 200.0], 16)
    values = -1.6 + 1.5 * sizes**-0.7 + rng.normal(0.0, 0.01, sizes.size)
    fit = power_law_limit(sizes, values, num_resamples=299, seed=seed)
    assert fit.low < -1.6 < fit.high
    assert fit.estimate == pytest.approx(-1.6, abs=0.05)
    assert fit.high - fit.low < 0.2


def test_power_law_limit_of_flat_data_is_the_flat_value():
    from claims.stats import power_law_limit

    sizes = np.repeat([10.0, 20.0, 40.0], 3)
    fit = power_law_limit(sizes, np.full(sizes.size, -0.7), num_resamples=49)
    assert (fit.estimate, fit.low, fit.high) == pytest.approx((-0.7, -0.7, -0.7))


def test_grouped_slope_interval_recovers_a_power_law_gap():
    rng = np.random.default_rng(6)
    sizes = (20, 40, 80, 160)
    # group means approach -1.6 as 0.5 N^(-1/2); replicates scatter by 0.01
    groups = {n: -1.6 + 0.5 * n**-0.5 + rng.normal(0, 0.01, 16) for n in sizes}
    fit = grouped_slope_interval(groups, lambda mean: np.log(mean + 1.6), seed=1)
    assert fit.low < -0.5 < fit.high and fit.high - fit.low < 0.3


def test_grouped_slope_interval_is_nan_when_a_transform_fails():
    groups = {10: [-1.0, -1.1], 20: [0.5, 0.6], 40: [0.2, 0.3]}
    fit = grouped_slope_interval(groups, lambda m: np.log(m) if m > 0 else np.nan)
    assert np.isnan(fit.estimate) and np.isnan(fit.low) and np.isnan(fit.high)


def test_replicates_for_standard_error_scales_as_the_inverse_square():
    # se 0.2 at 8 replicates, margin 0.3: z = 1.960 + 1.282, (3.242 * 0.2 / 0.3)^2 * 8 = 37.4
    assert replicates_for_standard_error(0.2, 8, 0.3) == 38
    assert replicates_for_standard_error(0.1, 8, 0.3) == 10  # a quarter, rounded up
    assert replicates_for_standard_error(0.2, 8, 0.0) > 10**6


def test_mean_rule_power_reports_the_pilot_and_the_seeds_needed():
    power = mean_rule_power([1.1, 1.2, 1.0, 1.15], 0.5, 5)
    assert power["margin"] == pytest.approx(0.6125)
    assert power["seeds_needed"] == seeds_for_mean_interval(power["sd"], power["margin"])
    assert power["min_detectable_margin"] < power["margin"]


def test_a_pilot_without_spread_needs_a_resolution():
    with pytest.raises(ValueError, match="the pilot has no spread"):
        stats.seeds_for_mean_interval(0.0, 0.3)
    sized = stats.seeds_for_mean_interval(0.0, 0.3, resolution=0.05)
    assert sized == stats.seeds_for_mean_interval(0.05, 0.3)


def test_power_by_setting_takes_the_largest_need():
    analysis = stats.power_by_setting(
        {"claim": [1.0, 1.1, 0.9], "control": [0.1, 0.12, 0.08]},
        {"claim": 0.5, "control": 0.5},
        5,
    )
    assert set(analysis["settings"]) == {"claim", "control"}
    needed = max(p["seeds_needed"] for p in analysis["settings"].values())
    assert analysis["seeds_needed"] == needed


def test_points_for_rank_correlation_reaches_its_power_by_simulation():
    rng = np.random.default_rng(0)
    rho, threshold = 0.8, 0.5
    n = stats.points_for_rank_correlation(rho, threshold)
    cov = [[1, rho], [rho, 1]]
    hits = 0
    for _ in range(400):
        x = rng.multivariate_normal([0, 0], cov, size=n)
        z = math.atanh(scipy.stats.spearmanr(x[:, 0], x[:, 1]).statistic)
        low = z - scipy.stats.norm.ppf(0.975) * math.sqrt(stats.SPEARMAN_Z_VARIANCE / (n - 3))
        hits += math.tanh(low) > threshold
    assert hits / 400 >= 0.8  # nominal 0.9; a Pearson 0.8 is a Spearman of about 0.79
    assert stats.min_detectable_rank_correlation(threshold, n) <= rho + 0.02
    with pytest.raises(ValueError, match="num_points must be > 3"):
        stats.min_detectable_rank_correlation(threshold, 3)
