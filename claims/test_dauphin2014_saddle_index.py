"""dauphin2014: the index of a critical point grows with its loss (saddles high, minima low).

Conjecture:
    On the loss surface of a neural network, the critical points at high loss are saddles
    with many directions of descent, and the index -- the fraction of negative Hessian
    eigenvalues -- falls as the loss of the critical point falls, reaching zero (minima)
    only near the bottom. In low dimension the mechanism (saddles outnumbering minima
    exponentially in the dimension) is absent and minima at high loss are common.
    Pennington and Bahri (2017) sharpen it for a single-hidden-layer network: for critical
    points of small index, ``index ~ |epsilon - epsilon_c|^(3/2)``
    (:data:`claims.reference.PENNINGTON2017_INDEX_EXPONENT`), epsilon the loss and
    epsilon_c the loss where the index vanishes.

Papers:
    ``dauphin2014`` (:data:`claims.preregistration.PAPERS`), section 4 and figure 1
    (critical points found by Newton's method, which is attracted to saddles, on small
    MLPs: training error against index, :data:`claims.reference.DAUPHIN2014_INDEX_GROWS`);
    ``pennington2017`` (single-hidden-layer tanh networks of width 16 on random Gaussian
    inputs and targets, critical points by minimising the squared gradient norm,
    :data:`claims.reference.PENNINGTON2017_WIDTH`).

Setup (:data:`SETUPS`; Pennington and Bahri's memorisation task):
    One landscape per seed: ``m`` standard normal inputs and targets in ``n`` dimensions
    and a tanh network ``n-n-n`` with biases (PyTorch's default initialisation), the mean
    squared error over every output entry (:func:`hesskit.problems.mean_squared_error`),
    float64; the data and the initialisation come from independent streams of the seed
    (:func:`claims.seeds.stream`). The ratio of parameters to fitted numbers, ``phi = 2 n
    (n + 1) / (m n)``, is about 1/2, so that minima keep a positive loss. Each seed gives
    one start and at most one critical point (independent points): the initialisation,
    trained by full-batch GD (step 0.3) for a number of steps from the grid
    ``descent_steps`` (the seeds cycle through it), so that the starts span the losses
    from the initial one down to the minima. From the start a damped Newton
    (Levenberg-Marquardt) search for ``grad L = 0``, the Gauss-Newton minimisation of
    ``||grad L||^2 / 2`` (:func:`_newton`, dense float64 Hessian): the step is ``-(H^2 +
    mu)^(-1) H grad L``, Newton's ``-H^(-1) grad L`` as ``mu -> 0``, so like Newton's
    method it converges to saddles as readily as to minima. Quick: ``n = 8`` (144
    parameters), ``m = 32`` (phi = 0.56), 8 GD lengths from 0 to 3,200, 250 Newton steps.
    Full (meant for a GPU): the paper's ``n = 16`` (544 parameters), ``m = 64``, 10 GD
    lengths up to 12,800, 500 Newton steps; it alone tests the 3/2 law, which needs many
    critical points of small index.

Statistics and rules (:data:`CLAIMS`; 95% intervals). A point is critical if ``||grad L||
<= GRADIENT_THRESHOLD = 1e-4`` at the end of the search; the others are dropped and
counted. The index is the fraction of eigenvalues below ``-NEGATIVE_TOL max |lambda|``
(``NEGATIVE_TOL = 1e-4``).
    1. ``dauphin2014.saddles.index_grows_with_loss``: Spearman's rho of index with loss
       over the critical points, with its bootstrap interval resampled within each GD
       length (:func:`claims.stats.spearman_interval`); its p-value is a permutation test
       (the losses permuted 9,999 times). Holds above ``RHO_LEVEL = 0.5`` (a strong
       monotone relation, as the curve of Dauphin et al.'s figure 1).
    2. ``pennington2017.saddles.index_three_halves`` (full profile only): over the
       critical points with ``0 < index <= SMALL_INDEX = 0.25`` (the law is an expansion
       near epsilon_c), the least-squares exponent ``gamma`` of ``log index = log alpha +
       gamma log(epsilon - epsilon_c)``, ``epsilon_c`` the best of a grid (:func:`_fit`),
       with a percentile bootstrap interval over the points. Holds inside
       ``EXPONENT_BAND = [1.25, 1.75]`` (within a quarter of 3/2, half the way to 1).

Opposite-setting controls (each can fail):
    1. Minima at high loss in low dimension (claim 1): the same Newton search on a
       narrower network ``n-w-n`` (``w = 2`` quick, 4 full: 42 parameters quick) on fresh
       landscapes; among its critical points above the median loss of the claim's, the
       share of minima (index 0, Clopper-Pearson interval) must lie above
       :data:`MINIMA_SHARE`. It fails if Newton's search, attracted to saddles, finds no
       minima there, or if the narrow network's high-loss critical points are saddles too.
       Its size: 64 narrow starts (quick) leave about 40 critical points above the median;
       at a share of minima of 0.2 the interval clears 0.02 with probability about 0.97
       (binomial), and 0.05 with only about 0.84.
    2. The plateau (claim 2): the same fit with ``epsilon_c`` fixed at the claim's, over
       the critical points of index above ``SMALL_INDEX``: its exponent must lie below
       1.25. It fails if the index keeps growing as fast far from ``epsilon_c``.

False targets: claim 1's rule at rho 0.99 (the index a function of the loss alone); claim
2's band around the wrong exponents 1 (linear growth) and 2.

Sanity checks (cannot fail when the instrument works): the ends of long full-batch GD of
the claim's network and of the narrow one are minima (mean index below
``INDEX_NEAR_ZERO = 0.05``: GD converges to minima); the permutation null's 97.5% point
lies below the rule's level (so the rank level, not chance, decides claim 1; the same for
claim 2's band).

Power design (``data["power"]``): on the pilot seeds, the share of starts that reach a
critical point (Jeffreys, :func:`claims.stats.pilot_hit_rate`) and, for claim 1, the pilot
rho give the critical points needed for the interval to clear the level with power 0.9
(Fisher's z, :func:`claims.stats.points_for_rank_correlation`); for claim 2 the pilot's
bootstrap standard error of ``gamma`` gives the points needed to tell 3/2 from 1
(:func:`claims.stats.replicates_for_standard_error`). The starts are drawn in order from a
reserve by a :class:`claims.stats.SequentialDesign` (rounded up to whole cycles of the
GD lengths); beyond its cap the record is ``undecided``, never an error.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
import torch

import hesskit
from claims import stats
from claims.figures import pyplot, save_figure
from claims.preregistration import Claim, Control, FalseTarget, Rule, Sanity
from claims.reference import PENNINGTON2017_INDEX_EXPONENT, PENNINGTON2017_WIDTH
from claims.report import conclude
from claims.seeds import fresh, stream
from hesskit.problems import mean_squared_error, mlp

GRADIENT_THRESHOLD = 1e-4
"""A point is critical when the search ends with ``||grad L||`` at most this."""
NEGATIVE_TOL = 1e-4
"""An eigenvalue counts as negative below ``-NEGATIVE_TOL * max |lambda|``."""
RHO_LEVEL = 0.5
"""Spearman's rho of index with loss that counts as 'the index grows with the loss'."""
MINIMA_SHARE = 0.02
"""The share of minima among the narrow network's high-loss critical points above which
control 1 fires (the claim's network has none there)."""
INDEX_NEAR_ZERO = 0.05
"""The mean index below which GD end points count as minima (sanity checks)."""
SMALL_INDEX = 0.25
"""The 3/2 law is fitted to the critical points of index in ``(0, SMALL_INDEX]``."""
EXPONENT_HALF_WIDTH = 0.25
"""How far from 3/2 the exponent may be and count as the law: half the distance to 1."""
EXPONENT_BAND = (
    PENNINGTON2017_INDEX_EXPONENT.value - EXPONENT_HALF_WIDTH,
    PENNINGTON2017_INDEX_EXPONENT.value + EXPONENT_HALF_WIDTH,
)
"""The 3/2 law holds when the exponent's interval lies inside this band, [1.25, 1.75]."""
ALTERNATIVE_EXPONENT = 1.0
"""The exponent claim 2's power is sized against: a linear growth must fall outside the band."""
PERMUTATIONS = 9999
"""Permutations of the losses in the permutation tests of claims 1 and 2."""
PERMUTATION_QUANTILE = 0.975
"""The point of the permutation distribution that must lie below the rule's level."""
SENSITIVITY_THRESHOLD = 1e-3
"""The looser gradient threshold of claim 1's sensitivity number (nearly every search)."""
DATA, INIT, PERMUTE = 1, 2, 3
"""The roles of :func:`claims.seeds.stream`: a landscape's data, its initialisation, and
the permutations of a claim."""
DESCENT_STEP = 0.3
"""The step size of the full-batch GD that prepares the starts and the sanity points."""
POWER = 0.9


def _exponent_band(centre: float) -> tuple[float, float]:
    """The exponent band's half-width around another exponent (a false target)."""
    return centre - EXPONENT_HALF_WIDTH, centre + EXPONENT_HALF_WIDTH


def _gd_minima(network: str) -> Sanity:
    """The sanity check that long GD of ``network`` ends at minima."""
    return Sanity(
        f"{network}_gd_minima",
        f"the {network} network at the end of long full-batch GD is at a minimum (GD "
        "converges to minima): mean index small",
        Rule("below", INDEX_NEAR_ZERO),
    )


CLAIMS = (
    Claim(
        id="dauphin2014.saddles.index_grows_with_loss",
        conjecture="the index of a critical point grows with its loss",
        paper="dauphin2014",
        section="section 4, figure 1",
        kind="evidence",
        statistic="Spearman's rho of index with loss over the critical points (p-value: "
        "permutation test of the losses, one-sided)",
        rule=Rule("above", RHO_LEVEL),
        expected="holds",
        controls=(
            Control(
                "narrow_high_loss_minima",
                "low dimension: the share of minima among a narrower network's Newton "
                "critical points above the claim's median loss (Clopper-Pearson)",
                Rule("above", MINIMA_SHARE),
            ),
        ),
        false_targets=(
            FalseTarget(
                "loss_alone", "the index a function of the loss alone (rho > 0.99)", level=0.99
            ),
        ),
        sanity_checks=(
            _gd_minima("wide"),
            _gd_minima("narrow"),
            Sanity(
                "permutation_null",
                "the permutation distribution's 97.5% point lies below the level",
                Rule("below", RHO_LEVEL),
            ),
        ),
    ),
    Claim(
        id="pennington2017.saddles.index_three_halves",
        conjecture="the index grows as the 3/2 power of the loss above epsilon_c",
        paper="pennington2017",
        section="the index of critical points",
        kind="evidence",
        statistic=f"exponent gamma of index ~ (loss - eps_c)^gamma, 0 < index <= {SMALL_INDEX}",
        rule=Rule("inside", EXPONENT_BAND, null=1.0),
        expected="undecided",
        why="full profile only, which has not run yet: the quick "
        "sizes give too few critical points of small index for a fit",
        controls=(
            Control(
                "plateau",
                f"the critical points of index above {SMALL_INDEX}, far from eps_c (the "
                "claim's): the index levels off, the exponent is small",
                Rule("below", EXPONENT_BAND[0]),
            ),
        ),
        false_targets=(
            FalseTarget("linear", "a linear growth, exponent 1", level=_exponent_band(1.0)),
            FalseTarget("quadratic", "a quadratic growth, exponent 2", level=_exponent_band(2.0)),
        ),
        sanity_checks=(
            Sanity(
                "permutation_null",
                "the permuted losses' fits: their 97.5% point lies below the band",
                Rule("below", EXPONENT_BAND[0]),
            ),
        ),
    ),
)
INDEX_GROWS, THREE_HALVES = CLAIMS


@dataclass(frozen=True)
class Setup:
    """One profile's pre-registered sizes and seeds (one landscape and one start per seed;
    the claim's starts drawn in order from ``reserve`` by ``design``)."""

    width: int
    num_samples: int
    descent_steps: tuple[int, ...]
    newton_steps: int
    control_steps: int
    narrow_width: int
    design: stats.SequentialDesign
    reserve: tuple[int, ...]
    pilot_seeds: tuple[int, ...]
    narrow_seeds: tuple[int, ...]
    control_seeds: tuple[int, ...]

    @property
    def num_parameters(self) -> int:
        """``2 n (n + 1)``: the weights and biases of the ``n-n-n`` network."""
        return 2 * self.width * (self.width + 1)

    @property
    def phi(self) -> float:
        """Parameters per fitted number (Pennington and Bahri's phi)."""
        return self.num_parameters / (self.num_samples * self.width)


SETUPS = {
    "quick": Setup(
        width=8,
        num_samples=32,
        descent_steps=(0, 50, 100, 200, 400, 800, 1_600, 3_200),
        newton_steps=250,
        control_steps=4_000,
        narrow_width=2,
        design=stats.SequentialDesign(minimum=40, cap=64),
        reserve=tuple(range(600, 680)),
        pilot_seeds=tuple(range(60, 76)),
        narrow_seeds=tuple(range(800, 864)),
        control_seeds=tuple(range(240, 250)),
    ),
    "full": Setup(
        width=int(PENNINGTON2017_WIDTH.value),
        num_samples=64,
        descent_steps=(0, 50, 100, 200, 400, 800, 1_600, 3_200, 6_400, 12_800),
        newton_steps=500,
        control_steps=20_000,
        narrow_width=4,
        design=stats.SequentialDesign(minimum=200, cap=320),
        reserve=tuple(range(1000, 1400)),
        pilot_seeds=tuple(range(80, 120)),
        narrow_seeds=tuple(range(1600, 1920)),
        control_seeds=tuple(range(260, 300)),
    ),
}


@dataclass(frozen=True)
class Point:
    """A point of one landscape: where it came from, its loss, gradient norm and index."""

    seed: int
    descent_steps: int
    newton_steps: int
    loss: float
    gradient_norm: float
    index: float
    lambda_min: float
    lambda_max: float

    @property
    def critical(self) -> bool:
        """Whether the gradient norm is at most :data:`GRADIENT_THRESHOLD`."""
        return self.gradient_norm <= GRADIENT_THRESHOLD


def _landscape(
    setup: Setup, seed: int, device: str, *, hidden: int | None = None
) -> tuple[torch.nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    """The seed's network ``n-hidden-n`` (``hidden = n`` unless given) and its standard
    normal inputs and targets (``m x n`` each); data and initialisation from independent
    streams of the seed."""
    gen = torch.Generator().manual_seed(stream(seed, DATA))
    shape = (setup.num_samples, setup.width)
    inputs = torch.randn(shape, generator=gen, dtype=torch.float64)
    targets = torch.randn(shape, generator=gen, dtype=torch.float64)
    sizes = [setup.width, hidden or setup.width, setup.width]
    model = mlp(sizes, activation="tanh", seed=stream(seed, INIT), device=device)
    return model, (inputs.to(device), targets.to(device))


def _starts(setup: Setup, seeds: tuple[int, ...]) -> list[tuple[int, int]]:
    """``(seed, GD steps before the search)``: the seeds cycle through the grid of lengths."""
    grid = setup.descent_steps
    return [(seed, grid[i % len(grid)]) for i, seed in enumerate(seeds)]


def _set(model: torch.nn.Module, objective: hesskit.Objective, theta: torch.Tensor) -> None:
    """Copy the flat ``theta`` into the model in place.

    In place, so that the objective's views of the parameters and the Hessian operator
    (whose cached graph is rebuilt when the parameters' versions change) follow it.
    """
    named = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in objective.layout.unflatten(theta).items():
            named[name].copy_(value)


def _index(values: torch.Tensor) -> float:
    """The fraction of eigenvalues below ``-NEGATIVE_TOL max |lambda|``."""
    return float((values < -NEGATIVE_TOL * values.abs().max()).double().mean())


def _newton(
    model: torch.nn.Module, data: tuple[torch.Tensor, torch.Tensor], steps: int
) -> tuple[int, float]:
    """Levenberg-Marquardt on ``grad L = 0`` from the model's parameters; the model ends there.

    Each step solves ``(H^2 + mu I) d = -H g`` in the eigenbasis of the dense Hessian; a
    step that lowers ``||g||`` is taken and ``mu`` divided by 3, else ``mu`` is multiplied
    by 4. Stops after ``steps`` steps, when ``||g|| < 1e-12`` or when no ``mu < 1e8``
    lowers ``||g||``. Returns the steps taken and the final ``||g||``.
    """
    objective = hesskit.Objective(model, mean_squared_error, data)
    curvature = hesskit.hessian(model, mean_squared_error, data)
    theta = objective.parameters()
    gradient = objective.gradient(theta)
    norm, mu, taken = float(gradient.norm()), 1e-2, 0
    while taken < steps:
        taken += 1
        values, vectors = torch.linalg.eigh(hesskit.dense(curvature))
        along = vectors.T @ gradient
        while mu < 1e8:
            trial = theta - vectors @ (values * along / (values**2 + mu))
            trial_gradient = objective.gradient(trial)
            if float(trial_gradient.norm()) < norm:
                theta, gradient, norm = trial, trial_gradient, float(trial_gradient.norm())
                mu = max(mu / 3, 1e-12)
                break
            mu *= 4
        _set(model, objective, theta)
        if norm < 1e-12 or mu >= 1e8:
            break
    return taken, norm


def _measure(
    seed: int,
    model: torch.nn.Module,
    data: tuple[torch.Tensor, torch.Tensor],
    descent: int,
    newton: int,
) -> Point:
    """Loss, gradient norm and Hessian index of the model's current parameters."""
    objective = hesskit.Objective(model, mean_squared_error, data)
    values = torch.linalg.eigvalsh(hesskit.dense(hesskit.hessian(model, mean_squared_error, data)))
    return Point(
        seed=seed,
        descent_steps=descent,
        newton_steps=newton,
        loss=float(objective.loss()),
        gradient_norm=float(objective.gradient().norm()),
        index=_index(values),
        lambda_min=float(values[0]),
        lambda_max=float(values[-1]),
    )


def _descend(
    model: torch.nn.Module, data: tuple[torch.Tensor, torch.Tensor], steps: int
) -> torch.nn.Module:
    """A copy of ``model`` after ``steps`` steps of full-batch GD (step :data:`DESCENT_STEP`)."""
    run = hesskit.train.gradient_descent(
        model, mean_squared_error, data, lr=DESCENT_STEP, max_steps=steps, eval_every=steps or 1
    )
    return run.model


@functools.cache
def critical_point(
    setup: Setup, seed: int, descent: int, device: str, hidden: int | None = None
) -> Point:
    """The seed's start (``descent`` GD steps of the ``n-hidden-n`` network, the claim's
    width unless given) and the Newton search from it."""
    model, data = _landscape(setup, seed, device, hidden=hidden)
    model = _descend(model, data, descent)
    newton, _ = _newton(model, data, setup.newton_steps)
    return _measure(seed, model, data, descent, newton)


@functools.cache
def descent_point(setup: Setup, seed: int, device: str, hidden: int | None = None) -> Point:
    """The end of ``control_steps`` steps of full-batch GD from the seed's initialisation
    (of the ``n-hidden-n`` network; the claim's width unless given)."""
    model, data = _landscape(setup, seed, device, hidden=hidden)
    model = _descend(model, data, setup.control_steps)
    return _measure(seed, model, data, setup.control_steps, 0)


def _search(
    setup: Setup, seeds: tuple[int, ...], device: str, hidden: int | None = None
) -> list[Point]:
    """The cached search of every start of ``seeds``."""
    return [
        critical_point(setup, seed, steps, device, hidden) for seed, steps in _starts(setup, seeds)
    ]


def _critical(points: list[Point], threshold: float = GRADIENT_THRESHOLD) -> list[Point]:
    """The points whose gradient norm is at most ``threshold``."""
    return [p for p in points if p.gradient_norm <= threshold]


def _rho(points: list[Point]) -> stats.Interval:
    """Spearman's rho of index with loss, resampled within each GD length (the design)."""
    return stats.spearman_interval(
        [p.loss for p in points],
        [p.index for p in points],
        groups=[p.descent_steps for p in points],
    )


def _null_rank_quantile(num_points: int) -> float:
    """About the 97.5% point of Spearman's rho of ``num_points`` unrelated pairs (Fisher's
    z with variance ``1.06 / (n - 3)``): what the permutation test must clear."""
    z = scipy.stats.norm.ppf(PERMUTATION_QUANTILE)
    return float(math.tanh(z * math.sqrt(stats.SPEARMAN_Z_VARIANCE / (num_points - 3))))


def _rank_power(pilot: list[Point], starts_used: int) -> dict[str, object]:
    """Starts needed for Spearman's interval to clear :data:`RHO_LEVEL` (and the
    permutation distribution's 97.5% point, below it at the expected points), from the
    pilot."""
    kept = _critical(pilot)
    rate = stats.pilot_hit_rate(len(kept), len(pilot))
    rho = _rho(kept).estimate if len(kept) >= 3 else RHO_LEVEL
    expected = max(4, math.floor(rate * starts_used))
    level = max(RHO_LEVEL, _null_rank_quantile(expected))
    points_needed = stats.points_for_rank_correlation(rho, level, power=POWER)
    return {
        "pilot_seeds": [p.seed for p in pilot],
        "pilot_critical": len(kept),
        "critical_rate": rate,
        "pilot_rho": rho,
        "expected_points": expected,
        "null_quantile_at_expected_points": _null_rank_quantile(expected),
        "level": level,
        "points_needed": points_needed,
        "starts_needed": math.ceil(points_needed / rate),
        "starts_used": starts_used,
        "min_detectable_rho": stats.min_detectable_rank_correlation(level, expected, power=POWER),
    }


def _centred_ranks(values: list[float] | np.ndarray) -> np.ndarray:
    """Average ranks (ties shared), centred: Spearman's rho is their cosine."""
    ranks = scipy.stats.rankdata(values)
    return ranks - ranks.mean()


def _rank_permutation(losses: list[float], indices: list[float], seed: int) -> dict[str, float]:
    """Spearman's rho of index with loss under :data:`PERMUTATIONS` permutations of the
    losses: its :data:`PERMUTATION_QUANTILE` point and the one-sided p-value of the
    observed rho ``(1 + #{permuted >= observed}) / (B + 1)``."""
    x, y = _centred_ranks(losses), _centred_ranks(indices)
    scale = float(np.linalg.norm(x) * np.linalg.norm(y))
    rng = np.random.default_rng(seed)
    draws = rng.permuted(np.tile(x, (PERMUTATIONS, 1)), axis=1) @ y / scale
    observed = float(x @ y / scale)
    return {
        "quantile": float(np.quantile(draws, PERMUTATION_QUANTILE)),
        "p_value": float((1 + np.sum(draws >= observed)) / (PERMUTATIONS + 1)),
        "permutations": PERMUTATIONS,
    }


def _draw_starts(setup: Setup, starts_needed: int, seed_offset: int) -> stats.SeedDraw:
    """The claim's starts: the reserve's first seeds, whole cycles of the GD lengths."""
    cycle = len(setup.descent_steps)
    return setup.design.draw(
        fresh(setup.reserve, seed_offset), cycle * math.ceil(starts_needed / cycle)
    )


def _minima_share(points: list[Point], above: float) -> stats.Interval:
    """The share of minima (index 0) among the critical ``points`` with loss above
    ``above``, with its Clopper-Pearson interval (0 points: the whole of [0, 1])."""
    high = [p for p in _critical(points) if p.loss > above]
    minima = sum(p.index == 0 for p in high)
    if not high:
        return stats.Interval(math.nan, 0.0, 1.0)
    ci = scipy.stats.binomtest(minima, len(high)).proportion_ci()
    return stats.Interval(minima / len(high), float(ci.low), float(ci.high))


def _mean_index(points: list[Point]) -> stats.Interval:
    """The mean index of ``points`` with its t-interval."""
    return stats.t_interval([p.index for p in points])


def test_index_grows_with_loss(
    setup: Setup,
    seed_offset: int,
    device: str,
    record_property: Callable[[str, object], None],
    report_dir: Path | None,
) -> None:
    pilot = _search(setup, fresh(setup.pilot_seeds, seed_offset), device)
    power = _rank_power(pilot, setup.design.minimum)
    draw = _draw_starts(setup, power["starts_needed"], seed_offset)
    power["starts_drawn"] = len(draw.seeds)
    points = _search(setup, draw.seeds, device)
    kept = _critical(points)
    permutation = _rank_permutation(
        [p.loss for p in kept], [p.index for p in kept], stream(seed_offset, PERMUTE)
    )
    saddle_loss = float(np.median([p.loss for p in kept]))
    narrow = _search(setup, fresh(setup.narrow_seeds, seed_offset), device, setup.narrow_width)
    share = _minima_share(narrow, saddle_loss)
    control_seeds = fresh(setup.control_seeds, seed_offset)
    narrow_gd = [descent_point(setup, s, device, setup.narrow_width) for s in control_seeds]
    wide_gd = [descent_point(setup, s, device) for s in control_seeds]
    loose = _critical(points, SENSITIVITY_THRESHOLD)
    record = INDEX_GROWS.record(
        replace(_rho(kept), p_value=permutation["p_value"]),
        controls={"narrow_high_loss_minima": share},
        false_targets={"loss_alone": None},
        sanity_checks={
            "wide_gd_minima": _mean_index(wide_gd),
            "narrow_gd_minima": _mean_index(narrow_gd),
            "permutation_null": permutation["quantile"],
        },
        data={
            "power": power,
            "setup": {**asdict(setup), "num_parameters": setup.num_parameters, "phi": setup.phi},
            "critical": len(kept),
            "starts": len(points),
            "permutation": permutation,
            "points": [asdict(p) for p in points],
            "saddle_median_loss": saddle_loss,
            "claim_minima_share_above_median": vars(_minima_share(points, saddle_loss)),
            "narrow_points": [asdict(p) for p in narrow],
            "narrow_rho": vars(_rho(_critical(narrow))),
            "narrow_control_at_half_and_twice_the_level": {
                str(level): INDEX_GROWS.controls[0].fires.retargeted(level).decide(share)
                for level in (MINIMA_SHARE / 2, 2 * MINIMA_SHARE)
            },
            "narrow_gd_end_points": [asdict(p) for p in narrow_gd],
            "wide_gd_end_points": [asdict(p) for p in wide_gd],
            "gradient_threshold_1e-3": {"points": len(loose), "rho": vars(_rho(loose))},
        },
        unpowered=draw.unpowered,
    )
    if report_dir is not None:
        _draw(points, _critical(narrow), wide_gd, report_dir)
    conclude(record_property, record, seed_offset=seed_offset)


def _fit(
    losses: np.ndarray, indices: np.ndarray, critical: float | None = None
) -> tuple[float, float]:
    """``(gamma, eps_c)`` of ``log index = a + gamma log(loss - eps_c)``, small indices.

    The points are those with ``0 < index <= SMALL_INDEX``. ``eps_c`` is the least-squares
    best of 200 values from 0 to just below the smallest loss of those points, unless
    ``critical`` fixes it (then every point of positive index above ``critical`` counts:
    the plateau fit of claim 2's control); NaNs with fewer than three points.
    """
    if critical is None:
        positive = (indices > 0) & (indices <= SMALL_INDEX)
    else:
        positive = (indices > SMALL_INDEX) & (losses > critical)
    loss, y = losses[positive], np.log(indices[positive])
    if loss.size < 3 or np.ptp(loss) == 0:
        return math.nan, math.nan
    grid = loss.min() * np.linspace(0.0, 0.995, 200) if critical is None else np.array([critical])
    x = np.log(loss[None, :] - grid[:, None])
    x = x - x.mean(axis=1, keepdims=True)
    slopes = (x @ (y - y.mean())) / np.sum(x**2, axis=1)
    residuals = np.sum(((y - y.mean())[None, :] - slopes[:, None] * x) ** 2, axis=1)
    best = int(np.argmin(residuals))
    return float(slopes[best]), float(grid[best])


def _exponent_interval(
    losses: list[float],
    indices: list[float],
    *,
    critical: float | None = None,
    num_resamples: int = 999,
) -> stats.Interval:
    """The exponent of :func:`_fit` with a percentile bootstrap interval over the points."""
    losses_, indices_ = np.asarray(losses, dtype=float), np.asarray(indices, dtype=float)
    rng = np.random.default_rng(0)
    draws = []
    for _ in range(num_resamples):
        pick = rng.integers(0, losses_.size, losses_.size)
        draws.append(_fit(losses_[pick], indices_[pick], critical)[0])
    estimate = _fit(losses_, indices_, critical)[0]
    finite = np.asarray(draws)[np.isfinite(draws)]
    if finite.size == 0:
        return stats.Interval(estimate, math.nan, math.nan)
    low, high = np.quantile(finite, [0.025, 0.975])
    return stats.Interval(estimate, float(low), float(high))


def _exponent_permutation(losses: list[float], indices: list[float], seed: int) -> dict[str, float]:
    """The exponent of :func:`_fit` with the losses permuted (:data:`PERMUTATIONS` // 10
    draws: a fit is dearer than a rank correlation): its :data:`PERMUTATION_QUANTILE`
    point, and the share of permuted exponents inside the band."""
    losses_, indices_ = np.asarray(losses, dtype=float), np.asarray(indices, dtype=float)
    rng = np.random.default_rng(seed)
    draws = np.array(
        [_fit(rng.permutation(losses_), indices_)[0] for _ in range(PERMUTATIONS // 10)]
    )
    finite = draws[np.isfinite(draws)]
    inside = (finite >= EXPONENT_BAND[0]) & (finite <= EXPONENT_BAND[1])
    return {
        "quantile": float(np.quantile(finite, PERMUTATION_QUANTILE)) if finite.size else math.nan,
        "inside_band": float(inside.mean()) if finite.size else math.nan,
        "permutations": int(finite.size),
    }


def _law_power(pilot: list[Point], starts_used: int) -> dict[str, object]:
    """Starts needed for the exponent's interval to tell 3/2 from :data:`ALTERNATIVE_EXPONENT`.

    The margin is the distance from the band's lower edge to the alternative (0.25):
    the interval must be narrow enough to lie inside the band at ``gamma = 3/2`` and
    below it at ``gamma = 1``; the pilot's bootstrap standard error scales with the
    points as ``1 / sqrt(n)``.
    """
    kept = _critical(pilot)
    rate = stats.pilot_hit_rate(len(kept), len(pilot))
    fit = _exponent_interval([p.loss for p in kept], [p.index for p in kept])
    margin = EXPONENT_BAND[0] - ALTERNATIVE_EXPONENT
    se = (fit.high - fit.low) / (2 * 1.96)
    if math.isfinite(se):
        points_needed = stats.replicates_for_standard_error(se, len(kept), margin, power=POWER)
    else:  # fewer than three pilot points of small index: no fit, no design
        points_needed = 10**9
    return {
        "pilot_seeds": [p.seed for p in pilot],
        "pilot_critical": len(kept),
        "critical_rate": rate,
        "pilot_exponent": [fit.estimate, fit.low, fit.high],
        "se": se,
        "alternative": ALTERNATIVE_EXPONENT,
        "margin": margin,
        "points_needed": points_needed,
        "starts_needed": math.ceil(points_needed / rate),
        "starts_used": starts_used,
    }


def test_index_three_halves_law(
    setup: Setup,
    profile: str,
    seed_offset: int,
    device: str,
    record_property: Callable[[str, object], None],
    report_dir: Path | None,
) -> None:
    if profile != "full":
        pytest.skip("the 3/2 law needs the full profile's many critical points of small index")
    pilot = _search(setup, fresh(setup.pilot_seeds, seed_offset), device)
    power = _law_power(pilot, setup.design.minimum)
    draw = _draw_starts(setup, power["starts_needed"], seed_offset)
    power["starts_drawn"] = len(draw.seeds)
    kept = _critical(_search(setup, draw.seeds, device))
    losses, indices = [p.loss for p in kept], [p.index for p in kept]
    critical = _fit(np.asarray(losses), np.asarray(indices))[1]
    permutation = _exponent_permutation(losses, indices, stream(seed_offset, PERMUTE))
    record = THREE_HALVES.record(
        _exponent_interval(losses, indices),
        controls={"plateau": _exponent_interval(losses, indices, critical=critical)},
        false_targets={"linear": None, "quadratic": None},
        sanity_checks={"permutation_null": permutation["quantile"]},
        data={
            "power": power,
            "eps_c": critical,
            "permutation": permutation,
            "points": [asdict(p) for p in kept],
        },
        unpowered=draw.unpowered,
    )
    if report_dir is not None:
        _draw_law(kept, report_dir)
    conclude(record_property, record, seed_offset=seed_offset)


def _draw(points: list[Point], narrow: list[Point], wide: list[Point], report_dir: Path) -> None:
    """Index against loss: critical points, dropped searches, the narrower network's critical
    points (control) and the GD end points of the claim's network (sanity check)."""
    plt = pyplot()
    figure, ax = plt.subplots(figsize=(5.5, 3.8))
    kept, dropped = _critical(points), [p for p in points if not p.critical]
    ax.scatter([p.loss for p in kept], [p.index for p in kept], s=18, label="critical points")
    ax.scatter(
        [p.loss for p in dropped],
        [p.index for p in dropped],
        s=18,
        facecolors="none",
        edgecolors="gray",
        label=f"search ended above ||grad|| = {GRADIENT_THRESHOLD:g}",
    )
    ax.scatter(
        [p.loss for p in narrow],
        [p.index for p in narrow],
        marker="x",
        color="C3",
        label="critical points, narrower network (control)",
    )
    ax.scatter(
        [p.loss for p in wide],
        [p.index for p in wide],
        marker="+",
        color="C2",
        label="GD end, same network (sanity check)",
    )
    ax.set_xlabel("training loss")
    ax.set_ylabel("index (fraction of negative eigenvalues)")
    ax.legend(fontsize=7)
    ax.set_title("dauphin2014: index of critical points against their loss", fontsize=9)
    save_figure(figure, report_dir, "dauphin2014_index_vs_loss")


def _draw_law(kept: list[Point], report_dir: Path) -> None:
    """log index against log(loss - eps_c) with the fitted line and the 3/2 slope."""
    losses, indices = np.array([p.loss for p in kept]), np.array([p.index for p in kept])
    gamma, critical = _fit(losses, indices)
    if not math.isfinite(gamma):
        return
    small = (indices > 0) & (indices <= SMALL_INDEX)
    x, y = np.log10(losses[small] - critical), np.log10(indices[small])
    plt = pyplot()
    figure, ax = plt.subplots(figsize=(5.0, 3.8))
    ax.scatter(x, y, s=18, label=f"critical points, 0 < index <= {SMALL_INDEX}")
    line = np.linspace(x.min(), x.max(), 2)
    for slope, style, name in (
        (gamma, "-", f"fit, gamma = {gamma:.2f}"),
        (PENNINGTON2017_INDEX_EXPONENT.value, ":", "3/2"),
    ):
        ax.plot(line, y.mean() + slope * (line - x.mean()), style, color="k", label=name)
    ax.set_xlabel(f"log10(loss - eps_c), eps_c = {critical:.3f}")
    ax.set_ylabel("log10 index")
    ax.legend(fontsize=7)
    ax.set_title("pennington2017: index against the loss above eps_c", fontsize=9)
    save_figure(figure, report_dir, "pennington2017_index_three_halves")
