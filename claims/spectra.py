"""Trained Hessian spectra shared by the two sagun2017 bulk-and-outlier claims.

Nothing runs at import. :func:`gaussian_spectrum` and :func:`digits_spectrum` train one
seeded network to a target training loss with full-batch gradient descent and return the
exact (dense, float64) spectrum of its Hessian. Both are cached per process
(``functools.cache``), so a model that both claims use -- the width sweep of
``test_sagun2017_bulk_scaling`` is the width control of
``test_sagun2017_outliers_track_clusters``, and the cluster sweep of the second is the
control of the first -- is trained once when both modules run in one process.

Outliers are counted by :func:`count_outliers`, the *largest* gap of the log-spectrum
among the top :data:`MAX_OUTLIERS` + 1 eigenvalues (the rule ``shared/claims.md`` names),
not by :func:`hesskit.spectrum.split`, whose rule takes the *lowest* gap above a fixed
``min_gap``. Why, measured on a pilot grid before the claims were written (Gaussian
mixtures, k in {2, 3, 4, 6}, widths 8-32, separations 5-20, input dimensions 20 and 40,
pilot seeds 0 and 1, never the claims' seeds; 144 spectra): the gap between the outliers
and the bulk of these small ReLU networks is a factor 1.6-3 (log-gap 0.5-1.1) for k >= 3,
below ``split``'s default ``min_gap = 1`` (it counted 0 outliers in 60% of the spectra and
put 34% at k - 1 or k), and any ``min_gap`` low enough to see it (0.4-0.5) also fires on
gaps deeper in the bulk (counts of 9-19 for k = 2); no ``(min_gap, floor, max_outliers)``
of the 24 tried put more than 63% of the counts at k - 1 or k, against 76% for the
largest gap (all at a training loss of 1e-3). ``split``'s default count is still recorded
next to every count (``split_count``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

import hesskit
from claims.stats import Interval, slope_interval
from hesskit.problems import Problem, digits, gaussian_mixture
from hesskit.spectrum import split
from hesskit.train import gradient_descent

MAX_OUTLIERS = 20
"""The counting rule looks for the gap among the top ``MAX_OUTLIERS + 1`` eigenvalues."""
FLOOR = 1e-3
"""Eigenvalues below ``FLOOR * lambda_1`` count as the floor (as in ``split``)."""
NEAR_ZERO = 1e-3
"""An eigenvalue is near zero (in the bulk at zero) when ``|lambda| <= NEAR_ZERO * lambda_1``."""
RANDOM_LABEL_SEED = 100_000
"""Random labels of seed ``s`` permute the targets with generator seed ``RANDOM_LABEL_SEED + s``."""
ACTIVATION = "relu"


# ---------------------------------------------------------------------------------------
# the counting rule


def count_outliers(
    eigenvalues, *, max_outliers: int = MAX_OUTLIERS, floor: float = FLOOR
) -> tuple[int, float, float]:
    """Outliers by the largest gap of the log-spectrum among the top ``max_outliers + 1``.

    Sort descending, clamp every value at ``floor * lambda_1`` (so zero, negative and tiny
    eigenvalues are one level), take logs, and split at the largest difference of
    consecutive logs. Always returns at least one outlier; ``gap`` says how clear the
    split is (a factor ``exp(gap)`` between the last outlier and the bulk edge).

    Returns:
        ``(count, edge, gap)``: the number of outliers, the geometric midpoint of the
        deciding gap, and the gap (natural log).
    """
    values = np.sort(np.asarray(eigenvalues, dtype=float))[::-1]
    top = values[: max_outliers + 1]
    logs = np.log(np.maximum(top, floor * top[0]))
    gaps = logs[:-1] - logs[1:]
    index = int(np.argmax(gaps))
    return index + 1, math.exp((logs[index] + logs[index + 1]) / 2), float(gaps[index])


# ---------------------------------------------------------------------------------------
# trained spectra


@dataclass(frozen=True)
class Run:
    """One trained network on a Gaussian mixture: the cache key of :func:`gaussian_spectrum`.

    The data and the initialisation share ``seed``, so two seeds are independent replicates
    of data and training.
    """

    num_clusters: int
    width: int
    seed: int
    input_dim: int
    samples_per_cluster: int
    separation: float
    lr: float
    target_loss: float
    max_steps: int
    random_labels: bool = False
    device: str = "cpu"


@dataclass(frozen=True, eq=False)
class Spectrum:
    """The Hessian spectrum of one trained network, with its outlier count.

    Attributes:
        name: the problem's name.
        num_clusters: the number of classes.
        eigenvalues: every Hessian eigenvalue, float64, descending.
        num_params: the number of parameters.
        num_samples: the number of training samples.
        final_loss: the training loss where the spectrum was taken.
        reached_target: whether training reached the target loss.
        num_steps: the gradient-descent steps taken.
        count: outliers by :func:`count_outliers`.
        edge: the bulk edge of that rule.
        gap: the deciding log-gap of that rule.
        split_count: outliers by ``hesskit.spectrum.split`` with its defaults.
    """

    name: str
    num_clusters: int
    eigenvalues: np.ndarray
    num_params: int
    num_samples: int
    final_loss: float
    reached_target: bool
    num_steps: int
    count: int
    edge: float
    gap: float
    split_count: int

    @property
    def top(self) -> float:
        """The largest eigenvalue."""
        return float(self.eigenvalues[0])

    @property
    def near_zero(self) -> int:
        """The number of eigenvalues with ``|lambda| <= NEAR_ZERO * lambda_1``."""
        return int(np.sum(np.abs(self.eigenvalues) <= NEAR_ZERO * self.top))

    @property
    def near_zero_fraction(self) -> float:
        """:attr:`near_zero` over the number of parameters."""
        return self.near_zero / self.num_params

    def top_mean(self, how_many: int) -> float:
        """The mean of the ``how_many`` largest eigenvalues."""
        return float(np.mean(self.eigenvalues[:how_many]))

    def summary(self) -> dict:
        """Per-run numbers for a report's ``details``."""
        return {
            "count": self.count,
            "split_default_count": self.split_count,
            "gap": round(self.gap, 4),
            "lambda_1": self.top,
            "edge": self.edge,
            "lambda_min_over_lambda_1": float(self.eigenvalues[-1]) / self.top,
            "near_zero_fraction": round(self.near_zero_fraction, 4),
            "num_params": self.num_params,
            "final_loss": self.final_loss,
            "reached_target": self.reached_target,
            "steps": self.num_steps,
            "top_eigenvalues": [float(x) for x in self.eigenvalues[: self.num_clusters + 3]],
        }


def gaussian_problem(run: Run) -> Problem:
    """The Gaussian mixture of ``run`` (labels permuted when ``random_labels``)."""
    problem = gaussian_mixture(
        run.num_clusters,
        input_dim=run.input_dim,
        samples_per_cluster=run.samples_per_cluster,
        separation=run.separation,
        hidden=(run.width, run.width),
        activation=ACTIVATION,
        seed=run.seed,
    )
    if run.random_labels:
        gen = torch.Generator().manual_seed(RANDOM_LABEL_SEED + run.seed)
        order = torch.randperm(problem.num_samples, generator=gen)
        problem = dataclasses.replace(
            problem, targets=problem.targets[order], name=problem.name + " random labels"
        )
    return problem.to(device=run.device)


@functools.cache
def _trained_gaussian(run: Run):
    problem = gaussian_problem(run)
    model = problem.make_model(seed=run.seed)
    result = gradient_descent(
        model,
        problem.loss_fn,
        problem.data,
        lr=run.lr,
        max_steps=run.max_steps,
        target_loss=run.target_loss,
    )
    return problem, result


@functools.cache
def gaussian_spectrum(run: Run, kind: str = "hessian") -> Spectrum:
    """Train ``run`` (once per process) and return its Hessian (or ``"ggn"``) spectrum."""
    problem, result = _trained_gaussian(run)
    return _spectrum(problem, result, kind)


@functools.cache
def digits_spectrum(
    classes: tuple[int, ...],
    width: int,
    seed: int,
    *,
    lr: float,
    target_loss: float,
    max_steps: int,
    device: str = "cpu",
) -> Spectrum:
    """A ReLU ``64-width-width-k`` network on the digits ``classes``, trained like the mixtures."""
    problem = digits(classes=classes, hidden=(width, width), seed=seed)
    problem = dataclasses.replace(problem, activation=ACTIVATION).to(device=device)
    result = gradient_descent(
        problem.make_model(seed=seed),
        problem.loss_fn,
        problem.data,
        lr=lr,
        max_steps=max_steps,
        target_loss=target_loss,
    )
    return _spectrum(problem, result, "hessian")


def _spectrum(problem: Problem, result, kind: str) -> Spectrum:
    model = result.model
    if kind == "hessian":
        # one batch: the cached first-backward graph is the cheapest exact product
        operator = hesskit.hessian(model, problem.loss_fn, problem.data, method="cached_graph")
    elif kind == "ggn":
        operator = hesskit.ggn(model, problem.loss_fn, problem.data)
    else:
        msg = f"kind must be 'hessian' or 'ggn', got {kind!r}"
        raise ValueError(msg)
    matrix = hesskit.dense(operator)
    values = torch.linalg.eigvalsh((matrix + matrix.T) / 2).flip(0)
    eigenvalues = values.cpu().numpy().astype(np.float64)
    count, edge, gap = count_outliers(eigenvalues)
    return Spectrum(
        name=problem.name,
        num_clusters=int(problem.num_classes),
        eigenvalues=eigenvalues,
        num_params=int(eigenvalues.size),
        num_samples=problem.num_samples,
        final_loss=result.final_loss,
        reached_target=result.reached_target,
        num_steps=result.num_steps,
        count=count,
        edge=edge,
        gap=gap,
        split_count=split(values.cpu()).num_outliers,
    )


# ---------------------------------------------------------------------------------------
# statistics


def slope(x: Sequence[float], y: Sequence[float]) -> Interval:
    """Least-squares slope of ``y`` on ``x`` with its 95% t-interval (:func:`slope_interval`).

    When every ``y`` is equal the fit is exact: the slope is 0 with zero standard error, so
    the interval is ``[0, 0]`` (``scipy.stats.linregress`` returns NaN there).
    """
    y = np.asarray(y, dtype=float)
    if np.ptp(y) == 0:
        return Interval(0.0, 0.0, 0.0, 1.0)
    return slope_interval(x, y)


def geometric_mean_interval(ratios: Sequence[float], *, confidence: float = 0.95) -> Interval:
    """Geometric mean of positive ratios with the t-interval of the mean of their logs.

    Uses ``scipy.stats.ttest_1samp`` on ``log(ratios)`` (test of no change, log-ratio 0);
    the p-value is that test's.
    """
    logs = np.log(np.asarray(ratios, dtype=float))
    if np.ptp(logs) == 0:
        value = float(np.exp(logs[0]))
        return Interval(value, value, value, None)
    test = stats.ttest_1samp(logs, 0.0)
    low, high = test.confidence_interval(confidence)
    return Interval(
        float(np.exp(logs.mean())), float(np.exp(low)), float(np.exp(high)), float(test.pvalue)
    )


def tracking_fires(interval: Interval) -> bool:
    """The tracking rule: the slope's interval contains 1 and lies above 0."""
    return interval.low <= 1.0 <= interval.high and interval.low > 0.0


def fmt(interval: Interval, digits_: int = 3) -> str:
    """``estimate [low, high]`` with ``digits_`` significant digits."""
    return (
        f"{interval.estimate:.{digits_}g} [{interval.low:.{digits_}g}, {interval.high:.{digits_}g}]"
    )


# ---------------------------------------------------------------------------------------
# figures


def draw_spectra(groups, report_dir, name: str, title: str, *, num_top: int = 30) -> None:
    """Spectra side by side: the top eigenvalues, then the histogram of all of them.

    ``groups`` is a list of ``(label, [Spectrum, ...])``; the first spectrum of each group
    is drawn in the top row (outliers red, bulk grey, the bulk edge dashed), and every
    spectrum of the group is pooled in the histogram of ``log10 |lambda| / lambda_1`` of
    the bottom row (the near-zero floor dotted, each run's edge dashed).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = len(groups)
    figure, axes = plt.subplots(2, columns, figsize=(3.0 * columns, 5.6), squeeze=False)
    bins = np.linspace(-9, 0.2, 48)
    for column, (label, spectra) in enumerate(groups):
        first = spectra[0]
        top = first.eigenvalues[:num_top] / first.top
        rank = np.arange(1, top.size + 1)
        ax = axes[0, column]
        positive = top > 0
        colors = np.where(rank <= first.count, "tab:red", "tab:gray")
        ax.scatter(rank[positive], top[positive], c=colors[positive], s=14)
        ax.scatter(
            rank[~positive], np.abs(top[~positive]), facecolors="none", edgecolors="tab:gray", s=14
        )
        ax.axhline(first.edge / first.top, color="k", ls="--", lw=1)
        ax.set_yscale("log")
        ax.set_ylim(max(1e-4, float(np.abs(top).min()) / 2), 1.5)
        ax.set_title(f"{label}\n{first.count} outliers (gap {first.gap:.2f})", fontsize=8)
        ax.set_xlabel("rank", fontsize=8)
        if column == 0:
            ax.set_ylabel("lambda / lambda_1 (hollow: |negative|)", fontsize=8)
        ax = axes[1, column]
        pooled = np.concatenate(
            [np.log10(np.maximum(np.abs(s.eigenvalues) / s.top, 1e-9)) for s in spectra]
        )
        ax.hist(pooled, bins=bins, color="tab:blue", alpha=0.7)
        ax.axvline(np.log10(NEAR_ZERO), color="k", ls=":", lw=1)
        for s in spectra:
            ax.axvline(np.log10(s.edge / s.top), color="tab:red", ls="--", lw=0.6, alpha=0.6)
        near = np.mean([s.near_zero_fraction for s in spectra])
        ax.set_title(f"near zero {near:.2f}, n = {first.num_params}", fontsize=8)
        ax.set_xlabel("log10 |lambda| / lambda_1", fontsize=8)
        ax.set_yscale("log")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    from claims.stats import save_figure

    save_figure(figure, report_dir, name)


def draw_counts(series, report_dir, name: str, title: str, xlabel: str, *, identity=None) -> None:
    """Outlier counts against a swept knob: ``series`` is ``[(label, x, counts), ...]``.

    ``identity`` (a pair of x values) draws the lines ``count = k`` and ``count = k - 1``
    for a cluster sweep.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(5.5, 4))
    rng = np.random.default_rng(0)
    markers = "osD^v"
    for i, (label, x, counts) in enumerate(series):
        x = np.asarray(x, dtype=float)
        jitter = rng.uniform(-0.08, 0.08, size=x.size) * (np.ptp(x) or 1) / 4
        ax.scatter(x + jitter, counts, label=label, marker=markers[i % 5], alpha=0.7)
    if identity is not None:
        line = np.linspace(*identity, 10)
        ax.plot(line, line, "k--", lw=1, label="count = k")
        ax.plot(line, line - 1, "k:", lw=1, label="count = k - 1")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("outliers (largest log-gap)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    from claims.stats import save_figure

    save_figure(figure, report_dir, name)
