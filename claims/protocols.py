"""Training protocols shared by the claims: one seeded experiment step per function.

Nothing runs at import. Each function runs one pre-registered protocol -- large-batch
training then small batches from its end point, the loss along a segment, a dense float64
spectrum, a batch of spin-glass descents -- so that the claim modules read as their
protocols. Statistics live in :mod:`claims.stats`, figures in :mod:`claims.figures`.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

import hesskit
from claims.seeds import stream
from hesskit.landscape import LinearPath, interpolate, permute_hidden_units
from hesskit.params import flatten_parameters
from hesskit.problems import Problem, SphericalSpinGlass
from hesskit.train import TrainResult, gradient_descent, sgd, spherical_gradient_descent

# ---------------------------------------------------------------------------------------
# sagun2017: large batch, then small batch


@dataclass(frozen=True, eq=False)
class MatchedPair:
    """A small-batch and a large-batch solution at one training loss.

    Attributes:
        level: the training loss both runs were taken down to.
        small: SGD, continued from the previous level's small-batch solution, stopped at
            the first evaluation whose full loss is at most ``level``.
        matched: full-batch GD, continued from the previous level's large-batch solution,
            stopped at the first step whose loss is at most ``small``'s final loss.
    """

    level: float
    small: TrainResult
    matched: TrainResult

    @property
    def theta_small(self) -> torch.Tensor:
        """The small-batch solution, a flat float64 vector."""
        return flatten_parameters(self.small.model)

    @property
    def theta_matched(self) -> torch.Tensor:
        """The large-batch solution at the small-batch solution's loss."""
        return flatten_parameters(self.matched.model)


@dataclass(frozen=True, eq=False)
class BatchSwitch:
    """Full-batch GD to a starting loss, then small batches and GD down to matched losses.

    Attributes:
        large: the large-batch (full-batch GD) run to the starting loss.
        pairs: one :class:`MatchedPair` per level, in the order of descent.
    """

    large: TrainResult
    pairs: tuple[MatchedPair, ...]

    @property
    def theta_large(self) -> torch.Tensor:
        """The large-batch end point, a flat float64 vector."""
        return flatten_parameters(self.large.model)

    @property
    def loss_large(self) -> float:
        """The training loss at the large-batch end point."""
        return self.large.final_loss

    @property
    def climb(self) -> float:
        """``(max SGD loss - L_large) / L_large``: how far SGD climbs above its start."""
        return (max(self.pairs[0].small.losses) - self.loss_large) / self.loss_large


def large_then_small_batch(
    problem: Problem,
    model: nn.Module,
    *,
    lr: float,
    target_loss: float,
    levels: tuple[float, ...],
    max_steps: int,
    batch_size: int,
    eval_every: int,
    seed: int,
) -> BatchSwitch:
    """Sagun et al. (2017, section 4.1): large-batch training, then small batches from there.

    Full-batch GD runs to ``target_loss``; :func:`switch_batch` continues from its end.
    """
    large = gradient_descent(
        model, problem.loss_fn, problem.data, lr=lr, max_steps=max_steps, target_loss=target_loss
    )
    _check_reached(large, "large-batch GD", target_loss, max_steps)
    return switch_batch(
        problem,
        large,
        lr=lr,
        levels=levels,
        batch_size=batch_size,
        eval_every=eval_every,
        seed=seed,
        max_steps=max_steps,
    )


def switch_batch(
    problem: Problem,
    large: TrainResult,
    *,
    lr: float,
    levels: tuple[float, ...],
    batch_size: int,
    eval_every: int,
    seed: int,
    max_steps: int,
) -> BatchSwitch:
    """From ``large.model``, SGD and full-batch GD down to each of the falling ``levels``.

    Both runs continue from their own previous solution: SGD until its full loss is at most
    the level, GD until its loss is at most SGD's, so each pair is compared at one loss
    whatever the number of steps SGD took (with cross-entropy on separable data the loss
    keeps falling, and a fixed step budget would set the loss, hence the scale, of every
    comparison).
    """
    small, matched, pairs = large, large, []
    for index, level in enumerate(levels):
        small = sgd(
            small.model,
            problem.loss_fn,
            problem.data,
            lr=lr,
            batch_size=batch_size,
            max_steps=max_steps,
            target_loss=level,
            eval_every=eval_every,
            seed=stream(seed, index),
        )
        _check_reached(small, "small-batch SGD", level, max_steps)
        matched = gradient_descent(
            matched.model,
            problem.loss_fn,
            problem.data,
            lr=lr,
            max_steps=max_steps,
            target_loss=small.final_loss,
        )
        _check_reached(matched, "matched-loss GD", small.final_loss, max_steps)
        pairs.append(MatchedPair(level, small, matched))
    return BatchSwitch(large, tuple(pairs))


def _check_reached(run: TrainResult, name: str, target: float, max_steps: int) -> None:
    if not run.reached_target:
        msg = f"{name} did not reach the loss {target:.3g} in {max_steps} steps"
        raise RuntimeError(msg)


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


def top_eigenvalue(problem: Problem, model: nn.Module) -> float:
    """The largest eigenvalue of the training loss's Hessian, by Lanczos (no dense matrix)."""
    operator = hesskit.hessian(model, problem.loss_fn, problem.data)
    return float(hesskit.eigsh(operator, 1, which="LA", generator=0).eigenvalues[0])


# ---------------------------------------------------------------------------------------
# sagun2014: energy bands


@dataclass(frozen=True)
class Band:
    """The values of many descents on one landscape: at the start, early, and at the end.

    Attributes:
        size: ``N`` for a spin glass, the number of parameters for a network.
        seed: the landscape's seed (couplings, or teacher and data).
        values: the final energy per spin (or relative training loss) of each run.
        start: the same at each run's random starting point (no descent).
        early: the same after the first ``early_steps`` steps (early-stopped descent).
        converged: the fraction of runs that met the stopping rule.
    """

    size: int
    seed: int
    values: np.ndarray
    start: np.ndarray
    early: np.ndarray
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
    early_steps: int,
    device: str = "cpu",
) -> Band:
    """Spherical gradient descent from ``num_starts`` uniform random starts on one glass.

    The starts are drawn from a generator seeded ``seed + 1`` on the device; the glass
    from ``seed``. ``start`` and ``early`` are the energies per spin of the same runs
    before any step and after ``early_steps`` steps.
    """
    glass = SphericalSpinGlass(num_spins, p=p, seed=seed, device=device)
    gen = torch.Generator(device=device).manual_seed(seed + 1)
    starts = glass.random_point(gen, num_points=num_starts)
    run = spherical_gradient_descent(glass, starts, lr=lr, max_steps=max_steps, tol=tol)
    energies = run.energies.double().cpu().numpy()
    early = energies[min(early_steps, len(energies) - 1)]
    converged = float(run.converged.double().mean())
    return Band(num_spins, seed, energies[-1], energies[0], early, converged)


@dataclass(frozen=True, eq=False)
class Convergence:
    """A full-batch L-BFGS run to convergence (Sagun et al. 2014, teacher-student).

    Attributes:
        initial_loss: the training loss at the initialisation.
        early_loss: the loss after the first ``check_every`` iterations.
        final_loss: the loss at the end.
        gradient_norm: the final gradient norm.
        iterations: L-BFGS iterations done.
        converged: whether a stopping rule (zero loss or small gradient) was met.
    """

    initial_loss: float
    early_loss: float
    final_loss: float
    gradient_norm: float
    iterations: int
    converged: bool

    @property
    def relative_loss(self) -> float:
        """``final_loss / initial_loss``."""
        return self.final_loss / self.initial_loss


def train_to_convergence(
    problem: Problem,
    model: nn.Module,
    *,
    zero_level: float,
    grad_tol: float,
    max_iter: int,
    check_every: int = 10,
) -> Convergence:
    """Full-batch L-BFGS (strong-Wolfe line search) on a copy of ``model`` until it converges.

    Stops once the loss is at most ``zero_level`` times the initial loss ("zero" in
    float64), or the gradient norm is below ``grad_tol`` (a critical point), checking
    every ``check_every`` iterations, or after ``max_iter`` iterations.
    """
    trained = copy.deepcopy(model)
    params = [q for q in trained.parameters() if q.requires_grad]
    inputs, targets = problem.data
    optimizer = torch.optim.LBFGS(
        params,
        lr=1.0,
        max_iter=check_every,
        max_eval=3 * check_every,
        history_size=20,
        tolerance_grad=0.0,
        tolerance_change=0.0,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = problem.loss_fn(trained(inputs), targets)
        loss.backward()
        return loss

    initial = float(closure().detach())
    losses, converged = [], False
    while len(losses) * check_every < max_iter and not converged:
        optimizer.step(closure)
        loss = float(closure().detach())
        norm = float(torch.cat([q.grad.reshape(-1) for q in params]).norm())
        losses.append(loss)
        if not math.isfinite(loss):
            msg = f"L-BFGS diverged (loss {loss}) from an initial loss of {initial}"
            raise RuntimeError(msg)
        converged = loss <= zero_level * initial or norm < grad_tol
    iterations = optimizer.state[params[0]]["n_iter"]
    return Convergence(initial, losses[0], losses[-1], norm, iterations, converged)


def steps_to_reach(result: TrainResult, level: float) -> int | None:
    """The first recorded step at which the full training loss is at most ``level``."""
    for step, loss in zip(result.steps, result.losses, strict=True):
        if loss <= level:
            return step
    return None
