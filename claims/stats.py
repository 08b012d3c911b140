"""The claims' one home for statistics: intervals, slopes, rank correlations, power.

Thin, named wrappers around ``scipy.stats`` so that every claim reports its effect size
the same way: a 95% interval by default, a fixed seed for anything resampled, and a
zero-width interval (not NaN) when every value is the same. The power functions choose
the number of seeds from pilot runs (:func:`median_rule_power`,
:func:`seeds_for_median_rule`, :func:`seeds_for_mean_interval`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
"""The confidence level of every interval in the claims."""


@dataclass(frozen=True)
class Interval:
    """An estimate with a confidence interval and, where a test was run, its p-value."""

    estimate: float
    low: float
    high: float
    p_value: float | None = None

    def __str__(self) -> str:
        return f"{self.estimate:.3g} [{self.low:.3g}, {self.high:.3g}]"


def bootstrap_interval(
    values, statistic: Callable = np.mean, *, confidence: float = CONFIDENCE, seed: int = 0
) -> Interval:
    """BCa bootstrap interval of ``statistic`` over independent ``values``.

    Constant ``values`` give the zero-width interval at the statistic (every resample has
    that value; ``scipy.stats.bootstrap`` would return NaN).
    """
    values = np.asarray(values, dtype=float)
    point = float(statistic(values))
    if np.ptp(values) == 0:
        return Interval(point, point, point)
    result = stats.bootstrap(
        (values,),
        statistic,
        confidence_level=confidence,
        n_resamples=9999,
        random_state=np.random.default_rng(seed),
        method="BCa",
    )
    low, high = result.confidence_interval
    return Interval(point, float(low), float(high))


def t_interval(values, *, confidence: float = CONFIDENCE) -> Interval:
    """Mean of independent ``values`` with its Student t-interval and the p-value against 0.

    Constant ``values`` give the zero-width interval at their value (p-value None).
    """
    values = np.asarray(values, dtype=float)
    if np.ptp(values) == 0:
        value = float(values[0])
        return Interval(value, value, value, None)
    test = stats.ttest_1samp(values, 0.0)
    low, high = test.confidence_interval(confidence)
    return Interval(float(values.mean()), float(low), float(high), float(test.pvalue))


def geometric_mean_interval(ratios, *, confidence: float = CONFIDENCE) -> Interval:
    """Geometric mean of positive ratios: :func:`t_interval` of their logs, exponentiated.

    The p-value is that of the t-test of the logs against 0 (no change).
    """
    logs = t_interval(np.log(np.asarray(ratios, dtype=float)), confidence=confidence)
    return Interval(math.exp(logs.estimate), math.exp(logs.low), math.exp(logs.high), logs.p_value)


def slope_interval(x, y, *, confidence: float = CONFIDENCE) -> Interval:
    """Least-squares slope of ``y`` on ``x`` with its t-interval and two-sided p-value.

    Constant ``y`` is an exact fit: slope 0, interval ``[0, 0]``, p-value 1.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if np.ptp(y) == 0:
        return Interval(0.0, 0.0, 0.0, 1.0)
    fit = stats.linregress(x, y)
    half = stats.t.ppf(0.5 + confidence / 2, len(x) - 2) * fit.stderr
    return Interval(float(fit.slope), fit.slope - half, fit.slope + half, float(fit.pvalue))


def spearman_interval(
    x, y, *, groups=None, confidence: float = CONFIDENCE, num_resamples: int = 2999, seed: int = 0
) -> Interval:
    """Spearman's rank correlation of ``y`` with ``x`` and a stratified bootstrap interval.

    ``groups`` (one label per pair, e.g. the setting ``k``) makes the bootstrap resample
    runs within each group, so every resample keeps the design (each setting with its
    number of seeds). A resample with constant ``y`` counts as correlation 0. The p-value
    is ``scipy.stats.spearmanr``'s.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    groups = np.zeros(x.size) if groups is None else np.asarray(groups)

    def rho(index):
        if np.ptp(y[index]) == 0 or np.ptp(x[index]) == 0:
            return 0.0
        return float(stats.spearmanr(x[index], y[index]).statistic)

    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(groups == g) for g in np.unique(groups)]
    draws = [
        rho(np.concatenate([rng.choice(m, size=m.size, replace=True) for m in members]))
        for _ in range(num_resamples)
    ]
    tail = (1 - confidence) / 2
    everything = np.arange(x.size)
    p_value = None if np.ptp(y) == 0 else float(stats.spearmanr(x, y).pvalue)
    return Interval(
        rho(everything),
        float(np.quantile(draws, tail)),
        float(np.quantile(draws, 1 - tail)),
        p_value,
    )


# ---------------------------------------------------------------------------------------
# finite-size extrapolation

EXPONENTS = tuple(np.round(np.linspace(0.1, 2.0, 39), 3))
"""The grid of exponents ``gamma`` that :func:`power_law_limit` searches."""


def _power_law_fit(sizes: np.ndarray, values: np.ndarray, exponents) -> float:
    """``e_inf`` of the least-squares fit ``e_inf + a N^(-gamma)``, best ``gamma`` of a grid."""
    best = (math.inf, float(np.mean(values)))
    for gamma in exponents:
        design = np.column_stack([np.ones_like(sizes), sizes ** (-gamma)])
        coef, *_ = np.linalg.lstsq(design, values, rcond=None)
        sse = float(np.sum((design @ coef - values) ** 2))
        best = min(best, (sse, float(coef[0])))
    return best[1]


def power_law_limit(
    sizes: Sequence[float],
    values: Sequence[float],
    *,
    exponents: Sequence[float] = EXPONENTS,
    confidence: float = CONFIDENCE,
    num_resamples: int = 999,
    seed: int = 0,
) -> Interval:
    """The limit ``e_inf`` of ``value(N) = e_inf + a N^(-gamma)``, with a bootstrap interval.

    One value per independent group (a landscape) of size ``N``. The fit is linear
    least squares in ``(e_inf, a)`` for each ``gamma`` of a grid, keeping the best
    ``gamma`` (always defined, also for flat data where ``gamma`` is not identified). The
    percentile bootstrap resamples the groups within each size, so every resample keeps
    the design.
    """
    sizes, values = np.asarray(sizes, dtype=float), np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(sizes == n) for n in np.unique(sizes)]
    draws = []
    for _ in range(num_resamples):
        index = np.concatenate([rng.choice(m, size=m.size, replace=True) for m in members])
        draws.append(_power_law_fit(sizes[index], values[index], exponents))
    tail = (1 - confidence) / 2
    return Interval(
        _power_law_fit(sizes, values, exponents),
        float(np.quantile(draws, tail)),
        float(np.quantile(draws, 1 - tail)),
    )


# ---------------------------------------------------------------------------------------
# power analysis


def median_rule_power(hit_rate: float, num_seeds: int) -> float:
    """Probability that more than half of ``num_seeds`` runs hit, each with ``hit_rate``.

    The chance that the median of an odd number of runs lies in a target set when each run
    lands there independently with probability ``hit_rate``:
    ``P(Binomial(num_seeds, hit_rate) > num_seeds / 2)``.
    """
    return float(stats.binom.sf(num_seeds // 2, num_seeds, hit_rate))


def pilot_hit_rate(hits: int, runs: int) -> float:
    """A per-run hit rate from a pilot: the Jeffreys posterior mean ``(hits + 1/2) / (runs + 1)``.

    Shrunk towards 1/2, so that a small pilot never claims certainty: 3 hits of 3 give
    0.875, not 1.
    """
    return (hits + 0.5) / (runs + 1)


def seeds_for_median_rule(
    hit_rates: Sequence[float], *, power: float = 0.9, max_seeds: int = 25
) -> int:
    """The fewest odd number of seeds for which every setting's median hits with ``power``.

    The rule passes when, at every setting, the median run hits; the settings are
    independent, so the power is the product of :func:`median_rule_power` over them.
    Returns ``max_seeds + 1`` when even ``max_seeds`` is not enough.
    """
    for n in range(1, max_seeds + 1, 2):
        if math.prod(median_rule_power(p, n) for p in hit_rates) >= power:
            return n
    return max_seeds + 1


def min_detectable_hit_rate(num_settings: int, num_seeds: int, *, power: float = 0.9) -> float:
    """The smallest common per-run hit rate at which the median rule passes with ``power``."""
    low, high = 0.0, 1.0
    for _ in range(60):
        middle = (low + high) / 2
        if median_rule_power(middle, num_seeds) ** num_settings >= power:
            high = middle
        else:
            low = middle
    return high


def seeds_for_mean_interval(
    sd: float,
    margin: float,
    *,
    confidence: float = CONFIDENCE,
    power: float = 0.9,
    max_seeds: int = 200,
    resolution: float | None = None,
) -> int:
    """The fewest runs for which a t-interval of the mean clears a ``margin`` with ``power``.

    A pilot without spread is sized with ``sd = resolution`` (the statistic's smallest
    step); without one it raises, rather than pass any design as powered.

    ``margin`` is the distance between the expected mean (from the pilot) and the rule's
    threshold, ``sd`` the pilot's standard deviation of one run; the interval's far end
    clears the threshold with probability about ``power`` when
    ``margin >= (t_{conf} + t_{power}) sd / sqrt(n)`` (the usual normal-theory power of a
    one-sided test at the matching level).
    """
    if margin <= 0:
        return max_seeds + 1
    if sd <= 0:
        if resolution is None:
            msg = (
                "the pilot has no spread (sd 0), so it cannot size the design: pass "
                "resolution=, the smallest change the statistic can show (1 / N for a "
                "fraction of N, the round-off of a computed value)"
            )
            raise ValueError(msg)
        sd = resolution
    for n in range(2, max_seeds + 1):
        needed = (stats.t.ppf(0.5 + confidence / 2, n - 1) + stats.t.ppf(power, n - 1)) * sd
        if margin * math.sqrt(n) >= needed:
            return n
    return max_seeds + 1


def min_detectable_margin(
    sd: float, num_seeds: int, *, confidence: float = CONFIDENCE, power: float = 0.9
) -> float:
    """The smallest mean-to-threshold distance detectable with ``num_seeds`` runs."""
    t_sum = stats.t.ppf(0.5 + confidence / 2, num_seeds - 1) + stats.t.ppf(power, num_seeds - 1)
    return float(t_sum * sd / math.sqrt(num_seeds))


def mean_rule_power(
    pilot,
    threshold: float,
    seeds_used: int,
    *,
    power: float = 0.9,
    resolution: float | None = None,
) -> dict[str, float | int | list[float]]:
    """The power analysis of a rule on the mean of per-seed values, from pilot values.

    The pilot's standard deviation and the distance of its mean from ``threshold`` give
    the seeds needed (:func:`seeds_for_mean_interval`) and, at ``seeds_used`` seeds, the
    smallest detectable distance (:func:`min_detectable_margin`); a report's
    ``data["power"]``.
    """
    pilot = np.asarray(pilot, dtype=float)
    sd = float(np.std(pilot, ddof=1))
    margin = float(abs(pilot.mean() - threshold))
    return {
        "pilot": pilot.tolist(),
        "sd": sd,
        "margin": margin,
        "power": power,
        "seeds_needed": seeds_for_mean_interval(sd, margin, power=power, resolution=resolution),
        "seeds_used": seeds_used,
        "min_detectable_margin": min_detectable_margin(
            max(sd, resolution or 0.0), seeds_used, power=power
        ),
    }


def grouped_slope_interval(
    groups: dict[float, Sequence[float]],
    transform: Callable[[float], float],
    *,
    confidence: float = CONFIDENCE,
    num_resamples: int = 2999,
    seed: int = 0,
) -> Interval:
    """Slope of ``transform(mean of each group)`` on ``log(group size)``, bootstrapped.

    ``groups`` maps a size (``N``) to independent replicate values (one per landscape);
    the point estimate fits the transformed group means, and the percentile interval
    resamples the replicates within each group (a stratified bootstrap), so a transform
    such as ``log(mean - threshold)`` is applied to a mean of many replicates, never to
    one noisy replicate. A resample whose transform is not finite makes the interval
    ``nan``.
    """
    sizes = np.log(np.array(sorted(groups), dtype=float))
    members = [np.asarray(groups[size], dtype=float) for size in sorted(groups)]

    def slope(samples) -> float:
        y = np.array([transform(float(np.mean(s))) for s in samples])
        if not np.all(np.isfinite(y)):
            return math.nan
        return float(np.polyfit(sizes, y, 1)[0])

    rng = np.random.default_rng(seed)
    draws = np.array(
        [
            slope([rng.choice(m, size=m.size, replace=True) for m in members])
            for _ in range(num_resamples)
        ]
    )
    estimate = slope(members)
    if not np.all(np.isfinite(draws)) or not math.isfinite(estimate):
        return Interval(estimate, math.nan, math.nan)
    tail = (1 - confidence) / 2
    return Interval(estimate, float(np.quantile(draws, tail)), float(np.quantile(draws, 1 - tail)))


def replicates_for_standard_error(
    pilot_se: float,
    pilot_replicates: int,
    margin: float,
    *,
    power: float = 0.9,
    confidence: float = CONFIDENCE,
) -> int:
    """Replicates per group for which an estimate with this pilot SE clears ``margin``.

    A standard error that falls as ``1 / sqrt(replicates)`` (``pilot_se`` measured with
    ``pilot_replicates`` per group) clears a threshold ``margin`` away with ``power``
    when ``(z_conf + z_power) se <= margin`` (normal theory); returns the fewest such
    replicates.
    """
    z = stats.norm.ppf(0.5 + confidence / 2) + stats.norm.ppf(power)
    if margin <= 0:
        return 10**9
    return max(2, math.ceil(pilot_replicates * (z * pilot_se / margin) ** 2))


# ---------------------------------------------------------------------------------------
# power of a rule on a rank correlation

SPEARMAN_Z_VARIANCE = 1.06
"""``Var(atanh(rho_s)) ~ 1.06 / (n - 3)`` for Spearman's rho (Fieller, Hartley, Pearson 1957)."""


def points_for_rank_correlation(
    rho: float,
    threshold: float,
    *,
    confidence: float = CONFIDENCE,
    power: float = 0.9,
    max_points: int = 10_000,
) -> int:
    """The fewest independent pairs for which Spearman's interval clears ``threshold``.

    Fisher's z: ``atanh(rho_s)`` is about normal with variance ``1.06 / (n - 3)``, so the
    interval's far end clears the threshold with probability ``power`` when
    ``|atanh(rho) - atanh(threshold)| >= (z_conf + z_power) sqrt(1.06 / (n - 3))``.
    ``rho`` is the expected correlation (a pilot's); returns ``max_points + 1`` when it
    equals the threshold or the answer exceeds ``max_points``.
    """
    margin = abs(math.atanh(float(np.clip(rho, -0.9999, 0.9999))) - math.atanh(threshold))
    if margin == 0:
        return max_points + 1
    z = stats.norm.ppf(0.5 + confidence / 2) + stats.norm.ppf(power)
    needed = 3 + math.ceil(SPEARMAN_Z_VARIANCE * (z / margin) ** 2)
    return needed if needed <= max_points else max_points + 1


def min_detectable_rank_correlation(
    threshold: float, num_points: int, *, confidence: float = CONFIDENCE, power: float = 0.9
) -> float:
    """The smallest Spearman's rho above ``threshold`` that ``num_points`` pairs detect."""
    if num_points <= 3:
        msg = f"num_points must be > 3 for Fisher's z of a rank correlation, got {num_points}"
        raise ValueError(msg)
    z = stats.norm.ppf(0.5 + confidence / 2) + stats.norm.ppf(power)
    half = z * math.sqrt(SPEARMAN_Z_VARIANCE / (num_points - 3))
    return float(math.tanh(math.atanh(threshold) + half))


def power_by_setting(
    pilot: dict[str, Sequence[float]],
    thresholds: dict[str, float],
    seeds_used: int,
    *,
    power: float = 0.9,
    resolution: float | None = None,
) -> dict[str, Any]:
    """:func:`mean_rule_power` for each setting of a claim (claim, controls...), and the
    largest ``seeds_needed``: a report's ``data["power"]``."""
    per = {
        name: mean_rule_power(
            values, thresholds[name], seeds_used, power=power, resolution=resolution
        )
        for name, values in pilot.items()
    }
    return {"settings": per, "seeds_needed": max(p["seeds_needed"] for p in per.values())}


@dataclass(frozen=True)
class SeedDraw:
    """The claim seeds a :class:`SequentialDesign` drew, and whether they are enough."""

    seeds: tuple[int, ...]
    needed: int
    """The seeds the pilot's power analysis asked for."""
    unpowered: str
    """Empty when ``needed`` seeds were drawn; else why the record is ``undecided``
    (pass it to :meth:`claims.preregistration.Claim.record`)."""


@dataclass(frozen=True)
class SequentialDesign:
    """A pre-registered sequential design: the claim seeds are drawn in order from a
    reserve until the pilot's power target is met (at least ``minimum``), up to ``cap``.

    A fresh seed set whose pilot asks for more than the fixed design held made two tests
    raise "underpowered" instead of deciding; with a reserve it draws more seeds, and
    beyond the cap the claim is ``undecided`` with the reason, never an error.

    Example:
        >>> design = SequentialDesign(minimum=3, cap=5)
        >>> design.draw(range(10, 20), needed=4).seeds
        (10, 11, 12, 13)
        >>> design.draw(range(10, 20), needed=9).unpowered
        'the pilot asks for 9 seeds; the pre-registered cap is 5'
    """

    minimum: int
    cap: int

    def __post_init__(self) -> None:
        if not 1 <= self.minimum <= self.cap:
            msg = f"need 1 <= minimum <= cap, got minimum={self.minimum}, cap={self.cap}"
            raise ValueError(msg)

    def draw(self, reserve: Sequence[int], needed: int) -> SeedDraw:
        """The first ``max(minimum, min(needed, cap))`` seeds of ``reserve``."""
        reserve = tuple(int(seed) for seed in reserve)
        if len(reserve) < self.cap:
            msg = f"the reserve holds {len(reserve)} seeds, fewer than the cap {self.cap}"
            raise ValueError(msg)
        count = max(self.minimum, min(int(needed), self.cap))
        unpowered = ""
        if needed > self.cap:
            unpowered = f"the pilot asks for {needed} seeds; the pre-registered cap is {self.cap}"
        return SeedDraw(reserve[:count], int(needed), unpowered)
