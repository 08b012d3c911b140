"""Statistics shared by the claims: intervals, slopes and permutation tests.

Thin, named wrappers around ``scipy.stats`` so that every claim reports its effect size
the same way: a 95% interval by default, a fixed seed for anything resampled.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Interval:
    """An estimate with a confidence interval and, where a test was run, its p-value."""

    estimate: float
    low: float
    high: float
    p_value: float | None = None

    @property
    def bounds(self) -> tuple[float, float]:
        """``(low, high)``."""
        return (self.low, self.high)


def bootstrap_interval(
    values, statistic: Callable = np.mean, *, confidence: float = 0.95, seed: int = 0
) -> Interval:
    """Percentile-BCa bootstrap interval of ``statistic`` over independent ``values``."""
    values = np.asarray(values, dtype=float)
    result = stats.bootstrap(
        (values,),
        statistic,
        confidence_level=confidence,
        n_resamples=9999,
        random_state=np.random.default_rng(seed),
        method="BCa",
    )
    low, high = result.confidence_interval
    return Interval(float(statistic(values)), float(low), float(high))


def slope_interval(x, y, *, confidence: float = 0.95) -> Interval:
    """Least-squares slope of ``y`` on ``x`` with its t-interval and two-sided p-value."""
    fit = stats.linregress(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    half = stats.t.ppf(0.5 + confidence / 2, len(x) - 2) * fit.stderr
    return Interval(float(fit.slope), fit.slope - half, fit.slope + half, float(fit.pvalue))


def permutation_slope_test(x, y, *, num_permutations: int = 9999, seed: int = 0) -> float:
    """Two-sided permutation p-value of the least-squares slope of ``y`` on ``x``."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)

    def slope(x_perm):
        return stats.linregress(x_perm, y).slope

    result = stats.permutation_test(
        (x,),
        slope,
        permutation_type="pairings",
        n_resamples=num_permutations,
        random_state=np.random.default_rng(seed),
    )
    return float(result.pvalue)


def save_figure(figure, report_dir: pathlib.Path | None, name: str) -> None:
    """Write ``figure`` as ``report_dir/name.png`` when a report folder was asked for."""
    if report_dir is not None:
        figure.savefig(report_dir / f"{name}.png", dpi=120, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(figure)
