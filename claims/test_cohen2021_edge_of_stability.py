"""cohen2021: full-batch gradient descent sharpens to 2/eta and then trains at that edge.

Conjecture:
    Train a network by full-batch gradient descent with step size ``eta``. The sharpness
    ``lambda_max`` of the training-loss Hessian rises while it is below ``2 / eta``
    (*progressive sharpening*), then hovers right at, or just above, ``2 / eta`` (*the
    edge of stability*), where the training loss keeps rising and falling from step to
    step (non-monotonically) while it falls over long timescales.

Paper:
    ``cohen2021`` (:data:`claims.preregistration.PAPERS`), section 3 (progressive
    sharpening, the edge of stability) and Figure 1; their main setting is a tanh network
    with two hidden layers of width 200 on a 5,000-sample subset of CIFAR-10 with the
    squared loss (:data:`claims.reference.COHEN2021_SETUP`).

Setup (:data:`SETUPS`):
    scikit-learn's 8x8 digits (:func:`hesskit.problems.digits`, standardised; no CIFAR-10
    on these machines), squared loss on one-hot targets
    (:func:`hesskit.problems.mean_squared_error`, the mean over samples *and* the 10
    outputs, so its sharpness is a tenth of the paper's per-sample sum; only ``eta *
    lambda_max`` matters), float64 tanh MLPs, plain full-batch GD from PyTorch's default
    initialisation written out here (:func:`trajectory`). Every ``every`` steps the
    sharpness is the top eigenvalue of :func:`hesskit.hessian` by :func:`hesskit.eigsh`
    (``k = 1``, relative residual ``tol = 1e-3``, every measurement must converge),
    warm-started from the previous measurement's top eigenvector. A seed draws the data
    subsample and the initialisation.

    - quick (CPU): 50 samples per digit (500), a 64-64-64-10 network (8,970 parameters),
      edge step sizes ``eta in {2, 4/3}`` (``2 / eta = 1, 1.5``, above the initial
      sharpness of about 0.45), the stable step ``eta = 0.5`` (``2 / eta = 4``), 1,200
      steps, the sharpness every 10 steps.
    - full (meant for a GPU): all 1,797 digits, the paper's width-200 two-hidden-layer
      tanh network (55,210 parameters), ``eta in {4/3, 1, 2/3}``, the stable step 0.2
      (``2 / eta = 10``: a CPU pilot of this width reached ``2 / eta`` of 0.5 within the
      budget), 4,000 steps.

The late phase is the second half of the steps (fixed before the run, not read off the
trajectory).

Statistics and rules (:data:`CLAIMS`, 95% intervals; the rules are :class:`Rule` objects):
    1. At the edge (``cohen2021.eos.sharpness_at_2_over_eta``). Per seed and edge step
       size, the mean of ``lambda_max * eta / 2`` over the late phase's measurements;
       per step size, the t-interval over seeds; the recorded interval spans every edge
       step size's (its estimate is the largest step size's). Inside :data:`EDGE_BAND`
       ``= [0.9, 1.1]`` (within 10% of ``2 / eta``) holds.
    2. Progressive sharpening (``cohen2021.eos.progressive_sharpening``). At the stable
       step size, ``lambda_max`` at the start of the late phase over that at
       initialisation, geometric mean over seeds with the t-interval of the mean log
       ratio; above :data:`SHARPENING` ``= 1.5`` holds. Only the stable step decides: at
       the edge step sizes the rise is implied by claim 1, ``2 / eta`` having been chosen
       above 1.5 times the initial sharpness (their ratios are in ``data``).
    3. Non-monotone descent (``cohen2021.eos.loss_falls_unsteadily``). Per seed and edge
       step size, the fraction of late-phase steps at which the loss rose; the interval
       spans every edge step size's t-interval; above :data:`RISING` ``= 0.05`` holds.
       The late-phase loss ratio (the mean over its last tenth over its first tenth) is
       reported in ``data`` and decides nothing: no opposite setting in this budget
       could show a loss that stops falling.

Opposite-setting controls (each can fail; declared with its fire rule in :data:`CLAIMS`):
    1. The stable step size (claim 1): sharpening has not reached ``2 / eta = 4`` there,
       so the same late-phase ratio must lie below 0.9. It fails if the sharpness rose
       to the stable step's edge within the budget (as it did for the full width at
       ``eta = 0.5``).
    2. Past the edge (claim 2): the same rise over the late phase itself at the largest
       edge step size, where the paper says the sharpening stops: below 1.5. It fails if
       the sharpness kept rising past ``2 / eta``.
    3. Before the edge (claim 3): at the edge step sizes, the fraction of rising losses
       over the steps before the sharpness first reaches 0.9 of ``2 / eta``: below 0.05.
       It fails if the loss oscillates while the sharpness is still below the edge
       (GD's steps are large there, and the descent lemma needs the curvature along the
       whole step, not at its start).

False targets (the claim's rule at a wrong level must not hold):
    1. Hovering at ``4 / eta`` (ratio in [1.8, 2.2]) or at ``1 / eta`` ([0.45, 0.55]).
    2. A rise to the stable step's own edge, ``2 / eta = 4`` from about 0.5 (a rise
       by 8).
    3. The loss rising on half the late steps or more (no net descent), fraction 0.5.

Sanity checks (they cannot fail when the instrument works): the last warm-started
sharpness against a cold ``k = 3`` solve (relative gap below 0.02, a fifth of the band's
tolerance); frozen features for claim 2 (only the last layer trained: a linear
least-squares problem with a constant Hessian, rise 1 up to the eigensolver's
tolerance); the stable step's late loss is monotone (the descent lemma: the sharpness
stays far below ``2 / eta``).

Power design (``data["power"]``): on the pilot seeds (kept apart from the claim seeds),
per step size and statistic, the pilot's standard deviation and the distance of its mean
from the rule's nearest threshold give the seeds needed
(:func:`claims.stats.power_by_setting`, power 0.9; a pilot without spread is sized by the
statistic's resolution). The claim seeds are drawn in order from a reserve by a
:class:`claims.stats.SequentialDesign` (at least ``minimum``, at most ``cap``); a pilot
asking for more than the cap makes the record ``undecided``, never an error.

Not done here: cross-entropy (its sharpness falls late in training as the loss goes to
zero, which needs its own late-phase definition), CNNs and CIFAR-10 itself.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import hesskit
from claims import stats
from claims.figures import pyplot, save_figure
from claims.preregistration import Claim, Control, FalseTarget, Rule, Sanity
from claims.reference import COHEN2021_EDGE, COHEN2021_SETUP
from claims.report import conclude
from claims.seeds import fresh
from claims.subspaces import top_eigenpairs
from hesskit.problems import digits, mean_squared_error, mlp

EDGE_TOLERANCE = 0.1
"""How far (relative) from the paper's edge the late-phase ratio may sit and count as at it."""
EDGE_BAND = (
    COHEN2021_EDGE.value * (1 - EDGE_TOLERANCE),
    COHEN2021_EDGE.value * (1 + EDGE_TOLERANCE),
)
"""The late-phase ``lambda_max * eta / 2`` counts as "at 2/eta" when its interval lies here."""
SHARPENING = 1.5
"""The rise of ``lambda_max`` (late-phase start over initialisation) that counts as sharpening."""
RISING = 0.05
"""The fraction of late-phase steps with a rising loss that counts as non-monotone descent."""
LOSS_WINDOW = 0.1
"""The fraction of the late phase averaged at its start and at its end for the loss ratio."""
TOL = 1e-3
"""The eigensolver's relative residual tolerance for each sharpness measurement."""
WARM_COLD_GAP = EDGE_TOLERANCE / 5
"""The largest relative gap between a warm-started sharpness and a cold solve (sanity)."""
FROZEN_BAND = (0.99, 1.01)
"""The frozen-feature rise must lie here: a constant Hessian, up to the solver's tolerance."""
POWER = 0.9


def _band(centre: float) -> tuple[float, float]:
    """The edge band's relative width around another centre (a false target)."""
    return centre * (1 - EDGE_TOLERANCE), centre * (1 + EDGE_TOLERANCE)


WARM_VS_COLD = Sanity(
    "warm_vs_cold",
    f"the last warm-started sharpness of every run matches a cold k = 3 solve "
    f"(largest relative gap below {WARM_COLD_GAP:g})",
    Rule("below", WARM_COLD_GAP),
)
CLAIMS = (
    Claim(
        id="cohen2021.eos.sharpness_at_2_over_eta",
        conjecture="at the edge of stability lambda_max hovers at about 2 / eta",
        paper="cohen2021",
        section="section 3, Figure 1",
        kind="evidence",
        statistic="late-phase mean of lambda_max * eta / 2 (mean over seeds); the interval "
        "spans every edge step size's t-interval, the estimate is the largest step size's",
        rule=Rule("inside", EDGE_BAND, null=1.0),
        expected="holds",
        controls=(
            Control(
                "stable_step",
                "the stable step size: sharpening has not reached its 2/eta within the "
                "budget, so its ratio must lie clearly below the edge",
                Rule("below", EDGE_BAND[0]),
            ),
        ),
        false_targets=(
            FalseTarget("four_over_eta", "hovering at 4/eta (ratio 2)", level=_band(2.0)),
            FalseTarget("one_over_eta", "hovering at 1/eta (ratio 0.5)", level=_band(0.5)),
        ),
        sanity_checks=(WARM_VS_COLD,),
    ),
    Claim(
        id="cohen2021.eos.progressive_sharpening",
        conjecture="lambda_max rises during full-batch GD training while below 2 / eta",
        paper="cohen2021",
        section="section 3.1, Figure 1",
        kind="evidence",
        statistic="lambda_max at the late-phase start / at initialisation at the stable "
        "step size (geometric mean over seeds)",
        rule=Rule("above", SHARPENING, null=1.0),
        expected="holds",
        controls=(
            Control(
                "past_the_edge",
                "the late phase itself at the largest edge step size (end over start), "
                "where the sharpness is held at 2/eta: the rise must stop",
                Rule("below", SHARPENING),
            ),
        ),
        false_targets=(
            FalseTarget(
                "reaches_own_edge",
                "a rise to the stable step's own 2/eta = 4 from about 0.5 (a factor of 8)",
                level=8.0,
            ),
        ),
        sanity_checks=(
            Sanity(
                "frozen_features",
                "only the last layer trained (linear least squares, constant Hessian): the "
                "rise is 1 up to the eigensolver's tolerance",
                Rule("inside", FROZEN_BAND, null=1.0),
            ),
            WARM_VS_COLD,
        ),
    ),
    Claim(
        id="cohen2021.eos.loss_falls_unsteadily",
        conjecture="at the edge of stability the loss does not fall monotonically",
        paper="cohen2021",
        section="section 3.2, Figure 1",
        kind="evidence",
        statistic="fraction of late-phase steps at which the loss rose (mean over seeds); "
        "the interval spans every edge step size's t-interval",
        rule=Rule("above", RISING),
        expected="holds",
        controls=(
            Control(
                "before_the_edge",
                "the same edge step sizes before the sharpness first reaches 0.9 of 2/eta: "
                "the loss must fall monotonically there",
                Rule("below", RISING),
            ),
        ),
        false_targets=(
            FalseTarget(
                "no_net_descent", "the loss rising on half the steps (no net descent)", level=0.5
            ),
        ),
        sanity_checks=(
            Sanity(
                "stable_monotone",
                "the stable step size's late loss never rises (the descent lemma: the "
                "sharpness stays far below 2/eta)",
                Rule("below", RISING),
            ),
        ),
    ),
)
SHARPNESS_AT_EDGE, PROGRESSIVE_SHARPENING, LOSS_UNSTEADY = CLAIMS


@dataclass(frozen=True)
class Setup:
    """One profile's pre-registered sizes, step sizes and seeds (reserves drawn in order
    by :attr:`design`; the pilot seeds apart)."""

    samples_per_class: int | None
    hidden: tuple[int, ...]
    edge_steps: tuple[float, ...]
    stable_step: float
    steps: int
    every: int
    design: stats.SequentialDesign
    reserve: tuple[int, ...]
    pilot_seeds: tuple[int, ...]
    stable_reserve: tuple[int, ...]
    stable_pilot_seeds: tuple[int, ...]

    @property
    def late_start(self) -> int:
        """The first step of the late phase: the second half of training."""
        return self.steps // 2


SETUPS = {
    "quick": Setup(
        samples_per_class=50,
        hidden=(64, 64),
        edge_steps=(2.0, 4.0 / 3.0),
        stable_step=0.5,
        steps=1200,
        every=10,
        design=stats.SequentialDesign(minimum=5, cap=8),
        reserve=tuple(range(60, 70)),
        pilot_seeds=(50, 51, 52),
        stable_reserve=tuple(range(80, 90)),
        stable_pilot_seeds=(70, 71, 72),
    ),
    "full": Setup(
        samples_per_class=None,
        hidden=(200, 200),
        edge_steps=(4.0 / 3.0, 1.0, 2.0 / 3.0),
        stable_step=0.2,
        steps=4000,
        every=10,
        design=stats.SequentialDesign(minimum=8, cap=12),
        reserve=tuple(range(100, 116)),
        pilot_seeds=(50, 51, 52),
        stable_reserve=tuple(range(120, 136)),
        stable_pilot_seeds=(70, 71, 72),
    ),
}


@dataclass(frozen=True, eq=False)
class Trajectory:
    """One full-batch GD run: the loss at every step, the sharpness every few steps.

    Attributes:
        eta: the step size.
        losses: the training loss before each step, ``steps + 1`` values.
        measured_at: the steps at which the sharpness was measured.
        sharpness: ``lambda_max`` of the training-loss Hessian at those steps.
        matvecs: the Hessian-vector products each measurement cost (every one met the
            eigensolver's tolerance: :func:`claims.subspaces.top_eigenpairs` raises
            otherwise).
        cold_final: the top eigenvalue at the last step from a cold start (``k = 3``, the
            default tolerance): a check that the warm start did not lock onto a lower
            eigenvalue of a crowded top.
    """

    eta: float
    losses: np.ndarray
    measured_at: np.ndarray
    sharpness: np.ndarray
    matvecs: np.ndarray
    cold_final: float

    def sharpness_at(self, step: int) -> float:
        """The sharpness measured at ``step`` (a multiple of the measurement interval)."""
        return float(self.sharpness[np.flatnonzero(self.measured_at == step)[0]])

    def edge_ratio(self, late_start: int) -> float:
        """The mean of ``lambda_max * eta / 2`` over the measurements from ``late_start``."""
        return float(np.mean(self.sharpness[self.measured_at >= late_start]) * self.eta / 2)

    def rising_fraction(self, late_start: int) -> float:
        """The fraction of steps from ``late_start`` on at which the loss rose."""
        return float(np.mean(np.diff(self.losses[late_start:]) > 0))

    def loss_ratio(self, late_start: int) -> float:
        """The mean loss over the late phase's last tenth over that over its first tenth."""
        late = self.losses[late_start:]
        window = max(1, round(LOSS_WINDOW * late.size))
        return float(np.mean(late[-window:]) / np.mean(late[:window]))


@functools.cache
def trajectory(
    setup: Setup, eta: float, seed: int, device: str, *, last_layer_only: bool = False
) -> Trajectory:
    """Full-batch GD with step ``eta`` from the seeded network, measuring the sharpness.

    ``last_layer_only`` trains (and takes the Hessian of) the last linear layer alone:
    the frozen-feature control. The sharpness is measured before the step at every
    multiple of ``setup.every``, warm-started from the previous top eigenvector.
    """
    problem = digits(samples_per_class=setup.samples_per_class, hidden=setup.hidden, seed=seed)
    inputs = problem.inputs.to(device)
    targets = torch.nn.functional.one_hot(problem.targets, problem.num_classes)
    data = (inputs, targets.to(inputs).to(device))
    model = mlp(problem.layer_sizes, activation="tanh", seed=seed, device=device)
    trained = model[-1] if last_layer_only else model
    params = list(trained.parameters())
    selection = [trained] if last_layer_only else None
    losses, measured_at, sharpness, matvecs = [], [], [], []
    start = None
    for step in range(setup.steps + 1):
        if step % setup.every == 0:
            op = hesskit.hessian(model, mean_squared_error, data, params=selection)
            top = top_eigenpairs(op, 1, seed=seed, tol=TOL, v0=start)
            start = top.eigenvectors[:, 0]
            measured_at.append(step)
            sharpness.append(float(top.eigenvalues[0]))
            matvecs.append(top.num_matvecs)
        loss = mean_squared_error(model(data[0]), data[1])
        losses.append(float(loss.detach()))
        if step == setup.steps:
            cold = top_eigenpairs(op, 3, seed=seed)
            break
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for param, grad in zip(params, grads, strict=True):
                param.sub_(eta * grad)
    return Trajectory(
        eta=eta,
        losses=np.array(losses),
        measured_at=np.array(measured_at),
        sharpness=np.array(sharpness),
        matvecs=np.array(matvecs),
        cold_final=float(cold.eigenvalues.max()),
    )


def _runs(
    setup: Setup, eta: float, seeds: tuple[int, ...], device: str, **options: bool
) -> list[Trajectory]:
    """The cached :func:`trajectory` of every seed."""
    return [trajectory(setup, eta, seed, device, **options) for seed in seeds]


def _nearest(values: list[float], edges: tuple[float, ...]) -> float:
    """The rule's threshold nearest the pilot's mean."""
    return min(edges, key=lambda edge: abs(edge - float(np.mean(values))))


def _label(eta: float) -> str:
    """The key of a step size in ``data``."""
    return f"eta={eta:.4g}"


def _draw_seeds(
    design: stats.SequentialDesign, reserve: tuple[int, ...], power: dict, seed_offset: int
) -> stats.SeedDraw:
    """The claim seeds of ``reserve`` (shifted to the offset) that the pilot asks for;
    ``power`` gains the count drawn."""
    draw = design.draw(fresh(reserve, seed_offset), power["seeds_needed"])
    power["seeds_drawn"] = len(draw.seeds)
    return draw


def _edge_draw(
    setup: Setup,
    seed_offset: int,
    device: str,
    pilot_value: Callable[[Trajectory], float],
    *,
    thresholds: tuple[float, ...],
    resolution: float,
) -> tuple[dict, stats.SeedDraw]:
    """The power analysis of a per-seed statistic at every edge step size, on the pilot
    seeds, against each step size's nearest rule threshold, and the claim seeds it draws."""
    pilot_seeds = fresh(setup.pilot_seeds, seed_offset)
    pilot = {
        _label(eta): [pilot_value(r) for r in _runs(setup, eta, pilot_seeds, device)]
        for eta in setup.edge_steps
    }
    nearest = {k: _nearest(v, thresholds) for k, v in pilot.items()}
    power = stats.power_by_setting(
        pilot, nearest, setup.design.minimum, power=POWER, resolution=resolution
    )
    return power, _draw_seeds(setup.design, setup.reserve, power, seed_offset)


def _stable_draw(setup: Setup, seed_offset: int, device: str) -> tuple[dict, stats.SeedDraw]:
    """Claim 2's power analysis on its pilot seeds, and the stable-step seeds it draws
    (shared by the stable-step checks of claims 1 and 3)."""
    pilot_runs = _runs(
        setup, setup.stable_step, fresh(setup.stable_pilot_seeds, seed_offset), device
    )
    late = setup.late_start
    pilot = {_label(setup.stable_step): [np.log(_sharpening(r, 0, late)) for r in pilot_runs]}
    power = stats.power_by_setting(
        pilot,
        dict.fromkeys(pilot, float(np.log(SHARPENING))),
        setup.design.minimum,
        power=POWER,
        resolution=TOL,
    )
    return power, _draw_seeds(setup.design, setup.stable_reserve, power, seed_offset)


def _stable_runs(setup: Setup, seed_offset: int, device: str) -> list[Trajectory]:
    """The stable step size's runs on the seeds claim 2's design draws."""
    _, draw = _stable_draw(setup, seed_offset, device)
    return _runs(setup, setup.stable_step, draw.seeds, device)


def _span(intervals: list[stats.Interval]) -> stats.Interval:
    """One interval over several settings: the first's estimate, the lowest low and the
    highest high (inside a band only if every one is; above a level only if every one is)."""
    return stats.Interval(
        intervals[0].estimate, min(i.low for i in intervals), max(i.high for i in intervals)
    )


def _warm_vs_cold(runs: list[Trajectory]) -> float:
    """The largest relative gap between the last warm-started sharpness and a cold solve."""
    return float(max(abs(r.sharpness[-1] - r.cold_final) / r.cold_final for r in runs))


def test_sharpness_hovers_at_2_over_eta(
    setup: Setup,
    seed_offset: int,
    device: str,
    record_property: Callable[[str, object], None],
    report_dir: Path | None,
) -> None:
    late = setup.late_start
    power, draw = _edge_draw(
        setup,
        seed_offset,
        device,
        lambda r: r.edge_ratio(late),
        thresholds=EDGE_BAND,
        resolution=TOL,
    )
    runs = {eta: _runs(setup, eta, draw.seeds, device) for eta in setup.edge_steps}
    ratios = {eta: [r.edge_ratio(late) for r in rows] for eta, rows in runs.items()}
    intervals = {eta: stats.t_interval(v) for eta, v in ratios.items()}
    stable_runs = _stable_runs(setup, seed_offset, device)
    record = SHARPNESS_AT_EDGE.record(
        _span(list(intervals.values())),
        controls={"stable_step": stats.t_interval([r.edge_ratio(late) for r in stable_runs])},
        false_targets={"four_over_eta": None, "one_over_eta": None},
        sanity_checks={
            "warm_vs_cold": _warm_vs_cold([r for rows in runs.values() for r in rows] + stable_runs)
        },
        data={
            "power": power,
            "seeds": list(draw.seeds),
            "late_start": late,
            "setup": COHEN2021_SETUP.note,
            "ratios": {_label(eta): v for eta, v in ratios.items()},
            "intervals": {_label(eta): vars(i) for eta, i in intervals.items()},
            "stable_ratios": [r.edge_ratio(late) for r in stable_runs],
            "first_crossing": {
                _label(eta): [_first_crossing(r) for r in rows] for eta, rows in runs.items()
            },
            "matvecs_per_measurement": _matvec_summary([*runs.values(), stable_runs]),
        },
        unpowered=draw.unpowered,
    )
    if report_dir is not None:
        _draw(setup, draw.seeds[0], device, report_dir)
    conclude(record_property, record, seed_offset=seed_offset)


def _first_crossing(run: Trajectory, fraction: float = 1.0) -> int | None:
    """The first step at which ``lambda_max >= fraction * 2 / eta``, or None."""
    above = np.flatnonzero(run.sharpness * run.eta / 2 >= fraction)
    return int(run.measured_at[above[0]]) if above.size else None


def _matvec_summary(groups: list[list[Trajectory]]) -> dict[str, dict[str, float]]:
    """Per step size, the Hessian-vector products of a warm-started measurement, all seeds."""
    summary = {}
    for rows in groups:
        warm = np.concatenate([r.matvecs[1:] for r in rows])
        summary[_label(rows[0].eta)] = {
            "cold_mean": float(np.mean([r.matvecs[0] for r in rows])),
            "warm_mean": float(warm.mean()),
            "warm_max": int(warm.max()),
        }
    return summary


def _sharpening(run: Trajectory, begin: int, end: int) -> float:
    """``lambda_max`` at step ``end`` over that at step ``begin``."""
    return run.sharpness_at(end) / run.sharpness_at(begin)


def test_progressive_sharpening(
    setup: Setup, seed_offset: int, device: str, record_property: Callable[[str, object], None]
) -> None:
    late = setup.late_start
    power, draw = _stable_draw(setup, seed_offset, device)
    stable_runs = _runs(setup, setup.stable_step, draw.seeds, device)
    rises = [_sharpening(r, 0, late) for r in stable_runs]
    _, edge_draw = _edge_draw(
        setup,
        seed_offset,
        device,
        lambda r: r.edge_ratio(late),
        thresholds=EDGE_BAND,
        resolution=TOL,
    )
    edge_runs = {eta: _runs(setup, eta, edge_draw.seeds, device) for eta in setup.edge_steps}
    edge_rises = {eta: [_sharpening(r, 0, late) for r in rows] for eta, rows in edge_runs.items()}
    past = [_sharpening(r, late, setup.steps) for r in edge_runs[setup.edge_steps[0]]]
    frozen_runs = _runs(setup, setup.stable_step, draw.seeds, device, last_layer_only=True)
    frozen = [_sharpening(r, 0, late) for r in frozen_runs]
    record = PROGRESSIVE_SHARPENING.record(
        stats.geometric_mean_interval(rises),
        controls={"past_the_edge": stats.geometric_mean_interval(past)},
        false_targets={"reaches_own_edge": None},
        sanity_checks={
            "frozen_features": stats.geometric_mean_interval(frozen),
            "warm_vs_cold": _warm_vs_cold(stable_runs + frozen_runs),
        },
        data={
            "power": power,
            "seeds": list(draw.seeds),
            "late_start": late,
            "rises": rises,
            "initial_sharpness": [r.sharpness[0] for r in stable_runs],
            "edge_seeds": list(edge_draw.seeds),
            "edge_rises": {_label(eta): v for eta, v in edge_rises.items()},
            "edge_intervals": {
                _label(eta): vars(stats.geometric_mean_interval(v)) for eta, v in edge_rises.items()
            },
            "past_edge_rises": past,
            "frozen_features_rises": frozen,
        },
        unpowered=draw.unpowered,
    )
    conclude(record_property, record, seed_offset=seed_offset)


def _rising_before_edge(run: Trajectory) -> float:
    """The fraction of steps at which the loss rose before the sharpness first reached
    :data:`EDGE_BAND`'s lower end times ``2 / eta`` (all steps if it never did)."""
    crossing = _first_crossing(run, EDGE_BAND[0]) or run.losses.size - 1
    return float(np.mean(np.diff(run.losses[: crossing + 1]) > 0))


def test_loss_falls_non_monotonically(
    setup: Setup, seed_offset: int, device: str, record_property: Callable[[str, object], None]
) -> None:
    late = setup.late_start
    power, draw = _edge_draw(
        setup,
        seed_offset,
        device,
        lambda r: r.rising_fraction(late),
        thresholds=(RISING,),
        resolution=1 / (setup.steps - late),  # one step of the rising fraction
    )
    runs = {eta: _runs(setup, eta, draw.seeds, device) for eta in setup.edge_steps}
    rising = {
        eta: stats.t_interval([r.rising_fraction(late) for r in v]) for eta, v in runs.items()
    }
    before = [stats.t_interval([_rising_before_edge(r) for r in v]) for v in runs.values()]
    falls = {
        eta: stats.geometric_mean_interval([r.loss_ratio(late) for r in v])
        for eta, v in runs.items()
    }
    stable_runs = _stable_runs(setup, seed_offset, device)
    record = LOSS_UNSTEADY.record(
        _span(list(rising.values())),
        controls={"before_the_edge": _span(before)},
        false_targets={"no_net_descent": None},
        sanity_checks={
            "stable_monotone": stats.t_interval([r.rising_fraction(late) for r in stable_runs])
        },
        data={
            "power": power,
            "seeds": list(draw.seeds),
            "late_start": late,
            "rising": {_label(e): [r.rising_fraction(late) for r in v] for e, v in runs.items()},
            "rising_intervals": {_label(e): vars(i) for e, i in rising.items()},
            "rising_before_edge": {
                _label(e): [_rising_before_edge(r) for r in v] for e, v in runs.items()
            },
            "loss_ratios": {_label(e): [r.loss_ratio(late) for r in v] for e, v in runs.items()},
            "loss_ratio_intervals": {_label(e): vars(i) for e, i in falls.items()},
            "final_losses": {_label(e): [r.losses[-1] for r in v] for e, v in runs.items()},
            "stable_rising": [r.rising_fraction(late) for r in stable_runs],
        },
        unpowered=draw.unpowered,
    )
    conclude(record_property, record, seed_offset=seed_offset)


def _draw(setup: Setup, seed: int, device: str, report_dir: Path) -> None:
    """Loss and sharpness against the step for every step size (one seed), 2/eta dashed."""
    plt = pyplot()
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(6, 5.5), sharex=True)
    highest = 0.0
    for index, eta in enumerate((*setup.edge_steps, setup.stable_step)):
        run = trajectory(setup, eta, seed, device)
        colour = f"C{index}"
        top.plot(run.losses, color=colour, lw=0.8, label=f"eta = {eta:.3g}, 2/eta = {2 / eta:.3g}")
        bottom.plot(run.measured_at, run.sharpness, color=colour, lw=1)
        highest = max(highest, float(run.sharpness.max()))
        bottom.axhline(2 / eta, color=colour, ls="--", lw=0.8)
    for axis in (top, bottom):
        axis.axvline(setup.late_start, color="k", ls=":", lw=0.8)
    top.set_yscale("log")
    top.set_ylabel("training loss")
    top.legend(fontsize=7)
    bottom.set_ylabel("lambda_max")
    bottom.set_xlabel("step")
    bottom.set_ylim(0, 1.3 * max(highest, 2 / min(setup.edge_steps)))
    top.set_title(
        f"cohen2021: full-batch GD on digits (seed {seed}); 2/eta dashed, late phase right "
        "of the dotted line",
        fontsize=8,
    )
    save_figure(figure, report_dir, "cohen2021_edge_of_stability")
