"""Training protocols and measurements shared by the sagun2017 and sagun2014 claims.

Nothing runs at import. Each function does one seeded experiment step (a training
protocol, a path, a spectrum, a batch of spin-glass descents) or one statistic built on
:mod:`claims.stats`, so that the claim modules read as their pre-registered protocols.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

import hesskit
from claims.stats import Interval, bootstrap_interval, slope_interval
from hesskit.landscape import LinearPath, interpolate, permute_hidden_units
from hesskit.params import flatten_parameters
from hesskit.problems import Problem, SphericalSpinGlass
from hesskit.train import TrainResult, gradient_descent, sgd, spherical_gradient_descent

# ---------------------------------------------------------------------------------------
# statistics


def mean_interval(values, *, seed: int = 0) -> Interval:
    """The mean with its 95% BCa bootstrap interval, or a zero-width one for constant data.

    ``scipy.stats.bootstrap`` cannot form an interval when every value is the same (it
    warns and returns NaN); then every resample has that mean, so the interval is the
    point itself.
    """
    values = np.asarray(values, dtype=float)
    if np.ptp(values) == 0:
        value = float(values[0])
        return Interval(value, value, value)
    return bootstrap_interval(values, seed=seed)


GROUP_STATISTICS = ("log_spread", "mean")


def group_slope(sizes: Sequence[float], values: np.ndarray, kind: str = "log_spread") -> Interval:
    """Least-squares slope of a per-group statistic on ``log size``, with its t-interval.

    Args:
        sizes: the size (``N``, or a number of parameters) of each group.
        values: shape ``(num_groups, runs)``, the final values of each group's runs.
        kind: ``"log_spread"``, the log of the runs' standard deviation (``ddof=1``), or
            ``"mean"``, their mean.

    Returns:
        The slope with its 95% t-interval and two-sided p-value (:func:`slope_interval`).
    """
    values = np.asarray(values, dtype=float)
    if kind == "log_spread":
        y = np.log(np.std(values, axis=1, ddof=1))
    elif kind == "mean":
        y = np.mean(values, axis=1)
    else:
        msg = f"kind must be one of {GROUP_STATISTICS}, got {kind!r}"
        raise ValueError(msg)
    return slope_interval(np.log(np.asarray(sizes, dtype=float)), y)


@dataclass(frozen=True)
class ShuffleControl:
    """A per-group slope recomputed with the runs shuffled across groups.

    Attributes:
        slopes: the slope of each shuffled assignment.
        fire_rate: the fraction of shuffles on which the claim's rule (upper end of the
            95% interval of the slope below zero) fired.
        p_value: one-sided permutation p-value of the observed slope,
            ``(1 + #{shuffled <= observed}) / (1 + num_shuffles)``.
        first: the first shuffled assignment's slope and interval.
    """

    slopes: np.ndarray
    fire_rate: float
    p_value: float
    first: Interval


def shuffle_control(
    sizes: Sequence[float],
    values: np.ndarray,
    *,
    kind: str = "log_spread",
    num_shuffles: int,
    seed: int,
) -> ShuffleControl:
    """Shuffle every run across groups (sizes lose their meaning) and refit the slope.

    Under the shuffle each group is a random draw from the pooled runs, so the
    conjecture predicts no slope: a sound statistic fires on about its nominal 2.5% (one
    side of a 95% interval) of the shuffles.
    """
    values = np.asarray(values, dtype=float)
    observed = group_slope(sizes, values, kind).estimate
    rng = np.random.default_rng(seed)
    pooled = values.reshape(-1)
    fits = [
        group_slope(sizes, rng.permutation(pooled).reshape(values.shape), kind)
        for _ in range(num_shuffles)
    ]
    slopes = np.array([fit.estimate for fit in fits])
    fire_rate = float(np.mean([fit.high < 0 for fit in fits]))
    p_value = float((1 + np.sum(slopes <= observed)) / (1 + num_shuffles))
    return ShuffleControl(slopes, fire_rate, p_value, fits[0])


# ---------------------------------------------------------------------------------------
# sagun2017: large batch, then small batch


@dataclass(frozen=True, eq=False)
class BatchSwitch:
    """Full-batch gradient descent to a target loss, then SGD continued from its end point.

    Attributes:
        large: the large-batch (full-batch GD) run.
        small: the small-batch SGD run started at ``large.model``.
        theta_large: the large-batch end point, a flat float64 vector.
        theta_small: the small-batch end point.
    """

    large: TrainResult
    small: TrainResult
    theta_large: torch.Tensor
    theta_small: torch.Tensor

    @property
    def loss_large(self) -> float:
        """The training loss at the large-batch end point."""
        return self.large.final_loss

    @property
    def climb(self) -> float:
        """``(max SGD loss - L_large) / L_large``: how far SGD climbs above its start."""
        return (max(self.small.losses) - self.loss_large) / self.loss_large

    @property
    def fall(self) -> float:
        """``L_small / L_large``: where SGD ends relative to its start (< 1: lower)."""
        return self.small.final_loss / self.loss_large


def large_then_small_batch(
    problem: Problem,
    model: nn.Module,
    *,
    lr: float,
    target_loss: float,
    max_large_steps: int,
    batch_size: int,
    small_steps: int,
    eval_every: int,
    seed: int,
) -> BatchSwitch:
    """Sagun et al. (2017, section 4.1): large-batch training, then small batches from there."""
    large = gradient_descent(
        model,
        problem.loss_fn,
        problem.data,
        lr=lr,
        max_steps=max_large_steps,
        target_loss=target_loss,
    )
    if not large.reached_target:
        msg = f"large-batch GD did not reach {target_loss} in {max_large_steps} steps"
        raise RuntimeError(msg)
    small = sgd(
        large.model,
        problem.loss_fn,
        problem.data,
        lr=lr,
        batch_size=batch_size,
        max_steps=small_steps,
        eval_every=eval_every,
        seed=seed,
    )
    return BatchSwitch(
        large, small, flatten_parameters(large.model), flatten_parameters(small.model)
    )


def segment(
    problem: Problem, model: nn.Module, theta_a: torch.Tensor, theta_b: torch.Tensor, points: int
) -> LinearPath:
    """The training loss along the straight segment from ``theta_a`` to ``theta_b``."""
    return interpolate(model, problem.loss_fn, problem.data, theta_a, theta_b, num_points=points)


def permuted_copy(model: nn.Sequential, *, seed: int) -> nn.Sequential:
    """A copy computing the same function, with every hidden layer's units randomly permuted."""
    gen = torch.Generator().manual_seed(seed)
    linears = [module for module in model if isinstance(module, nn.Linear)]
    copy_ = model
    for index, layer in enumerate(linears[:-1]):
        order = torch.randperm(layer.out_features, generator=gen)
        copy_ = permute_hidden_units(copy_, index, order)
    return copy_


def hessian_spectrum(problem: Problem, model: nn.Module) -> torch.Tensor:
    """All eigenvalues of the dense float64 Hessian of the training loss, ascending."""
    if problem.inputs.dtype != torch.float64 or next(model.parameters()).dtype != torch.float64:
        msg = "spectra compared against zero need float64 (float32 noise is ~1e-7 of the top)"
        raise TypeError(msg)
    operator = hesskit.hessian(model, problem.loss_fn, problem.data)
    return torch.linalg.eigvalsh(hesskit.dense(operator))


def near_zero_fraction(eigenvalues: torch.Tensor, *, eps: float) -> float:
    """The fraction of eigenvalues with ``|lambda| < eps * max |lambda|``."""
    magnitude = eigenvalues.abs()
    return float((magnitude < eps * magnitude.max()).double().mean())


# ---------------------------------------------------------------------------------------
# sagun2014: energy bands


@dataclass(frozen=True)
class Band:
    """The final values of many descents on one landscape.

    Attributes:
        size: ``N`` for a spin glass, the number of parameters for a network.
        seed: the landscape's seed (couplings, or teacher and data).
        values: the final energy per spin (or training loss) of each run.
        converged: the fraction of runs that met the stopping rule.
    """

    size: int
    seed: int
    values: np.ndarray
    converged: float


def spin_glass_band(
    num_spins: int,
    p: int,
    *,
    seed: int,
    num_starts: int,
    lr: float,
    max_steps: int,
    tol: float,
    device: str = "cpu",
) -> Band:
    """Spherical gradient descent from ``num_starts`` uniform random starts on one glass.

    The starts are drawn from a generator seeded ``seed + 1`` on the device; the glass
    from ``seed``.
    """
    glass = SphericalSpinGlass(num_spins, p=p, seed=seed, device=device)
    gen = torch.Generator(device=device).manual_seed(seed + 1)
    starts = glass.random_point(gen, num_points=num_starts)
    run = spherical_gradient_descent(glass, starts, lr=lr, max_steps=max_steps, tol=tol)
    energies = run.final_energy.double().cpu().numpy()
    return Band(num_spins, seed, energies, float(run.converged.double().mean()))


def steps_to_reach(result: TrainResult, level: float) -> int | None:
    """The first recorded step at which the full training loss is at most ``level``."""
    for step, loss in zip(result.steps, result.losses, strict=True):
        if loss <= level:
            return step
    return None


def geometric_mean_interval(ratios, *, seed: int = 0) -> Interval:
    """The geometric mean of positive ratios with its 95% BCa bootstrap interval."""
    logs = mean_interval(np.log(np.asarray(ratios, dtype=float)), seed=seed)
    return Interval(math.exp(logs.estimate), math.exp(logs.low), math.exp(logs.high))
