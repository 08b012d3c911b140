"""sagun2017: large- and small-batch solutions lie in one flat, connected basin.

Conjecture:
    Large-batch training reaches a solution; small batches continued from it first climb,
    then fall, as if into another basin; yet the straight segment between the two
    solutions has no barrier, the Hessian at both ends is highly singular, and the
    large-batch solution is the sharper one.

Paper:
    ``sagun2017`` (:data:`claims.preregistration.PAPERS`), section 4.1 (large batch, then
    small batch; the interpolation between the two solutions; the top eigenvalue of each).
    The singular Hessian is the bulk at zero of section 3.

Setup (:data:`SETUPS`):
    ``k = 4`` Gaussian clusters (cluster std 1, means at norm 3, inputs standardised
    globally; one data set per seed offset) and the paper's ReLU ``d-30-30-k`` softmax
    network. Per seed: full-batch GD (lr 0.5) to a training loss of 0.05 (``theta_L``);
    from there SGD with batch 8 at the same step down to each matched loss of
    :data:`LEVELS` in turn (``theta_S(l)``, stopped at the first evaluation at or below
    ``l``), and GD continued from ``theta_L`` down to the loss of ``theta_S(l)``
    (``theta_M(l)``, the large-batch solution at the small-batch loss). Comparing at
    matched losses makes every statistic independent of how long SGD ran: with
    cross-entropy on separable data the loss keeps falling, and a fixed step budget would
    set the scale of every comparison. Segments at 21 points; dense float64 Hessians.
    Quick profile: input dimension 20, 200 samples, 1,684 parameters. Full profile: the
    paper's ``100-30-30-4`` network on 400 samples (4,084 parameters; not yet run).

Statistics and decision rules (95% intervals; ``l* =`` :data:`DECIDED_LEVEL`):
    The log-barrier of a segment is ``beta = max_t [log L(t) - ((1 - t) log L(0) + t log
    L(1))]``: the largest rise of the loss above the geometric interpolation of its end
    losses, in log-loss, so it is free of the loss's scale (at matched ends it is the log
    of the peak over the end loss). ``beta = log 2``: the loss along the segment at most
    doubles.
    1. ``no_barrier_matched``: the mean over seeds of ``beta(theta_M(l*) -> theta_S(l*))``
       (BCa bootstrap). Holds if the interval lies below ``log 2``, fails if above. ``l* =
       1e-3``: the solutions of the conjecture are trained ones (50 times below the switch
       loss), and 1e-3 is reached by every run within the quick budget; 1e-2 and 1e-4 are
       reported with the trend (slope of ``beta`` on ``log10 l``) in ``data["levels"]``,
       and so is the paper's unmatched pair ``theta_L -> theta_S(l*)``, whose flat segment
       is what the paper shows: there the chord falls from the 50 times higher
       large-batch loss.
    2. ``singular`` (an identity): the mean over seeds of the smaller near-zero fraction
       (:func:`hesskit.spectrum.near_zero_fraction`) at ``theta_M(l*)`` and
       ``theta_S(l*)``, above 0.5.
    3. ``sharpness``: the geometric mean over seeds of ``lambda_1(theta_M(l*)) /
       lambda_1(theta_S(l*))`` (t-interval of the mean log). Holds if above 1.5 (large
       batch sharper by half), fails if below.

Opposite-setting controls (:data:`CLAIMS`; each can fail):
    Barrier: independently initialised solutions (``theta_M(l*)`` of seed ``r`` against
    ``theta_S(l*)`` of seed ``r + 1``) and ``theta_M(l*)`` against a copy with its hidden
    units permuted (the same function in another basin): fired if their interval lies
    above ``log 2``. Sharpness: the continuation with a batch of half the data (the SGD
    noise scale ``lr / B`` 12.5 times smaller, no climb) matched the same way: the
    conjecture ties the flatter solution to small-batch noise, so the order should
    vanish; nothing forces the ratio there to 1 (its runs take their own path), so a
    sharpness order made by the matching itself would show there. Fired if below 1.5.

False targets: the barrier rule at a strict level (a rise of 1% at most), and the
    sharpness rule at an order of magnitude: neither may hold.

Power design (:class:`claims.stats.SequentialDesign`): pilot seeds on their own data set
    (kept apart from the claim seeds) give, per evidence statistic and control, the seeds
    needed for power 0.9 (:func:`claims.stats.mean_rule_power`); the claim seeds are drawn
    in order from a reserve, at least :attr:`Setup.minimum` and at most :attr:`Setup.cap`;
    beyond the cap every record is ``undecided`` with the reason. The analysis is in each
    record's ``data["power"]``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pytest
import torch

from claims import protocols as pr
from claims.figures import pyplot, save_figure
from claims.preregistration import Claim, Control, FalseTarget, Rule, Sanity
from claims.report import conclude
from claims.seeds import fresh
from claims.stats import (
    Interval,
    SequentialDesign,
    bootstrap_interval,
    geometric_mean_interval,
    mean_rule_power,
    slope_interval,
)
from hesskit.landscape import LinearPath
from hesskit.params import flatten_parameters
from hesskit.problems import Problem, gaussian_mixture
from hesskit.spectrum import NEAR_ZERO, near_zero_fraction

LEVELS = (1e-2, 1e-3, 1e-4)
"""The matched training losses, in the order of descent."""
DECIDED_LEVEL = 1e-3
"""``l*``: the matched loss the claims are decided at (module docstring)."""
NO_BARRIER = math.log(2.0)
"""The largest log-barrier that counts as no barrier: the loss at most doubles."""
PERMUTATION_SEED = 12345
"""Added to a run's seed to draw its hidden-unit permutation."""

_BARRIER_SETTING = "the same log-barrier at matched loss l* = 1e-3"
CLAIMS = (
    Claim(
        id="sagun2017.flat_basin.no_barrier_matched",
        conjecture="no barrier on the segment between the large- and small-batch solutions "
        "at matched training loss",
        paper="sagun2017",
        section="section 4.1",
        kind="evidence",
        statistic="mean over seeds of the log-barrier of theta_M(l*) -> theta_S(l*), "
        "l* = 1e-3 (max_t of log L(t) over the log-chord of the end losses)",
        rule=Rule("below", NO_BARRIER),
        expected="undecided",
        why="at matched loss the segment between the two solutions rises above its end "
        "losses by about the factor of 2 the rule allows, far less than the segments "
        "between independent solutions; the rise grows as the matched loss falls (the trend "
        "in data), so whether it is 'no barrier' rests on the level",
        controls=(
            Control(
                "independent inits",
                f"{_BARRIER_SETTING}, theta_M(l*) of seed r to theta_S(l*) of seed r + 1: "
                "two basins",
                Rule("above", NO_BARRIER),
            ),
            Control(
                "permuted copy",
                f"{_BARRIER_SETTING}, theta_M(l*) to a copy with its hidden units permuted: "
                "the same function in another basin",
                Rule("above", NO_BARRIER),
            ),
        ),
        false_targets=(
            FalseTarget("strict", "no rise at all: at most 1% above the log-chord", 0.01),
        ),
        sanity_checks=(
            Sanity(
                "SGD climbs",
                "the setup: SGD from theta_L climbs above L(theta_L) on every seed (the "
                "smallest relative climb over seeds)",
                Rule("above", 0.0),
            ),
        ),
    ),
    Claim(
        id="sagun2017.flat_basin.singular",
        conjecture="the Hessian is highly singular at both ends",
        paper="sagun2017",
        section="sections 3 and 4.1",
        kind="identity",
        statistic=f"mean over seeds of the smaller fraction of |lambda| <= {NEAR_ZERO:g} "
        "max|lambda| at theta_M(l*) and theta_S(l*)",
        rule=Rule("above", 0.5),
        expected="holds",
        why="the Gauss-Newton rank bound: the Gauss-Newton part has rank at most n (k - 1) "
        "= 600 of P = 1,684 parameters (P / (n (k - 1)) = 2.8), so at least 64% of its "
        "eigenvalues are exactly zero, and near a minimum of small loss the Hessian is the "
        "Gauss-Newton part plus a term linear in the residuals: most eigenvalues near zero "
        "follow from the parameter count",
    ),
    Claim(
        id="sagun2017.flat_basin.sharpness",
        conjecture="lambda_1(large batch) > lambda_1(small batch) at matched loss",
        paper="sagun2017",
        section="section 4.1",
        kind="evidence",
        statistic="geometric mean over seeds of lambda_1(theta_M(l*)) / lambda_1(theta_S(l*))",
        rule=Rule("above", 1.5, null=1.0),
        expected="holds",
        controls=(
            Control(
                "half-data batch",
                "the same ratio with SGD at batch 100 of 200 (noise scale 12.5 times "
                "smaller, no climb): the order should vanish",
                Rule("below", 1.5, null=1.0),
            ),
        ),
        false_targets=(FalseTarget("tenfold", "the large-batch solution ten times sharper", 10.0),),
    ),
)
BARRIER, SINGULAR, SHARPNESS = CLAIMS


@dataclass(frozen=True)
class Setup:
    """One profile's pre-registered sizes, seeds, power design and training protocol."""

    num_clusters: int
    input_dim: int
    samples_per_cluster: int
    separation: float
    hidden: tuple[int, ...]
    data_seed: int
    reserve: tuple[int, ...]
    """The claim seeds, drawn in order by the sequential design."""
    minimum: int
    cap: int
    pilot_data_seed: int
    pilot_seeds: tuple[int, ...]
    lr: float
    target_loss: float
    max_steps: int
    batch_size: int
    control_batch_size: int
    eval_every: int
    path_points: int

    @property
    def design(self) -> SequentialDesign:
        """The pre-registered sequential design of the claim seeds."""
        return SequentialDesign(self.minimum, self.cap)


SETUPS = {
    "quick": Setup(
        num_clusters=4,
        input_dim=20,
        samples_per_cluster=50,
        separation=3.0,
        hidden=(30, 30),
        data_seed=300,
        reserve=tuple(range(40, 54)),
        minimum=6,
        cap=14,
        pilot_data_seed=301,
        pilot_seeds=(30, 31, 32),
        lr=0.5,
        target_loss=0.05,
        max_steps=20000,
        batch_size=8,
        control_batch_size=100,
        eval_every=10,
        path_points=21,
    ),
    # the paper's 100-30-30-k network, 100-d inputs: 4,084 parameters (not run)
    "full": Setup(
        num_clusters=4,
        input_dim=100,
        samples_per_cluster=100,
        separation=3.0,
        hidden=(30, 30),
        data_seed=300,
        reserve=tuple(range(40, 60)),
        minimum=6,
        cap=20,
        pilot_data_seed=301,
        pilot_seeds=(30, 31, 32),
        lr=0.5,
        target_loss=0.05,
        max_steps=40000,
        batch_size=8,
        control_batch_size=200,
        eval_every=20,
        path_points=21,
    ),
}


# ---------------------------------------------------------------------------------------
# the experiment: every measurement of one seed, then all seeds of one data set


def log_barrier(path: LinearPath) -> float:
    """``max_t [log L(t) - ((1 - t) log L(0) + t log L(1))]``: the segment's largest rise
    above the geometric interpolation of its end losses (0 for a log-convex segment)."""
    logs = path.losses.log()
    chord = (1 - path.t) * logs[0] + path.t * logs[-1]
    return max(float((logs - chord).max()), 0.0)


@dataclass(frozen=True, eq=False)
class SeedRun:
    """One seed's runs and measurements.

    Attributes:
        switch: large batch, then small batch and GD down to every level.
        control: the same from ``switch.large`` with the control's batch, down to ``l*``.
        spectra: dense spectra at ``theta_M(l*)`` and ``theta_S(l*)`` (ascending).
        control_top: ``lambda_1`` at the control's ``theta_M(l*)`` and ``theta_S(l*)``.
        barriers: log-barriers by segment name (``matched``, ``permuted``, ``unmatched``,
            ``unmatched permuted``), the matched ones one per level.
    """

    switch: pr.BatchSwitch
    control: pr.BatchSwitch
    spectra: tuple[torch.Tensor, torch.Tensor]
    control_top: tuple[float, float]
    barriers: dict[str, list[float]]


@dataclass(frozen=True, eq=False)
class Experiment:
    """All seeds of one data set, with the cross-seed (independent-init) log-barriers."""

    seeds: tuple[int, ...]
    runs: list[SeedRun]
    independent: list[list[float]]
    """Per level, per seed ``r``: ``theta_M(l)`` of ``r`` to ``theta_S(l)`` of ``r + 1``."""
    independent_unmatched: list[float]
    num_parameters: int
    num_samples: int


def _decided(pairs):
    return pairs[LEVELS.index(DECIDED_LEVEL)]


def _problem(setup: Setup, data_seed: int, device: str) -> Problem:
    return gaussian_mixture(
        setup.num_clusters,
        hidden=setup.hidden,
        input_dim=setup.input_dim,
        samples_per_cluster=setup.samples_per_cluster,
        separation=setup.separation,
        activation="relu",
        standardize=True,
        seed=data_seed,
    ).to(device=device)


def _run_seed(setup: Setup, problem: Problem, seed: int) -> SeedRun:
    protocol = {
        "lr": setup.lr,
        "max_steps": setup.max_steps,
        "eval_every": setup.eval_every,
        "seed": seed,
    }
    switch = pr.large_then_small_batch(
        problem,
        problem.make_model(seed=seed),
        target_loss=setup.target_loss,
        levels=LEVELS,
        batch_size=setup.batch_size,
        **protocol,
    )
    control = pr.switch_batch(
        problem,
        switch.large,
        levels=LEVELS[: LEVELS.index(DECIDED_LEVEL) + 1],
        batch_size=setup.control_batch_size,
        **protocol,
    )
    decided, control_decided = _decided(switch.pairs), _decided(control.pairs)

    def barrier(a: torch.Tensor, b: torch.Tensor) -> float:
        return log_barrier(pr.segment(problem, switch.large.model, a, b, setup.path_points))

    def twin(model) -> torch.Tensor:
        return flatten_parameters(pr.permuted_copy(model, seed=PERMUTATION_SEED + seed))

    return SeedRun(
        switch=switch,
        control=control,
        spectra=tuple(
            pr.hessian_spectrum(problem, run.model) for run in (decided.matched, decided.small)
        ),
        control_top=tuple(
            pr.top_eigenvalue(problem, run.model)
            for run in (control_decided.matched, control_decided.small)
        ),
        barriers={
            "matched": [barrier(p.theta_matched, p.theta_small) for p in switch.pairs],
            "permuted": [barrier(p.theta_matched, twin(p.matched.model)) for p in switch.pairs],
            "unmatched": [barrier(switch.theta_large, decided.theta_small)],
            "unmatched permuted": [barrier(switch.theta_large, twin(switch.large.model))],
        },
    )


def _experiment(setup: Setup, seeds: tuple[int, ...], data_seed: int, device: str) -> Experiment:
    problem = _problem(setup, data_seed, device)
    runs = [_run_seed(setup, problem, seed) for seed in seeds]
    shifted = runs[1:] + runs[:1]
    model, points = runs[0].switch.large.model, setup.path_points

    def barrier(a: torch.Tensor, b: torch.Tensor) -> float:
        return log_barrier(pr.segment(problem, model, a, b, points))

    return Experiment(
        seeds=seeds,
        runs=runs,
        independent=[
            [
                barrier(r.switch.pairs[i].theta_matched, s.switch.pairs[i].theta_small)
                for r, s in zip(runs, shifted, strict=True)
            ]
            for i in range(len(LEVELS))
        ],
        independent_unmatched=[
            barrier(r.switch.theta_large, _decided(s.switch.pairs).theta_small)
            for r, s in zip(runs, shifted, strict=True)
        ],
        num_parameters=int(runs[0].switch.theta_large.numel()),
        num_samples=problem.num_samples,
    )


@pytest.fixture(scope="module")
def pilot(setup, seed_offset, device) -> Experiment:
    """The pilot seeds on their own data set, kept apart from the claim seeds."""
    (data_seed,) = fresh((setup.pilot_data_seed,), seed_offset)
    return _experiment(setup, fresh(setup.pilot_seeds, seed_offset), data_seed, device)


@pytest.fixture(scope="module")
def power(pilot, setup) -> dict:
    """The pilot's power analysis per evidence statistic and control, and the seed draw.

    The claims share one draw, sized for the claim that needs the most seeds (up to the
    cap); each claim is unpowered only when its own statistics need more than were drawn,
    so one claim beyond the cap does not leave the other undecided.
    """
    analysis = _power(pilot, setup.cap)
    needed = {
        claim.id: max(
            e["seeds_needed"] for key, e in analysis.items() if key.split("/")[0] == claim.id
        )
        for claim in (BARRIER, SHARPNESS)
    }
    draw = setup.design.draw(setup.reserve, max(needed.values()))
    drawn = len(draw.seeds)
    return {
        "draw": draw,
        "unpowered": {
            claim: ""
            if count <= drawn
            else f"the pilot asks for {count} seeds; {drawn} drawn"
            f" (the pre-registered cap is {setup.cap})"
            for claim, count in needed.items()
        },
        "data": {
            "seeds_needed": needed,
            "seeds_drawn": drawn,
            "analysis": _power(pilot, drawn),
        },
    }


def _power(pilot: Experiment, seeds_used: int) -> dict[str, dict]:
    """Per evidence statistic and control: the seeds needed for power 0.9 on the rule's
    scale, and the smallest detectable distance at ``seeds_used`` seeds."""
    return {
        f"{claim.id}/{name}": mean_rule_power(
            values, _scale(claim)(_level(claim, name)), seeds_used, resolution=RESOLUTION
        )
        for claim in (BARRIER, SHARPNESS)
        for name, values in _scaled(claim, pilot).items()
    }


@pytest.fixture(scope="module")
def experiment(setup, seed_offset, device, power) -> Experiment:
    """Train the drawn claim seeds once; all claims of the module share the runs."""
    (data_seed,) = fresh((setup.data_seed,), seed_offset)
    seeds = fresh(power["draw"].seeds, seed_offset)
    return _experiment(setup, seeds, data_seed, device)


# ---------------------------------------------------------------------------------------
# per-seed statistics: the claim's values first, then its controls'


RESOLUTION = 1e-6
"""The smallest step of a statistic on its rule's scale, for a pilot without spread."""


def _at(values: list[list[float]], level: float) -> np.ndarray:
    return np.array([v[LEVELS.index(level)] for v in values])


def _barrier_values(experiment: Experiment) -> dict[str, np.ndarray]:
    runs = experiment.runs
    return {
        "claim": _at([r.barriers["matched"] for r in runs], DECIDED_LEVEL),
        "independent inits": np.array(experiment.independent[LEVELS.index(DECIDED_LEVEL)]),
        "permuted copy": _at([r.barriers["permuted"] for r in runs], DECIDED_LEVEL),
    }


def _sharpness_values(experiment: Experiment) -> dict[str, np.ndarray]:
    return {
        "claim": np.array([float(r.spectra[0][-1] / r.spectra[1][-1]) for r in experiment.runs]),
        "half-data batch": np.array([a / b for a, b in (r.control_top for r in experiment.runs)]),
    }


MEASURES = {BARRIER.id: _barrier_values, SHARPNESS.id: _sharpness_values}


def _scale(claim: Claim):
    """The rule's scale: log for a ratio (null 1), identity otherwise."""
    return math.log if claim.rule.null == 1.0 else float


def _level(claim: Claim, name: str) -> float:
    """The level of the claim's rule, or of the named control's fire rule."""
    rules = {"claim": claim.rule, **{c.name: c.fires for c in claim.controls}}
    return rules[name].level


def _scaled(claim: Claim, experiment: Experiment) -> dict[str, np.ndarray]:
    scale = np.log if claim.rule.null == 1.0 else np.asarray
    return {name: scale(v) for name, v in MEASURES[claim.id](experiment).items()}


def _interval(claim: Claim, values: np.ndarray, seed: int) -> Interval:
    if claim.rule.null == 1.0:
        return geometric_mean_interval(values)
    return bootstrap_interval(values, seed=seed)


# ---------------------------------------------------------------------------------------
# the claims


def _evidence_record(claim: Claim, experiment: Experiment, power: dict, seed_offset: int):
    values = MEASURES[claim.id](experiment)
    seeds = fresh(range(len(values)), seed_offset)
    intervals = {
        name: _interval(claim, v, seed)
        for seed, (name, v) in zip(seeds, values.items(), strict=True)
    }
    interval = intervals.pop("claim")
    sanity, data = _barrier_extras(experiment) if claim is BARRIER else ({}, {})
    return claim.record(
        interval,
        controls=intervals,
        false_targets={target.name: None for target in claim.false_targets},
        sanity_checks=sanity,
        data={
            "values": {name: v.tolist() for name, v in values.items()},
            **data,
            **_common(experiment, power),
        },
        unpowered=power["unpowered"][claim.id],
    )


def _barrier_extras(experiment: Experiment) -> tuple[dict, dict]:
    """The climb sanity check, and the log-barriers at every level with their trend."""
    runs = experiment.runs
    climb = min(r.switch.climb for r in runs)
    matched = np.array([r.barriers["matched"] for r in runs])
    x = np.tile(np.log10(LEVELS), len(runs))
    trend = slope_interval(x, matched.reshape(-1))
    levels = {
        f"{level:g}": {
            "matched": matched[:, i].tolist(),
            "independent inits": experiment.independent[i],
            "permuted copy": [r.barriers["permuted"][i] for r in runs],
        }
        for i, level in enumerate(LEVELS)
    }
    data = {
        "levels": levels,
        "trend": {"slope_per_decade_of_loss": asdict(trend)},
        "unmatched": {
            "claim": [r.barriers["unmatched"][0] for r in runs],
            "independent inits": experiment.independent_unmatched,
            "permuted copy": [r.barriers["unmatched permuted"][0] for r in runs],
        },
    }
    return {"SGD climbs": climb}, data


def _common(experiment: Experiment, power: dict) -> dict:
    """The seeds, the power analysis and the training record behind every claim."""
    runs = experiment.runs

    def pairs(switch) -> list[dict]:
        return [
            {
                "level": p.level,
                "small_loss": p.small.final_loss,
                "matched_loss": p.matched.final_loss,
                "small_steps": p.small.num_steps,
                "matched_steps": p.matched.num_steps,
            }
            for p in switch.pairs
        ]

    return {
        "seeds": list(experiment.seeds),
        "power": power["data"],
        "num_parameters": experiment.num_parameters,
        "num_samples": experiment.num_samples,
        "large_loss": [r.switch.loss_large for r in runs],
        "large_steps": [r.switch.large.num_steps for r in runs],
        "climb": [r.switch.climb for r in runs],
        "pairs": [pairs(r.switch) for r in runs],
        "control_pairs": [pairs(r.control) for r in runs],
        "lambda_max": [[float(ev[-1]) for ev in r.spectra] for r in runs],
        "control_lambda_max": [list(r.control_top) for r in runs],
    }


@pytest.mark.parametrize("claim", [BARRIER, SHARPNESS], ids=lambda c: c.id.split(".")[-1])
def test_flat_basin(claim, experiment, power, seed_offset, record_property, report_dir):
    """Each evidence claim of section 4.1, decided by its declared rule."""
    record = _evidence_record(claim, experiment, power, seed_offset)
    if report_dir is not None:
        FIGURES[claim.id](experiment, report_dir)
    conclude(record_property, record, seed_offset=seed_offset)


def test_singular(experiment, power, seed_offset, record_property, report_dir):
    """The identity: most eigenvalues near zero at both ends (the rank bound)."""
    fractions = np.array([min(map(near_zero_fraction, r.spectra)) for r in experiment.runs])
    record = SINGULAR.record(
        bootstrap_interval(fractions, seed=seed_offset),
        data={
            "values": fractions.tolist(),
            "gauss_newton_rank_bound": experiment.num_samples * 3,
            **_common(experiment, power),
        },
    )
    if report_dir is not None:
        _draw_spectra(experiment, report_dir)
    conclude(record_property, record, seed_offset=seed_offset)


# ---------------------------------------------------------------------------------------
# figures


def _draw_barriers(experiment: Experiment, report_dir) -> None:
    plt = pyplot()
    figure, ax = plt.subplots(figsize=(6, 4))
    runs = experiment.runs
    series = (
        ("tab:blue", "theta_M -> theta_S (claim)", [r.barriers["matched"] for r in runs]),
        ("tab:red", "independent inits (control)", np.array(experiment.independent).T),
        ("tab:orange", "permuted copy (control)", [r.barriers["permuted"] for r in runs]),
    )
    for color, label, values in series:
        for i, v in enumerate(values):
            ax.plot(LEVELS, v, "o-", color=color, alpha=0.5, label=label if i == 0 else None)
    ax.axhline(NO_BARRIER, color="k", ls="--", lw=1, label="log 2 (the rule)")
    ax.axvline(DECIDED_LEVEL, color="gray", ls=":", lw=1)
    ax.set_xscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("matched training loss")
    ax.set_ylabel("log-barrier")
    ax.set_title("sagun2017: barriers at matched losses")
    ax.legend(fontsize=8)
    save_figure(figure, report_dir, "sagun2017_segment")


def _draw_spectra(experiment: Experiment, report_dir) -> None:
    plt = pyplot()
    figure, ax = plt.subplots(figsize=(6, 4))
    bins = np.linspace(-18, 0, 73)
    for index, (color, label) in enumerate((("tab:green", "theta_M"), ("tab:blue", "theta_S"))):
        values = [r.spectra[index].abs().cpu().numpy() for r in experiment.runs]
        logs = np.concatenate([np.log10(np.maximum(v / v.max(), 1e-18)) for v in values])
        ax.hist(logs, bins=bins, density=True, histtype="step", color=color, label=label)
    ax.axvline(np.log10(NEAR_ZERO), color="k", ls="--", lw=1, label="near-zero floor")
    ax.set_xlabel("log10 |lambda| / max |lambda|")
    ax.set_ylabel("density (pooled over seeds)")
    ax.set_title("sagun2017: Hessian spectra at matched loss 1e-3")
    ax.legend(fontsize=8)
    save_figure(figure, report_dir, "sagun2017_spectra")


def _draw_sharpness(experiment: Experiment, report_dir) -> None:
    plt = pyplot()
    figure, ax = plt.subplots(figsize=(6, 4))
    values = _sharpness_values(experiment)
    for position, ratios in enumerate(values.values()):
        ax.scatter(np.full(len(ratios), position), ratios, alpha=0.7)
    ax.axhline(SHARPNESS.rule.level, color="k", ls="--", lw=1, label="rule level")
    ax.set_xticks(range(len(values)), list(values))
    ax.set_yscale("log")
    ax.set_ylabel("lambda_1(GD) / lambda_1(SGD), matched loss")
    ax.set_title("sagun2017: the large-batch solution is sharper")
    ax.legend(fontsize=8)
    save_figure(figure, report_dir, "sagun2017_sharpness")


FIGURES = {BARRIER.id: _draw_barriers, SHARPNESS.id: _draw_sharpness}
"""The figure drawn with each evidence claim when ``--claims-report`` is given."""
