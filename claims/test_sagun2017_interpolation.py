"""sagun2017: at interpolation of the squared loss the Hessian is its Gauss-Newton part.

Conjecture:
    For the squared loss on an over-parametrised network trained to interpolation, the
    residual term of the Hessian vanishes: ``||H - G|| / ||H||`` (spectral norms, ``G``
    the Gauss-Newton matrix) goes to 0 as the training loss goes to 0, about as
    ``sqrt(loss)``; and the number of non-negligible eigenvalues of ``H`` falls to at
    most the rank bound of ``G``, samples x outputs.

Paper:
    ``sagun2017``, section 2: the Hessian of the mean loss splits into the generalized
    Gauss-Newton term ``(1/N) sum_i J_i^T l''(f_i, y_i) J_i`` and the term ``(1/N) sum_i
    l'(f_i, y_i) nabla^2 f_i``; for the squared loss ``l'`` is proportional to the
    residual ``f_i - y_i`` while ``l''`` is a constant. ``papyan2019`` writes the same
    decomposition for cross-entropy, where ``l'`` is ``p - y`` and ``l''`` is ``diag(p) -
    p p^T``: both shrink together as the loss falls (the control). The rank bound:
    ``G`` is a mean of ``N`` matrices ``J_i^T A_i J_i`` of rank at most ``K`` (the
    outputs), so ``rank G <= N K``.

Kind: both records are **identities** (:data:`CLAIMS`, ``why``). ``H - G`` is linear in
the residual vector, of norm ``sqrt(N K loss)``, so the slope of ``log ||H - G|| / ||H||``
on ``log loss`` is 1/2 up to the variation of the networks' second derivatives; and by
Weyl's inequality, once ``||H - G|| / ||H||`` is below the near-zero threshold the count of
``H`` is at most the count of ``G``, at most ``N K``. They check the instrument (the
operator algebra ``hesskit.hessian - hesskit.ggn``, the dense spectra, L-BFGS to
interpolation) and are never counted for or against a conjecture.

Setup (:data:`SETUPS`):
    Squared loss: a teacher-student regression with ``K`` outputs (:func:`_regression`):
    standard normal inputs in ``d`` dimensions, a random tanh teacher ``d - t - K``, each
    output standardised over the samples, a tanh student ``d - w - K`` (realisable, ``N
    K`` well below the parameter count). Quick: ``d = 10``, ``t = 4``, ``K = 2``, ``N =
    20`` (bound 40), ``w = 40`` (522 parameters). Full: ``d = 20``, ``t = 8``, ``K = 4``,
    ``N = 100`` (bound 400), ``w = 200`` (5,004 parameters). Training: full-batch L-BFGS
    (:func:`lbfgs_to_levels`), stopping at the first iterate below each level of
    :attr:`Setup.levels`; at each stop the dense float64 ``H - G`` and ``G`` and their
    exact spectra. Cross-entropy control: a separable Gaussian mixture
    (:func:`hesskit.problems.gaussian_mixture`, quick ``k = 3`` clusters of 10 in 10
    dimensions, a tanh ``10 - 40 - 3`` network), the same L-BFGS to ``1e-1 .. 1e-5``.

Statistics and rules (95% intervals):
    1. ``sagun2017.interpolation.residual_vanishes``: per seed, the least-squares slope
       of ``log(||H - G||_2 / ||H||_2)`` on ``log(loss)`` across the stops; the mean over
       seeds with its t-interval. Holds if the lower end is above ``SLOPE_LEVEL = 0.25``
       (half the rate of the identity). Control: cross-entropy on separable data (fires
       if the upper end is below 0.25: the residual term stays).
    2. ``sagun2017.interpolation.rank_bound``: per seed at the last stop, the count
       ``#{|lambda| > 1e-3 max |lambda|}`` of ``H`` minus ``N K``; the largest over seeds.
       Holds if it is below 0.5 (no seed above the bound; counts are integers). Controls:
       cross-entropy at its lowest level against its own bound ``N (k - 1)``, and the
       squared loss at the first stop below ``1e-2`` (each fires if every seed is above
       its bound: the count falls to the bound, it does not sit there from the start).
       Sanity check: the count of ``G`` minus ``N K``, at most 0 by the theorem.

Seeds (the sequential design of :mod:`claims.stats`, pilot seeds apart): statistic 1
draws claim seeds from :attr:`Setup.reserve` until the pilot's power target (0.9) is met,
at least ``minimum`` and at most ``cap``; statistic 2 uses the first ``minimum`` seeds of
the reserve and is ``undecided`` when :func:`bound_power` (a lower bound from Weyl's
inequality) is below 0.9 there. Numbers in ``data["power"]``.
"""

from __future__ import annotations

import functools
import math
import pathlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import norm

import hesskit
from claims import stats
from claims.figures import pyplot, save_figure
from claims.preregistration import Claim, Control, Rule, Sanity
from claims.report import conclude
from claims.seeds import fresh, stream
from hesskit.problems import Problem, gaussian_mixture, mean_squared_error, mlp
from hesskit.spectrum import NEAR_ZERO, near_zero_fraction

SLOPE_LEVEL = 0.25
"""The slope of log residual ratio on log loss above which the residual term vanishes."""
EXCESS_LEVEL = 0.5
"""The largest count over the Gauss-Newton bound below which no seed exceeds it (integers)."""
POWER = 0.9
HISTORY = 50
"""L-BFGS history size."""
LINE_SEARCH_EVALUATIONS = 25
"""Loss evaluations the strong-Wolfe line search may spend on one L-BFGS iteration."""

_LINEAR_IN_RESIDUALS = (
    "H - G = (1/N) sum_i l'(f_i, y_i) nabla^2 f_i is linear in the residuals for the squared "
    "loss (sagun2017, section 2), whose norm is sqrt(N K loss): the slope is 1/2 up to the "
    "variation of the second derivatives of the outputs along the path"
)
_WEYL = (
    "rank G <= N K (G is a mean of N matrices of rank at most K) and, by Weyl's inequality, "
    "H = G + (H - G) has no more eigenvalues above the near-zero threshold than G once "
    "||H - G|| / ||H|| is below it: the bound follows from the residual term vanishing"
)
RESIDUAL = Claim(
    id="sagun2017.interpolation.residual_vanishes",
    conjecture="at interpolation of the squared loss the Hessian's residual term vanishes",
    paper="sagun2017",
    section="section 2 (with papyan2019's decomposition for cross-entropy)",
    kind="identity",
    statistic="slope of log ||H - G||_2 / ||H||_2 on log training loss (mean over seeds)",
    rule=Rule("above", SLOPE_LEVEL),
    expected="holds",
    why=_LINEAR_IN_RESIDUALS,
    controls=(
        Control(
            "cross-entropy",
            "cross-entropy on a separable mixture: l' and l'' shrink together, the residual "
            "term keeps its share",
            Rule("below", SLOPE_LEVEL),
        ),
    ),
)
RANK = Claim(
    id="sagun2017.interpolation.rank_bound",
    conjecture="at interpolation the Hessian's non-negligible rank is at most samples x outputs",
    paper="sagun2017",
    section="section 2",
    kind="identity",
    statistic=f"largest over seeds of #{{|lambda| > {NEAR_ZERO:g} max|lambda|}} of H minus "
    "N K at the last stop",
    rule=Rule("below", EXCESS_LEVEL),
    expected="holds",
    why=_WEYL,
    controls=(
        Control(
            "cross-entropy",
            "cross-entropy at its lowest level, against its own bound N (k - 1): smallest "
            "excess over seeds",
            Rule("above", EXCESS_LEVEL),
        ),
        Control(
            "before interpolation",
            "the squared loss at the first stop below 1e-2: smallest excess over seeds",
            Rule("above", EXCESS_LEVEL),
        ),
    ),
    sanity_checks=(
        Sanity(
            "ggn",
            "largest count of G minus N K over seeds and stops (at most 0 by the theorem)",
            Rule("below", EXCESS_LEVEL),
        ),
    ),
)
CLAIMS = (RESIDUAL, RANK)


@dataclass(frozen=True)
class Setup:
    """One profile's pre-registered sizes, loss levels and seeds."""

    input_dim: int
    teacher_width: int
    outputs: int
    samples: int
    width: int
    levels: tuple[float, ...]
    clusters: int
    cluster_dim: int
    samples_per_cluster: int
    cluster_width: int
    cluster_levels: tuple[float, ...]
    max_iterations: int
    design: stats.SequentialDesign
    reserve: tuple[int, ...]
    """The claim seeds, drawn in order by ``design``."""
    pilot_seeds: tuple[int, ...]


SETUPS = {
    "quick": Setup(
        input_dim=10,
        teacher_width=4,
        outputs=2,
        samples=20,
        width=40,
        levels=(1e-2, 1e-3, 1e-4, 1e-5, 1e-6),
        clusters=3,
        cluster_dim=10,
        samples_per_cluster=10,
        cluster_width=40,
        cluster_levels=(1e-1, 1e-2, 1e-3, 1e-4, 1e-5),
        max_iterations=3000,
        design=stats.SequentialDesign(minimum=6, cap=12),
        reserve=tuple(range(40, 52)),
        pilot_seeds=(6, 7, 8),
    ),
    "full": Setup(
        input_dim=20,
        teacher_width=8,
        outputs=4,
        samples=100,
        width=200,
        levels=(1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8),
        clusters=5,
        cluster_dim=20,
        samples_per_cluster=40,
        cluster_width=200,
        cluster_levels=(1e-1, 1e-2, 1e-3, 1e-4, 1e-5),
        max_iterations=20000,
        design=stats.SequentialDesign(minimum=6, cap=12),
        reserve=tuple(range(40, 52)),
        pilot_seeds=(6, 7, 8),
    ),
}


@dataclass(frozen=True)
class Curvature:
    """The Hessian against its Gauss-Newton part at one stop of training.

    Attributes:
        loss: the training loss reached.
        iteration: the L-BFGS iteration at which it was reached.
        residual_ratio: ``||H - G||_2 / ||H||_2``.
        count_hessian: eigenvalues of ``H`` above ``NEAR_ZERO`` times its largest magnitude.
        count_ggn: the same count for ``G``.
    """

    loss: float
    iteration: int
    residual_ratio: float
    count_hessian: int
    count_ggn: int


@dataclass(frozen=True)
class Trajectory:
    """One seed's stops, one per loss level, and its Gauss-Newton rank bound."""

    stops: tuple[Curvature, ...]
    bound: int
    num_parameters: int

    def slope(self) -> float:
        """The slope of log residual ratio on log loss across the stops."""
        losses = [np.log(c.loss) for c in self.stops]
        ratios = [np.log(c.residual_ratio) for c in self.stops]
        return stats.slope_interval(losses, ratios).estimate

    def excess(self, index: int) -> int:
        """The non-negligible count of ``H`` minus the bound at stop ``index``."""
        return self.stops[index].count_hessian - self.bound

    def ggn_excess(self) -> int:
        """The largest non-negligible count of ``G`` minus the bound at any stop (at most 0
        by the theorem: a sanity check, not a test)."""
        return max(c.count_ggn for c in self.stops) - self.bound


def _regression(setup: Setup, seed: int) -> Problem:
    """The ``K``-output teacher-student regression of ``seed`` (outputs standardised)."""
    generator = torch.Generator().manual_seed(stream(seed, 0))
    inputs = torch.randn(setup.samples, setup.input_dim, generator=generator, dtype=torch.float64)
    sizes = (setup.input_dim, setup.teacher_width, setup.outputs)
    teacher = mlp(sizes, seed=stream(seed, 1))
    with torch.no_grad():
        targets = teacher(inputs)
    targets = (targets - targets.mean(0)) / targets.std(0)
    return Problem(
        name=f"teacher_student(K={setup.outputs})",
        inputs=inputs,
        targets=targets,
        loss_fn=mean_squared_error,
        num_classes=None,
        layer_sizes=(setup.input_dim, setup.width, setup.outputs),
        teacher=teacher,
    )


def _mixture(setup: Setup, seed: int) -> Problem:
    """The separable Gaussian mixture of the cross-entropy control."""
    return gaussian_mixture(
        setup.clusters,
        input_dim=setup.cluster_dim,
        samples_per_cluster=setup.samples_per_cluster,
        hidden=(setup.cluster_width,),
        seed=seed,
    )


def lbfgs_to_levels(
    objective: hesskit.Objective, levels: tuple[float, ...], max_iterations: int
) -> list[tuple[int, torch.Tensor]]:
    """Full-batch L-BFGS from the objective's current point; the first iterate below each level.

    One ``torch.optim.LBFGS`` iteration per ``step`` (``max_iter=1``, the history kept
    across steps) with the strong-Wolfe line search, which needs its own evaluation budget
    (``max_eval``: with the default of ``1.25 max_iter`` it gets one evaluation, returns a
    zero step after the first rejected trial and the iteration stalls for good). The
    loss and gradient are :class:`hesskit.Objective`'s, over all samples.

    Args:
        objective: the full-batch loss; training starts at its current parameters, which
            it leaves unchanged.
        levels: the decreasing loss levels to stop at.
        max_iterations: the L-BFGS iterations allowed for reaching the last level.

    Returns:
        ``(iteration, theta)`` for each distinct stop, in the order of ``levels``: an
        iteration that crosses several levels at once is one stop (the iterate below the
        lowest of them), so that no iterate enters a per-seed regression twice; the
        last stop is below the last level.

    Raises:
        RuntimeError: if a level is not reached within ``max_iterations``.
    """
    theta = objective.parameters().requires_grad_()
    optimizer = torch.optim.LBFGS(
        [theta],
        lr=1.0,
        max_iter=1,
        max_eval=1 + LINE_SEARCH_EVALUATIONS,
        history_size=HISTORY,
        tolerance_grad=0.0,
        tolerance_change=0.0,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        theta.grad = objective.gradient(theta.detach())
        return objective.loss(theta.detach())

    stops, pending = [], list(levels)
    for iteration in range(1, max_iterations + 1):
        optimizer.step(closure)
        loss = float(objective.loss(theta.detach()))
        if pending and loss <= pending[0]:
            while pending and loss <= pending[0]:
                pending.pop(0)
            stops.append((iteration, theta.detach().clone()))
        if not pending:
            return stops
    msg = f"L-BFGS did not reach the loss {pending[0]:g} in {max_iterations} iterations"
    raise RuntimeError(msg)


def _non_negligible(values: torch.Tensor) -> int:
    """``#{|lambda| > NEAR_ZERO max |lambda|}``."""
    return round((1.0 - near_zero_fraction(values)) * values.numel())


def _curvature(problem: Problem, objective: hesskit.Objective, iteration: int) -> Curvature:
    """The dense float64 ``H - G`` and ``G`` at the objective's model's current weights."""
    model = objective.model
    data = problem.data
    hessian = hesskit.hessian(model, problem.loss_fn, data)
    ggn = hesskit.ggn(model, problem.loss_fn, data)
    residual = hesskit.dense(hessian - ggn)
    gauss_newton = hesskit.dense(ggn)
    spectrum = torch.linalg.eigvalsh(residual + gauss_newton)
    residual_norm = float(torch.linalg.eigvalsh(residual).abs().max())
    return Curvature(
        loss=float(objective.loss()),
        iteration=iteration,
        residual_ratio=residual_norm / float(spectrum.abs().max()),
        count_hessian=_non_negligible(spectrum),
        count_ggn=_non_negligible(torch.linalg.eigvalsh(gauss_newton)),
    )


@functools.cache
def trajectory(setup: Setup, seed: int, loss: str, device: str) -> Trajectory:
    """One seed trained by L-BFGS through the levels, ``H`` against ``G`` at each stop.

    ``loss`` is ``"squared"`` (the regression) or ``"cross_entropy"`` (the mixture); the
    data are drawn on the CPU and moved to ``device``, so a seed gives the same run on
    every device up to round-off.
    """
    if loss == "squared":
        problem, levels = _regression(setup, seed), setup.levels
        bound = setup.samples * setup.outputs
    else:
        problem, levels = _mixture(setup, seed), setup.cluster_levels
        bound = problem.num_samples * (problem.num_classes - 1)
    problem = problem.to(device=device)
    model = problem.make_model(seed=stream(seed, 2))
    objective = hesskit.Objective(model, problem.loss_fn, problem.data)
    stops = []
    for iteration, theta in lbfgs_to_levels(objective, levels, setup.max_iterations):
        with torch.no_grad():
            for name, value in objective.layout.unflatten(theta).items():
                model.get_parameter(name).copy_(value)
        stops.append(_curvature(problem, objective, iteration))
    return Trajectory(tuple(stops), bound, objective.num_parameters)


def _trajectories(setup: Setup, seeds: tuple[int, ...], loss: str, device: str) -> list[Trajectory]:
    """:func:`trajectory` of every seed."""
    return [trajectory(setup, seed, loss, device) for seed in seeds]


def _summary(runs: list[Trajectory]) -> list[dict[str, object]]:
    """The raw numbers of every stop of every run, for the record's ``data``."""
    return [
        {
            "losses": [c.loss for c in run.stops],
            "iterations": [c.iteration for c in run.stops],
            "residual_ratios": [c.residual_ratio for c in run.stops],
            "count_hessian": [c.count_hessian for c in run.stops],
            "count_ggn": [c.count_ggn for c in run.stops],
            "bound": run.bound,
            "num_parameters": run.num_parameters,
        }
        for run in runs
    ]


def bound_power(pilot: list[Trajectory], seeds_used: int) -> dict[str, float | int | list[float]]:
    """The power of the per-seed rank rule, from the pilot's residual ratios at the last stop.

    By Weyl's inequality a seed whose ``||H - G|| / ||H||`` at the last stop is below
    ``NEAR_ZERO`` counts at most ``rank G <= N K`` non-negligible eigenvalues of ``H``, so
    the chance that every one of ``seeds_used`` seeds obeys the bound is at least the
    chance that each has its ratio below ``NEAR_ZERO``: with the pilot's ``log10`` ratios
    taken as normal, ``Phi((log10 NEAR_ZERO - mean) / sd) ** seeds_used``. A lower bound
    on the power to find ``holds`` where the theory holds; below ``POWER`` the record
    is ``undecided``.
    """
    logs = np.log10([run.stops[-1].residual_ratio for run in pilot])
    sd = float(np.std(logs, ddof=1))
    if sd <= 0:
        msg = f"the pilot's residual ratios have no spread: {logs.tolist()}"
        raise ValueError(msg)
    per_seed = float(norm.cdf((math.log10(NEAR_ZERO) - logs.mean()) / sd))
    return {
        "pilot_log10_residual_ratio": logs.tolist(),
        "sd": sd,
        "margin": float(math.log10(NEAR_ZERO) - logs.mean()),
        "per_seed": per_seed,
        "power": per_seed**seeds_used,
        "required": POWER,
        "seeds_used": seeds_used,
    }


def _claim_seeds(setup: Setup, seed_offset: int, needed: int) -> stats.SeedDraw:
    """The claim seeds the sequential design draws from the reserve at ``seed_offset``."""
    return setup.design.draw(fresh(setup.reserve, seed_offset), needed)


def test_residual_term_vanishes_at_interpolation(
    setup: Setup,
    seed_offset: int,
    device: str,
    record_property: Callable[..., None],
    report_dir: pathlib.Path | None,
) -> None:
    pilot_seeds = fresh(setup.pilot_seeds, seed_offset)
    pilot = [r.slope() for r in _trajectories(setup, pilot_seeds, "squared", device)]
    power = stats.power_by_setting(
        {"claim": pilot}, {"claim": SLOPE_LEVEL}, setup.design.minimum, power=POWER
    )
    draw = _claim_seeds(setup, seed_offset, power["seeds_needed"])
    runs = _trajectories(setup, draw.seeds, "squared", device)
    slopes = [r.slope() for r in runs]
    entropy_runs = _trajectories(setup, draw.seeds, "cross_entropy", device)
    record = RESIDUAL.record(
        stats.t_interval(slopes),
        controls={"cross-entropy": stats.t_interval([r.slope() for r in entropy_runs])},
        data={
            "power": power,
            "seeds": list(draw.seeds),
            "levels": list(setup.levels),
            "slopes": slopes,
            "runs": _summary(runs),
            "cross_entropy_levels": list(setup.cluster_levels),
            "cross_entropy_slopes": [r.slope() for r in entropy_runs],
            "cross_entropy_runs": _summary(entropy_runs),
        },
        unpowered=draw.unpowered,
    )
    if report_dir is not None:
        _draw(runs, entropy_runs, report_dir)
    conclude(record_property, record, seed_offset=seed_offset)


def test_rank_falls_to_the_gauss_newton_bound(
    setup: Setup, seed_offset: int, device: str, record_property: Callable[..., None]
) -> None:
    pilot = _trajectories(setup, fresh(setup.pilot_seeds, seed_offset), "squared", device)
    power = bound_power(pilot, setup.design.minimum)
    draw = _claim_seeds(setup, seed_offset, setup.design.minimum)
    runs = _trajectories(setup, draw.seeds, "squared", device)
    excess = [r.excess(-1) for r in runs]
    entropy = [r.excess(-1) for r in _trajectories(setup, draw.seeds, "cross_entropy", device)]
    early = [r.excess(0) for r in runs]
    unpowered = draw.unpowered
    if power["power"] < POWER:
        unpowered = f"the Weyl lower bound on the power is {power['power']:.3g} < {POWER}"
    worst = float(max(excess))
    record = RANK.record(
        stats.Interval(worst, worst, worst),
        controls={"cross-entropy": min(entropy), "before interpolation": min(early)},
        sanity_checks={"ggn": max(r.ggn_excess() for r in runs)},
        data={
            "power": power,
            "seeds": list(draw.seeds),
            "bound": runs[0].bound,
            "excess": excess,
            "runs": _summary(runs),
            "cross_entropy_excess": entropy,
            "early_excess": early,
        },
        unpowered=unpowered,
    )
    conclude(record_property, record, seed_offset=seed_offset)


def _draw(runs: list[Trajectory], entropy_runs: list[Trajectory], report_dir: pathlib.Path) -> None:
    """Residual ratio and non-negligible count against the loss, every seed."""
    plt = pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    for group, color, label in ((runs, "C0", "squared"), (entropy_runs, "C3", "cross-entropy")):
        for i, run in enumerate(group):
            losses = [c.loss for c in run.stops]
            left.plot(
                losses,
                [c.residual_ratio for c in run.stops],
                "o-",
                color=color,
                alpha=0.6,
                ms=3,
                label=label if i == 0 else None,
            )
            right.plot(
                losses,
                [c.count_hessian / run.bound for c in run.stops],
                "o-",
                color=color,
                alpha=0.6,
                ms=3,
                label=label if i == 0 else None,
            )
    grid = np.logspace(math.log10(min(c.loss for r in runs for c in r.stops)), -1, 20)
    left.plot(grid, 0.1 * np.sqrt(grid), "k--", lw=1, label="0.1 sqrt(loss)")
    right.axhline(1.0, color="k", ls=":", lw=1)
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xlabel("training loss")
        ax.legend(fontsize=7)
    left.set_yscale("log")
    left.set_ylabel("||H - G|| / ||H||")
    right.set_ylabel(f"#{{|lambda| > {NEAR_ZERO:g} max}} / rank bound of G")
    figure.suptitle("sagun2017: the Hessian against its Gauss-Newton part (L-BFGS)", fontsize=9)
    save_figure(figure, report_dir, "interpolation_gauss_newton")
