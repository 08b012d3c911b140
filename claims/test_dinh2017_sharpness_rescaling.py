"""dinh2017: sharpness is not invariant under the rescalings that leave a ReLU network's function.

Conjecture:
    Multiplying the weights and biases of one layer of a rectified network by ``alpha``
    and the weights of the next layer by ``1 / alpha`` leaves the network's function
    unchanged, but its Hessian becomes ``D H D`` (``D`` diagonal), so the sharpness
    ``lambda_max`` of one and the same minimum can be moved by orders of magnitude; a
    rescaling-invariant sharpness is needed to compare solutions.

Paper:
    ``dinh2017``, section 4 (Theorem 4): the ``alpha``-scale transformation is an
    observationally equivalent reparametrisation; the spectral norm of the Hessian at a
    minimum can be made arbitrarily large. The paper proves this and runs no experiment.
    ``li2018``, section 4: filter-normalised directions, proposed to make sharpness
    comparable across such rescalings.

Claims (:data:`CLAIMS`):
    1. ``dinh2017.rescaling.sharpness_moves`` (**identity**): per ``alpha in {0.01, 0.1,
       10, 100}``, ``r = lambda_max(H') / lambda_max(H)``, geometric mean over seeds; holds
       if for every ``alpha`` the lower end exceeds ``MOVE = 10``. By interlacing ``r >=
       max(alpha^-2 s_0, alpha^2 s_1, s_2)`` (``s_l`` the top eigenvalue of the diagonal
       block of layer ``l``'s rescaled parameters over ``lambda_max(H)``, recorded as
       ``data["block_bound"]``): the ratio follows from the chain rule for any network,
       so this checks the instrument and is never counted. Sanity checks (they cannot
       fail when the instrument works): the filter-normalised curvature of the rescaled
       copy, from its own random directions, moves by less than ``MOVE`` (invariant by
       construction); permuting the hidden units keeps ``lambda_max`` (an orthogonal
       similarity). Preconditions (the test fails unless both hold): the rescaled network
       computes the same function (``max |f' - f| < 1e-10``) and ``||H' - D H D||_F /
       ||D H D||_F < 1e-8``; tanh networks, not positively homogeneous, show O(1) errors
       (``data["preconditions"]``).
    2. ``dinh2017.rescaling.invariant_ranking`` (**evidence**, the empirical content
       behind the identity: is there a rescaling-invariant measure that keeps its ranking
       of solutions?). Several trained solutions, each stopped at its own training loss
       (log-uniform in ``[1e-2, 1e-1]``, drawn from its seed, so that their sharpnesses
       differ), each copied under a random function-preserving rescaling of all three
       layers (layer 0 times ``a``, layer 1 times ``b / a``, layer 2 times ``1 / b``,
       biases with their layer's cumulative factor; ``log10 a, log10 b`` uniform in
       ``[-3, 3]``, drawn from the seed). Statistic: Spearman's rank correlation, over
       the solutions, of the filter-normalised curvature (:data:`DIRECTIONS` random
       directions, independent for the copy) of each solution and of its copy; 95%
       bootstrap interval over the solutions. Holds if its lower end is above
       ``RANK_LEVEL = 0.7``; fails if its upper end is below it. It can fail: the
       Monte-Carlo estimate is noisy and the measure may not separate the solutions.
       Opposite control: the same correlation for plain ``lambda_max``, which the
       conjecture says a rescaling scrambles (fires if the upper end is below 0.7). False
       target: the same rule on a wrong pairing (each solution against the next
       solution's copy), where no ranking is kept.

Setup (:data:`SETUPS`):
    ReLU softmax networks ``d-w-w-k`` trained on Gaussian mixtures by full-batch GD (step
    0.05) (:func:`claims.spectra.trained`), dense float64 Hessians of the training loss.
    Quick: ``k = 3`` clusters of 20 samples in 10 dimensions, width 16 (499 parameters).
    Full: ``k = 5`` clusters of 100 in 100 dimensions, width 30 (4,115 parameters).

Power (claim 2; numbers in ``data["power"]``): the design draws at least the solutions
that the control needs at power 0.9 if the rescalings leave ``lambda_max`` a rank
correlation of at most ``CONTROL_RHO = 0.25`` (:func:`claims.stats.points_for_rank_correlation`;
a ten-solution pilot estimates that correlation too poorly to size it); the pilot
solutions (their own seeds) give the claim's Spearman's rho and the solutions it needs
at power 0.9; the sequential design draws the larger number from the reserve, at most
``cap`` (beyond it the record is ``undecided``). Claim 1 is an
identity: its seeds are fixed.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import pathlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

import hesskit
from claims import spectra as sp
from claims import stats
from claims.figures import pyplot, save_figure
from claims.preregistration import Claim, Control, FalseTarget, Rule, Sanity
from claims.report import conclude
from claims.seeds import fresh, stream
from hesskit.landscape import permute_hidden_units
from hesskit.params import flatten_parameters
from hesskit.problems import Problem
from hesskit.train import gradient_descent

ALPHAS = (0.01, 0.1, 10.0, 100.0)
"""The rescaling factors of the first layer (the second is divided by them)."""
FUNCTION_TOLERANCE = 1e-10
"""The largest output difference that counts as the same function (float64)."""
IDENTITY_TOLERANCE = 1e-8
"""The largest relative Frobenius error that counts as ``H' = D H D``."""
MOVE = 10.0
"""A ratio of at least this (or at most its inverse) is a move by orders of magnitude."""
DIRECTIONS = 100
"""Filter-normalised random directions per network and per rescaled copy."""
RANK_LEVEL = 0.7
"""Spearman's rho above which a measure keeps its ranking of solutions under rescaling."""
LOG10_LOSS_RANGE = (-2.0, -1.0)
"""The range of ``log10`` of the training loss at which each ranked solution stops."""
LOG10_SCALE_RANGE = (-3.0, 3.0)
"""The range of ``log10`` of the two random rescaling factors of a ranked solution."""
POWER = 0.9
PERMUTATION_ROLE = 1
"""The :func:`claims.seeds.stream` role of the hidden-unit permutation of a seed."""
DIRECTION_ROLE = 2
"""The role of the original network's directions; copy ``a`` uses ``DIRECTION_ROLE + 1 + a``."""
SOLUTION_ROLE = 10
"""The role of a ranked solution's stopping loss and rescaling factors."""
CONTROL_RHO = 0.25
"""The largest rank correlation of ``lambda_max`` under the rescalings that the design must
see below ``RANK_LEVEL`` at power 0.9 (a ten-solution pilot cannot size the control)."""
CONTROL_SOLUTIONS = stats.points_for_rank_correlation(CONTROL_RHO, RANK_LEVEL, power=POWER)
"""The fewest ranked solutions the sequential design draws (the control's power)."""

MOVES = Claim(
    id="dinh2017.rescaling.sharpness_moves",
    conjecture="the function-preserving rescaling moves lambda_max by orders of magnitude",
    paper="dinh2017",
    section="section 4 (Theorem 4)",
    kind="identity",
    statistic="lambda_max(H') / lambda_max(H) at the weakest alpha (geometric mean over seeds)",
    rule=Rule("above", MOVE, null=1.0),
    expected="holds",
    why=(
        "H' = D H D by the chain rule, so by eigenvalue interlacing lambda_max(H') >= "
        "max(alpha^-2 s_0, alpha^2 s_1, s_2) lambda_max(H) for any network (s_l: the top "
        "eigenvalue of layer l's diagonal block over lambda_max(H))"
    ),
    sanity_checks=(
        Sanity(
            "filter-normalised",
            "li2018's filter-normalised curvature, own random directions: max over alpha of "
            "|log ratio| (mean over seeds), invariant by construction",
            Rule("below", math.log(MOVE)),
        ),
        Sanity(
            "permutation",
            "permuting the hidden units: max over seeds of |lambda_max ratio - 1| "
            "(an orthogonal similarity)",
            Rule("below", 1e-8),
        ),
    ),
)
RANKING = Claim(
    id="dinh2017.rescaling.invariant_ranking",
    conjecture="a rescaling-invariant sharpness (filter-normalised curvature) ranks trained "
    "solutions the same before and after random function-preserving rescalings",
    paper="dinh2017",
    section="section 4; the measure of li2018, section 4",
    kind="evidence",
    statistic="Spearman's rho over solutions of the filter-normalised curvature of each "
    "solution and of its randomly rescaled copy (independent directions)",
    rule=Rule("above", RANK_LEVEL),
    expected="holds",
    controls=(
        Control(
            "plain lambda_max",
            "the same rank correlation for lambda_max, which the rescalings move by up to "
            "orders of magnitude (Dinh et al.): the ranking must be lost",
            Rule("below", RANK_LEVEL),
        ),
    ),
    false_targets=(
        FalseTarget(
            "wrong pairing",
            "each solution's curvature against the next solution's rescaled copy",
        ),
    ),
)
CLAIMS = (MOVES, RANKING)


@dataclass(frozen=True)
class Setup:
    """One profile's pre-registered sizes and seeds."""

    num_clusters: int
    input_dim: int
    samples_per_cluster: int
    width: int
    seeds: tuple[int, ...]
    """The identity's seeds."""
    design: stats.SequentialDesign
    reserve: tuple[int, ...]
    """The ranked solutions' seeds, drawn in order by ``design``."""
    pilot_seeds: tuple[int, ...]
    """The ranking's pilot solutions."""

    def run(self, seed: int, device: str, target_loss: float = 0.01) -> sp.Run:
        """The ReLU network of ``seed`` trained to ``target_loss`` (:mod:`claims.spectra`)."""
        return sp.Run(
            num_clusters=self.num_clusters,
            width=self.width,
            seed=seed,
            input_dim=self.input_dim,
            samples_per_cluster=self.samples_per_cluster,
            target_loss=target_loss,
            device=device,
        )


SETUPS = {
    "quick": Setup(
        num_clusters=3,
        input_dim=10,
        samples_per_cluster=20,
        width=16,
        seeds=(20, 21, 22, 23, 24),
        design=stats.SequentialDesign(minimum=CONTROL_SOLUTIONS, cap=48),
        reserve=tuple(range(300, 348)),
        pilot_seeds=tuple(range(80, 90)),
    ),
    "full": Setup(
        num_clusters=5,
        input_dim=100,
        samples_per_cluster=100,
        width=30,
        seeds=tuple(range(20, 30)),
        design=stats.SequentialDesign(minimum=CONTROL_SOLUTIONS, cap=48),
        reserve=tuple(range(300, 348)),
        pilot_seeds=tuple(range(80, 90)),
    ),
}


def _linears(model: nn.Sequential) -> list[nn.Linear]:
    return [m for m in model if isinstance(m, nn.Linear)]


def rescaled_by(model: nn.Sequential, factors: tuple[float, ...]) -> nn.Sequential:
    """A copy whose linear layer ``l`` has its output scaled by ``factors[l]``.

    Layer ``l``'s weight is multiplied by ``factors[l] / factors[l - 1]`` and its bias by
    ``factors[l]``; a ReLU network with ``factors[-1] = 1`` computes the same function
    (positive homogeneity). Later layers than ``factors`` covers keep the factor 1.
    """
    copy_ = copy.deepcopy(model)
    previous = 1.0
    with torch.no_grad():
        for layer, factor in zip(_linears(copy_), factors, strict=False):
            layer.weight.mul_(factor / previous)
            layer.bias.mul_(factor)
            previous = factor
    return copy_


def rescaled(model: nn.Sequential, alpha: float) -> nn.Sequential:
    """A copy with linear layer 0's weight and bias times ``alpha``, layer 1's weight over it."""
    return rescaled_by(model, (alpha, 1.0))


def scaling_diagonal(model: nn.Sequential, alpha: float) -> torch.Tensor:
    """``D``: ``1 / alpha`` on layer 0's parameters, ``alpha`` on layer 1's weight, 1 elsewhere.

    Built as a model whose parameters hold their ``D`` entries, flattened like the Hessian.
    """
    ones = copy.deepcopy(model)
    with torch.no_grad():
        for p in ones.parameters():
            p.fill_(1.0)
    return flatten_parameters(rescaled(ones, 1 / alpha))


def dense_hessian(problem: Problem, model: nn.Module) -> torch.Tensor:
    """The dense float64 Hessian of the training loss."""
    return hesskit.dense(hesskit.hessian(model, problem.loss_fn, problem.data))


def _lambda_max(matrix: torch.Tensor) -> float:
    """The largest eigenvalue of a symmetric matrix."""
    return float(torch.linalg.eigvalsh(matrix)[-1])


def filter_normalised_directions(model: nn.Module, count: int, seed: int) -> torch.Tensor:
    """``count`` random directions ``(count, n)`` normalised filter by filter (Li et al. 2018).

    Each row of each weight matrix (the incoming weights of one unit) is a Gaussian draw
    rescaled to the norm of that row of ``model``; biases are not perturbed (zero), as in
    Li et al.'s ``biasbn`` choice. Flattened like the Hessian.
    """
    gen = torch.Generator().manual_seed(seed)
    holder = copy.deepcopy(model)
    rows = []
    for _ in range(count):
        with torch.no_grad():
            for original, target in zip(model.parameters(), holder.parameters(), strict=True):
                if original.ndim == 2:
                    draw = torch.randn(original.shape, generator=gen, dtype=original.dtype)
                    draw = draw.to(original.device)
                    norms = original.norm(dim=1, keepdim=True) / draw.norm(dim=1, keepdim=True)
                    target.copy_(draw * norms)
                else:
                    target.zero_()
        rows.append(flatten_parameters(holder))
    return torch.stack(rows)


def normalised_curvature(hessian: torch.Tensor, directions: torch.Tensor) -> float:
    """The mean curvature ``d^T H d`` over the filter-normalised ``directions``."""
    return float(((directions @ hessian) * directions).sum(1).mean())


def unit_curvature(hessian: torch.Tensor, directions: torch.Tensor) -> float:
    """The mean curvature ``u^T H u`` over the unit vectors along ``directions``: the same
    directions without the weights' scale, which moves with the parametrisation (the
    contrast to the control)."""
    units = directions / directions.norm(dim=1, keepdim=True)
    return normalised_curvature(hessian, units)


@dataclass(frozen=True)
class Rescaling:
    """One trained network against its rescaled copies, per ``alpha``.

    Attributes:
        activation: ``"relu"`` or ``"tanh"``.
        lambda_max: of the network's Hessian ``H``.
        output_error: ``max |f'(x) - f(x)|`` over the training inputs and logits.
        identity_error: ``||H' - D H D||_F / ||D H D||_F``, ``H'`` computed afresh.
        ratio: ``lambda_max(H') / lambda_max(H)``.
        block_bound: ``max(alpha^-2 s_0, alpha^2 s_1, s_2)``, ``s_l`` the largest
            eigenvalue of the diagonal block of ``H`` of layer ``l``'s rescaled
            parameters (0: layer 0's weight and bias; 1: layer 1's weight; 2: the rest)
            over ``lambda_max(H)``: a lower bound on ``ratio`` by interlacing.
        normalised_ratio: the filter-normalised curvature of the copy over the
            network's, each from its own independent random directions.
        unit_ratio: the same with the directions scaled to unit length.
        permuted_ratio: ``lambda_max`` after permuting the hidden units, over ``lambda_max``.
    """

    activation: str
    lambda_max: float
    output_error: dict[float, float]
    identity_error: dict[float, float]
    ratio: dict[float, float]
    block_bound: dict[float, float]
    normalised_ratio: dict[float, float]
    unit_ratio: dict[float, float]
    permuted_ratio: float

    @property
    def worst_output_error(self) -> float:
        return max(self.output_error.values())

    @property
    def worst_identity_error(self) -> float:
        return max(self.identity_error.values())

    @property
    def worst_normalised_move(self) -> float:
        """``max_alpha |log(normalised_ratio)|``: the control's per-seed value."""
        return max(abs(math.log(v)) for v in self.normalised_ratio.values())

    def summary(self) -> dict[str, object]:
        """The fields, ``alpha`` keys as strings (JSON)."""
        return {
            field: {f"{a:g}": v for a, v in value.items()} if isinstance(value, dict) else value
            for field, value in dataclasses.asdict(self).items()
        }


def _permuted(model: nn.Sequential, seed: int) -> nn.Sequential:
    """``model`` with the units of both hidden layers permuted (seeded)."""
    gen = torch.Generator().manual_seed(stream(seed, PERMUTATION_ROLE))
    for index, layer in enumerate(_linears(model)[:-1]):
        model = permute_hidden_units(
            model, index, torch.randperm(layer.out_features, generator=gen)
        )
    return model


def _block_bound(hessian: torch.Tensor, d: torch.Tensor, top: float) -> float:
    """``max(alpha^-2 s_0, alpha^2 s_1, s_2)`` of :class:`Rescaling`, from ``D`` at ``alpha``."""
    bound = 0.0
    for block in (d < 1, d > 1, d == 1):
        index = torch.flatten(torch.nonzero(block))
        if index.numel():
            sub = hessian[index][:, index] * (d[index][:, None] * d[index][None, :])
            bound = max(bound, _lambda_max(sub) / top)
    return bound


def measure(problem: Problem, model: nn.Sequential, seed: int, activation: str) -> Rescaling:
    """Rescale ``model`` by every ``alpha`` and permute it; compare outputs and Hessians."""
    hessian = dense_hessian(problem, model)
    top = _lambda_max(hessian)
    curvature = normalised_curvature(
        hessian, directions := filter_normalised_directions(model, DIRECTIONS, _roles(seed)[0])
    )
    unit = unit_curvature(hessian, directions)
    with torch.no_grad():
        outputs = model(problem.inputs)
    fields: dict[str, dict[float, float]] = {
        name: {}
        for name in (
            "output_error",
            "identity_error",
            "ratio",
            "block_bound",
            "normalised_ratio",
            "unit_ratio",
        )
    }
    for index, alpha in enumerate(ALPHAS):
        image = rescaled(model, alpha)
        with torch.no_grad():
            fields["output_error"][alpha] = float((image(problem.inputs) - outputs).abs().max())
        d = scaling_diagonal(model, alpha)
        predicted = d[:, None] * hessian * d[None, :]
        measured = dense_hessian(problem, image)
        fields["identity_error"][alpha] = float(
            torch.linalg.norm(measured - predicted) / torch.linalg.norm(predicted)
        )
        fields["ratio"][alpha] = _lambda_max(measured) / top
        fields["block_bound"][alpha] = _block_bound(hessian, d, top)
        own = filter_normalised_directions(image, DIRECTIONS, _roles(seed)[1 + index])
        fields["normalised_ratio"][alpha] = normalised_curvature(measured, own) / curvature
        fields["unit_ratio"][alpha] = unit_curvature(measured, own) / unit
    permuted = _lambda_max(dense_hessian(problem, _permuted(model, seed))) / top
    return Rescaling(activation, top, **fields, permuted_ratio=permuted)


def _roles(seed: int) -> list[int]:
    """The direction seeds of the network (first) and of each rescaled copy."""
    return [stream(seed, DIRECTION_ROLE + i) for i in range(1 + len(ALPHAS))]


@functools.cache
def relu_rescaling(setup: Setup, seed: int, device: str) -> Rescaling:
    """The statistics on the trained ReLU network of ``seed``."""
    run = setup.run(seed, device)
    problem, result, _ = sp.trained(run)
    assert result.reached_target, f"GD missed the training loss {run.target_loss}: {run}"
    return measure(problem, result.model, seed, "relu")


@functools.cache
def tanh_rescaling(setup: Setup, seed: int, device: str) -> Rescaling:
    """The same on a tanh network (the same data, initialisation and GD): a sanity check
    that the preconditions' errors see a rescaling that is not function-preserving."""
    run = setup.run(seed, device)
    problem, _ = sp.problem_of(run)
    problem = dataclasses.replace(problem, activation="tanh")
    result = gradient_descent(
        problem.make_model(seed=run.seed),
        problem.loss_fn,
        problem.data,
        lr=run.lr,
        max_steps=run.max_steps,
        target_loss=run.target_loss,
    )
    assert result.reached_target, f"tanh GD missed the training loss (seed {seed})"
    return measure(problem, result.model, seed, "tanh")


@dataclass(frozen=True)
class Solution:
    """One ranked solution and its randomly rescaled copy (claim 2).

    Attributes:
        loss: the training loss it was stopped at.
        factors: the output scales ``(a, b)`` of layers 0 and 1 in the copy.
        lambda_max: of the solution's Hessian, and ``lambda_max_copy`` of the copy's.
        curvature: the filter-normalised curvature of the solution, and ``curvature_copy``
            of the copy (from its own directions).
    """

    loss: float
    factors: tuple[float, float]
    lambda_max: float
    lambda_max_copy: float
    curvature: float
    curvature_copy: float


def _solution_draws(seed: int) -> tuple[float, tuple[float, float]]:
    """The stopping loss and the two rescaling factors of the ranked solution ``seed``."""
    rng = np.random.default_rng(stream(seed, SOLUTION_ROLE))
    loss = 10 ** rng.uniform(*LOG10_LOSS_RANGE)
    first, second = 10 ** rng.uniform(*LOG10_SCALE_RANGE, size=2)
    return float(loss), (float(first), float(second))


@functools.cache
def ranked_solution(setup: Setup, seed: int, device: str) -> Solution:
    """Train the solution of ``seed`` to its loss, rescale it, measure both sharpnesses."""
    loss, factors = _solution_draws(seed)
    problem, result, _ = sp.trained(setup.run(seed, device, loss))
    assert result.reached_target, f"GD missed the training loss {loss:g} (seed {seed})"
    pair = (result.model, rescaled_by(result.model, (*factors, 1.0)))
    values = []
    for index, model in enumerate(pair):
        hessian = dense_hessian(problem, model)
        directions = filter_normalised_directions(model, DIRECTIONS, _roles(seed)[index])
        values.append((_lambda_max(hessian), normalised_curvature(hessian, directions)))
    (top, curvature), (top_copy, curvature_copy) = values
    return Solution(loss, factors, top, top_copy, curvature, curvature_copy)


def _rank_correlation(solutions: list[Solution], measure: str, shift: int = 0) -> stats.Interval:
    """Spearman's rho of ``measure`` of the solutions with that of their copies, each
    solution paired with the copy ``shift`` places on (0: its own)."""
    before = [getattr(s, measure) for s in solutions]
    after = np.roll([getattr(s, f"{measure}_copy") for s in solutions], -shift)
    return stats.spearman_interval(before, after)


def _preconditions(runs: list[Rescaling], tanh: list[Rescaling]) -> dict[str, float]:
    """The chain-rule identities the claim rests on, worst over seeds; fails the test
    unless both hold (they are exact in exact arithmetic: round-off, not a statistic)."""
    found = {
        "max over seeds and alpha of |f'(x) - f(x)|": max(r.worst_output_error for r in runs),
        "max over seeds and alpha of ||H' - D H D||_F / ||D H D||_F": max(
            r.worst_identity_error for r in runs
        ),
        "tanh (not function-preserving): min over seeds of max |f'(x) - f(x)|": min(
            r.worst_output_error for r in tanh
        ),
        "tanh: min over seeds of max ||H' - D H D||_F / ||D H D||_F": min(
            r.worst_identity_error for r in tanh
        ),
    }
    worst_output, worst_identity = list(found.values())[:2]
    if not (worst_output < FUNCTION_TOLERANCE and worst_identity < IDENTITY_TOLERANCE):
        pytest.fail(f"a precondition of the rescaling does not hold: {found}")
    return found


def test_sharpness_moves_by_orders_of_magnitude(
    setup: Setup,
    seed_offset: int,
    device: str,
    record_property: Callable[..., None],
    report_dir: pathlib.Path | None,
) -> None:
    seeds = fresh(setup.seeds, seed_offset)
    runs = [relu_rescaling(setup, s, device) for s in seeds]
    tanh = [tanh_rescaling(setup, s, device) for s in seeds]
    preconditions = _preconditions(runs, tanh)
    moves = {a: stats.geometric_mean_interval([r.ratio[a] for r in runs]) for a in ALPHAS}
    weakest = min(ALPHAS, key=lambda a: moves[a].low)
    record = MOVES.record(
        moves[weakest],
        sanity_checks={
            "filter-normalised": stats.t_interval([r.worst_normalised_move for r in runs]),
            "permutation": max(abs(r.permuted_ratio - 1) for r in runs),
        },
        data={
            "weakest_alpha": weakest,
            "seeds": list(seeds),
            "preconditions": preconditions,
            "moves": {f"{a:g}": dataclasses.asdict(m) for a, m in moves.items()},
            "decisions_per_alpha": {f"{a:g}": MOVES.rule.decide(m) for a, m in moves.items()},
            "block_bound": {f"{a:g}": [r.block_bound[a] for r in runs] for a in ALPHAS},
            "unit_direction_curvature_ratio": {
                f"{a:g}": [r.unit_ratio[a] for r in runs] for a in ALPHAS
            },
            "runs": [r.summary() for r in runs],
            "tanh": [r.summary() for r in tanh],
        },
    )
    if report_dir is not None:
        _draw(runs, report_dir)
    conclude(record_property, record, seed_offset=seed_offset)


def test_invariant_sharpness_keeps_its_ranking(
    setup: Setup, seed_offset: int, device: str, record_property: Callable[..., None]
) -> None:
    pilot = [ranked_solution(setup, s, device) for s in fresh(setup.pilot_seeds, seed_offset)]
    pilot_rho = {m: _rank_correlation(pilot, m).estimate for m in ("curvature", "lambda_max")}
    needed = stats.points_for_rank_correlation(pilot_rho["curvature"], RANK_LEVEL, power=POWER)
    draw = setup.design.draw(fresh(setup.reserve, seed_offset), needed)
    solutions = [ranked_solution(setup, s, device) for s in draw.seeds]
    record = RANKING.record(
        _rank_correlation(solutions, "curvature"),
        controls={"plain lambda_max": _rank_correlation(solutions, "lambda_max")},
        false_targets={"wrong pairing": _rank_correlation(solutions, "curvature", shift=1)},
        data={
            "power": {
                "pilot_seeds": list(fresh(setup.pilot_seeds, seed_offset)),
                "pilot_rho": pilot_rho,
                "solutions_needed": needed,
                "control_solutions": CONTROL_SOLUTIONS,
                "solutions_used": len(draw.seeds),
                "min_detectable_rho": stats.min_detectable_rank_correlation(
                    RANK_LEVEL, len(draw.seeds), power=POWER
                ),
            },
            "seeds": list(draw.seeds),
            "solutions": [dataclasses.asdict(s) for s in solutions],
        },
        unpowered=draw.unpowered,
    )
    conclude(record_property, record, seed_offset=seed_offset)


def _draw(runs: list[Rescaling], report_dir: pathlib.Path) -> None:
    """``lambda_max`` and the filter-normalised curvature against ``alpha`` per seed."""
    plt = pyplot()
    figure, ax = plt.subplots(figsize=(5.5, 3.6))
    grid = sorted((*ALPHAS, 1.0))
    for index, r in enumerate(runs):
        first = index == 0
        ax.plot(
            grid,
            [r.ratio.get(a, 1.0) for a in grid],
            "o-",
            color="C0",
            alpha=0.6,
            label="lambda_max(H') / lambda_max(H)" if first else None,
        )
        ax.plot(
            grid,
            [r.normalised_ratio.get(a, 1.0) for a in grid],
            "s--",
            color="C2",
            alpha=0.6,
            label="filter-normalised curvature ratio (control)" if first else None,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("alpha (layer 1 times alpha, layer 2 over alpha)")
    ax.set_ylabel("ratio to the unscaled network")
    ax.legend(fontsize=7)
    ax.set_title(
        f"dinh2017: one function, many sharpnesses ({len(runs)} trained networks)", fontsize=8
    )
    save_figure(figure, report_dir, "dinh2017_sharpness_rescaling")
