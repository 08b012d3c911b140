"""cohen2021: full-batch gradient descent sharpens to 2/eta and then trains at that edge.

Conjecture:
    Train a network by full-batch gradient descent with step size ``eta``. The sharpness
    ``lambda_max`` of the training-loss Hessian rises while it is below ``2 / eta``
    (*progressive sharpening*), then hovers right at, or just above, ``2 / eta`` (*the
    edge of stability*), where the training loss keeps falling over long timescales
    while rising and falling from step to step (non-monotonically).

Paper:
    Cohen, Kaur, Li, Kolter, Talwalkar (2021), *Gradient Descent on Neural Networks
    Typically Occurs at the Edge of Stability*, ICLR 2021, arXiv:2103.00065, section 3
    (progressive sharpening, the edge of stability) and Figure 1; their main setting is a
    tanh network with two hidden layers of width 200 on a 5,000-sample subset of CIFAR-10
    with the squared loss (:data:`claims.reference.COHEN2021_SETUP`).

Setup (:data:`SETUPS`):
    scikit-learn's 8x8 digits (:func:`hesskit.problems.digits`, standardised; no CIFAR-10
    on these machines), squared loss on one-hot targets
    (:func:`hesskit.problems.mean_squared_error`, the mean over samples *and* the 10
    outputs, so its sharpness is a tenth of the paper's per-sample sum; only ``eta *
    lambda_max`` matters), float64 tanh MLPs, plain full-batch GD from PyTorch's default
    initialisation written out here (:func:`trajectory`). Every ``every`` steps the
    sharpness is the top eigenvalue of :func:`hesskit.hessian` by :func:`hesskit.eigsh`
    (``k = 1``, relative residual ``tol = 1e-3``), warm-started (``v0``) from the previous
    measurement's top eigenvector, so that a measurement costs a few Hessian-vector
    products (counted and recorded per step size). A seed draws the data subsample and
    the initialisation.

    - quick (CPU, about 100 s on one core): 50 samples per digit (500), a 64-64-64-10 network
      (8,970 parameters), edge step sizes ``eta in {2, 4/3}`` (``2 / eta = 1, 1.5``, above
      the initial sharpness of about 0.45), the stable step ``eta = 0.5`` (``2 / eta =
      4``), 1,200 steps, the sharpness every 10 steps; claim seeds 10-14, pilot seeds 0-2.
      The pilot below reached ``2 / eta`` after 120-370 steps at the edge step sizes.
    - full (meant for a GPU, not yet run: no GPU has been lent): all 1,797 digits, the
      paper's width-200 two-hidden-layer tanh network (55,210 parameters), ``eta in {4/3,
      1, 2/3}`` (``2 / eta = 1.5, 2, 3``, above its initial sharpness of 0.83), the
      stable step 0.2 (``2 / eta = 10``), 4,000 steps, claim seeds 10-17; with every
      digit kept, a seed draws only the initialisation. A CPU pilot of this network
      (seed 0, 3,000 steps, the sharpness every 20) crossed ``2 / eta`` near step 300 at
      ``eta = 1`` and hovered at a ratio of 1.01-1.03 after; at ``eta = 0.5`` it sharpened
      from 0.83 to ``2 / eta = 4`` by step 1,800 and then hovered there too, which is why
      the full profile's stable step is 0.2 and not 0.5 (``2 / eta`` of 0.5 is reached
      within the budget at this width).

The late phase is the second half of the steps (fixed before the run, not read off the
trajectory; the pilot's first crossings of ``2 / eta`` all fell in the first quarter).

Statistics and decision rules (fixed before the claim seeds ran; 95% intervals):
    1. At the edge (``cohen2021.eos.sharpness_at_2_over_eta``). Per seed and edge step
       size, the mean of ``lambda_max * eta / 2`` over the late phase's measurements;
       per step size, the mean over seeds with its t-interval
       (:func:`claims.stats.t_interval`). **Holds** if every edge step size's interval
       lies inside :data:`EDGE_BAND` ``= [0.9, 1.1]`` (within 10% of ``2 / eta``);
       **fails** if any lies entirely outside it; otherwise undecided. The estimate
       recorded is the first (largest) edge step size's; every step size's is in
       ``data``.
    2. Progressive sharpening (``cohen2021.eos.progressive_sharpening``). Per seed at the
       stable step size, ``lambda_max`` at the start of the late phase over ``lambda_max``
       at initialisation; the geometric mean over seeds with the t-interval of the mean
       log ratio (:func:`claims.stats.geometric_mean_interval`). **Holds** if its lower
       end is above :data:`SHARPENING` ``= 1.5`` (a rise by half); **fails** if its upper
       end is below 1.5; otherwise undecided. The edge step sizes' ratios are in ``data``
       and decide nothing: there the rise is implied by claim 1, since ``2 / eta`` was
       chosen above 1.5 times the initial sharpness (1 and 1.5 against about 0.45).
    3. The loss keeps falling, non-monotonically (``cohen2021.eos.loss_falls_unsteadily``).
       Per seed and edge step size, the fraction of late-phase steps at which the loss
       rose, and the ratio of the mean loss over the last tenth of the late phase to that
       over its first tenth. **Holds** if at every edge step size the fraction's
       t-interval has its lower end above :data:`RISING` ``= 0.05`` and the ratio's
       geometric-mean interval its upper end below 1; **fails** if at any edge step size
       the fraction's upper end is below 0.05 or the ratio's lower end above 1; otherwise
       undecided. Recorded: the fraction at the largest edge step size.

Opposite-setting controls:
    1. The stable step size (0.5 quick, 0.2 full; claim 2's seeds): sharpening cannot
       reach ``2 / eta`` in the budget, so the late-phase ratio must stay clearly below 1:
       fires if the upper end of its interval is below the band's lower edge, 0.9.
    2. Past the edge: at the largest edge step size (claim 1's seeds), the same ratio
       over the late phase itself (``lambda_max`` at the end over its start), where the
       paper says the sharpening stops: fires if the upper end is below 1.5.
    3. The stable step size: descent is monotone there, so the rising fraction's upper
       end must be below 0.05 (fires).

Sanity checks (``data["sanity_checks"]``; they cannot fail for a correct instrument, so
they are not controls): frozen features for claim 2 -- the same networks as claim 2's
with only the last layer trained at the stable step, a linear least-squares problem whose
Hessian is constant (the ratio is 1 up to the eigensolver's tolerance); and, in every
record, the largest relative gap between the last warm-started sharpness and a cold
``k = 3`` solve.

What the controls can and cannot show (said before the run): control 1 confirms that the
statistic is not pinned at 1 by construction (a sharpness that kept rising far past
``2 / eta``, or stayed well under it, would both show); control 2 is the paper's own
contrast (a sharpness that kept rising past ``2 / eta`` would fail it). No control here
shows a loss that stops falling; the ratio's rule would report one as ``fails``.

Power analysis (run first in each test, on pilot seeds 0-2, for claim 2 30-32, shifted
like every seed list; numbers in ``data["power"]``): per step size and statistic, the
pilot's standard deviation and the distance of its mean from the rule's nearest threshold
give the seeds needed (:func:`claims.stats.power_by_setting`, power 0.9; a pilot without
spread is sized with the statistic's resolution, ``tol`` for a sharpness ratio and one
step in ``steps / 2`` for a fraction) and the minimal detectable distance at the design's
seeds; :func:`claims.stats.require_power` fails a test whose design is underpowered.

Pilot (offline, before this module; one tanh 64-64-10 net per seed, seeds 0-1, 500
samples, 2,000 steps, the sharpness every 10 steps): late-phase ratios 1.024 / 1.028
(``eta = 2``), 1.020 / 1.025 (``4/3``), 1.010 / 1.015 (``1``) against 0.517 / 0.488 at
``eta = 0.5``; first crossings at steps 120 / 170, 290 / 370, 660 / 770; initial sharpness
0.47 / 0.44, rising to 2.24 at ``eta = 0.5`` by step 2,000; late-phase fraction of rising
losses 0.42-0.44 (``2``), 0.38-0.42 (``4/3``), 0.28-0.35 (``1``) and 0.000 at 0.5;
Hessian-vector products per measurement 12-15 (mean) at ``eta = 2`` and 3-4 at 0.5 (the
cold start 20-29, the most for one measurement 48). Before it, the default 64-32-10
network sharpened too slowly (0.75 to 1.07 over 1,000 steps at ``eta = 0.5``), and at
``eta = 4`` its initial sharpness (0.75) was already above ``2 / eta``: GD fell straight
to the edge without sharpening (at ``eta = 8`` it diverged); a 16-16 network barely
sharpened (0.51 to 0.77 over 2,000 steps at ``eta = 0.5``). The quick profile dropped
``eta = 1`` (its crossing at 660-770 steps would need 2,000 steps) to fit the CPU budget;
the full profile keeps three edge step sizes.

Design history (said here, not hidden): the first version decided claim 2 on every step
size (edge ones included) at claim seeds 10-14, counted the frozen-features run as a
control, and read the eigensolver's convergence without enforcing it; it held at both
offsets (its numbers below, under "first version"). After review, claim 2 decides on the
stable step size alone (at the edge step sizes the rise is implied by claim 1), on fresh
seeds never run before (pilot 30-32, claim 40-44), which the stable-step controls of
claims 1 and 3 now share (their rules unchanged); frozen features moved to the sanity
checks; every measurement must converge; the cold ``k = 3`` check was added. Claims 1
and 3, their rules and their seeds did not change.

Result (quick profile, offsets 0 / 1; claim seeds 10-14, stable-step seeds 40-44 and their
offset-1 shifts; after the review's changes):
    1. At the edge -- **holds at both**. Late-phase ``lambda_max * eta / 2``: 1.037 [1.034,
       1.040] / 1.041 [1.035, 1.047] at ``eta = 2`` and 1.023 [1.016, 1.030] / 1.026
       [1.020, 1.032] at ``eta = 4/3`` -- "just above" 2/eta, as the paper says (per seed
       1.013-1.046). First crossings of ``2 / eta`` at steps 100-150 (``eta = 2``) and
       250-320 (``4/3``), after which the sharpness overshoots, falls back with a spike of
       the loss (a catapult) and hovers. Control fired at both: at ``eta = 0.5`` the ratio
       is 0.432 [0.367, 0.497] / 0.392 [0.352, 0.431] (the first version, at seeds 10-14:
       0.410 [0.384, 0.436] / 0.438 [0.396, 0.479]). Pilot: sd of the per-seed ratio
       0.003-0.008, 2-3 seeds needed, 5 used; minimal detectable distance from the band's
       edge at 5 seeds 0.006-0.016 (the band's edge is 0.06-0.07 away). Cost per
       warm-started measurement (mean / max Hessian-vector products): 13.4 / 40 and 13.1 /
       34 at ``eta = 2``, 7.9 / 28 and 8.1 / 33 at ``4/3``, 4.2 / 21 and 5.0 / 17 at 0.5,
       against 18-23 for a cold start; every one converged (enforced). Sanity check: the
       last warm-started sharpness against a cold ``k = 3`` solve differs by at most 2e-5
       / 1.3e-3 (relative; the band is 0.1 wide). At the edge the top of the spectrum is
       crowded (a check at step 600, ``eta = 2``, seed 10: top three eigenvalues 1.0343,
       1.0269, 1.0127, and the warm-started, ``tol = 1e-3`` value 1.03426 against 1.03427
       at the default tolerance), which is why warm starts save less there.
    2. Progressive sharpening -- **holds at both**. At the stable ``eta = 0.5``,
       ``lambda_max`` at step 600 over its initial value (0.43-0.59): 2.65 [2.31, 3.05] /
       2.37 [2.18, 2.57]. Not decisive (implied by claim 1): 2.06 [1.87, 2.27] / 2.10
       [1.77, 2.48] at ``eta = 2`` and 3.01 [2.76, 3.29] / 3.09 [2.46, 3.88] at ``4/3``
       (there capped by ``2 / eta``). Control fired at both: past the edge (the late phase
       at ``eta = 2``) 0.996 [0.981, 1.012] / 0.978 [0.949, 1.009]: the sharpening stops at
       ``2 / eta``. Sanity check: frozen features 1.0000002 [0.9999997, 1.0000008] /
       1.0000002 [0.9999999, 1.0000005]. Pilot (seeds 30-32): sd of the log ratio 0.05 /
       0.18, 3 / 5 seeds needed, 5 used (at offset 1 the design is just powered); minimal
       detectable distance from log 1.5 at 5 seeds 0.10 / 0.35 (the pilot's means are 0.53
       / 0.43 away). The first version (every step size decisive, seeds 10-14) gave 2.51
       [2.27, 2.79] / 2.52 [2.14, 2.98] at ``eta = 0.5``.
    3. The loss falls, non-monotonically -- **holds at both**. The loss rose on 0.411
       [0.375, 0.448] / 0.412 [0.358, 0.466] of the late-phase steps at ``eta = 2`` and
       0.394 [0.357, 0.431] / 0.399 [0.340, 0.458] at ``4/3``, while the late phase's last
       tenth averaged 0.488 [0.413, 0.576] / 0.476 [0.443, 0.511] (``eta = 2``) and 0.522
       [0.471, 0.578] / 0.513 [0.438, 0.602] (``4/3``) of its first tenth. Control fired at
       both: at ``eta = 0.5`` (seeds 40-44) the loss never rose (0 of 600 steps, every
       seed). Pilot: 2-3 seeds needed, 5 used.

    CPU time of the quick profile (``/usr/bin/time``, user + sys, one thread, with the
    report and figure): 106.9 s at offset 0, 112.4 s at offset 1 under heavy load (the
    first version: 91.5 / 92.0 s). The runs are cached per (setup, step size, seed), so the
    three tests share 29 trajectories (5 claim and 3 pilot seeds at each of the three step
    sizes, 5 frozen-feature runs) and the figure's one extra run (the stable step at seed
    10); each run ends with the cold ``k = 3`` check.

Not done here: cross-entropy (the paper's second loss; its sharpness falls late in
training as the loss goes to zero, which needs its own late-phase definition), CNNs and
CIFAR-10 itself.
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
from claims.reference import COHEN2021_EDGE, COHEN2021_SETUP
from claims.report import ClaimRecord, Control, conclude, decide, interval_fields
from claims.seeds import fresh
from claims.subspaces import top_eigenpairs
from hesskit.problems import digits, mean_squared_error, mlp

PAPER = (
    "Cohen, Kaur, Li, Kolter, Talwalkar (2021), arXiv:2103.00065, section 3 "
    "(progressive sharpening; the edge of stability), Figure 1"
)
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
POWER = 0.9


@dataclass(frozen=True)
class Setup:
    """One profile's pre-registered sizes, step sizes and seeds."""

    samples_per_class: int | None
    hidden: tuple[int, ...]
    edge_steps: tuple[float, ...]
    stable_step: float
    steps: int
    every: int
    seeds: tuple[int, ...]
    pilot_seeds: tuple[int, ...]
    stable_seeds: tuple[int, ...]
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
        seeds=(10, 11, 12, 13, 14),
        pilot_seeds=(0, 1, 2),
        stable_seeds=(40, 41, 42, 43, 44),
        stable_pilot_seeds=(30, 31, 32),
    ),
    "full": Setup(
        samples_per_class=None,
        hidden=(200, 200),
        edge_steps=(4.0 / 3.0, 1.0, 2.0 / 3.0),
        stable_step=0.2,
        steps=4000,
        every=10,
        seeds=tuple(range(10, 18)),
        pilot_seeds=(0, 1, 2),
        stable_seeds=tuple(range(40, 48)),
        stable_pilot_seeds=(30, 31, 32),
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


def _stable_runs(setup: Setup, seed_offset: int, device: str) -> list[Trajectory]:
    """The stable step size's runs: claim 2's seeds, shared by the controls of 1 and 3."""
    return _runs(setup, setup.stable_step, fresh(setup.stable_seeds, seed_offset), device)


def _sanity_checks(runs: list[Trajectory]) -> dict[str, float]:
    """The warm-started sharpness at the last step against a cold ``k = 3`` solve."""
    gaps = [abs(r.sharpness[-1] - r.cold_final) / r.cold_final for r in runs]
    return {"warm_vs_cold_final_max_relative_gap": float(max(gaps))}


def test_sharpness_hovers_at_2_over_eta(
    setup: Setup,
    seed_offset: int,
    device: str,
    record_property: Callable[[str, object], None],
    report_dir: Path | None,
) -> None:
    late = setup.late_start
    pilot_seeds = fresh(setup.pilot_seeds, seed_offset)
    pilot = {
        _label(eta): [r.edge_ratio(late) for r in _runs(setup, eta, pilot_seeds, device)]
        for eta in setup.edge_steps
    }
    thresholds = {k: _nearest(v, EDGE_BAND) for k, v in pilot.items()}
    power = stats.require_power(
        stats.power_by_setting(pilot, thresholds, len(setup.seeds), power=POWER, resolution=TOL),
        len(setup.seeds),
    )
    seeds = fresh(setup.seeds, seed_offset)
    runs = {eta: _runs(setup, eta, seeds, device) for eta in setup.edge_steps}
    ratios = {eta: [r.edge_ratio(late) for r in rows] for eta, rows in runs.items()}
    intervals = {eta: stats.t_interval(v) for eta, v in ratios.items()}
    low, high = EDGE_BAND
    decision = decide(
        holds=all(low <= i.low and i.high <= high for i in intervals.values()),
        fails=any(i.high < low or i.low > high for i in intervals.values()),
    )
    stable_runs = _stable_runs(setup, seed_offset, device)
    stable = stats.t_interval([r.edge_ratio(late) for r in stable_runs])
    control = Control(
        name=f"the stable step size eta = {setup.stable_step:g} (2/eta = "
        f"{2 / setup.stable_step:g})",
        statistic="late-phase mean of lambda_max * eta / 2 (mean over seeds)",
        **interval_fields(stable),
        rule=f"fires if the upper end is below {low} (clearly below the edge)",
        fired=stable.high < low,
    )
    first = intervals[setup.edge_steps[0]]
    record = ClaimRecord(
        id="cohen2021.eos.sharpness_at_2_over_eta",
        claim="at the edge of stability lambda_max hovers at about 2 / eta",
        paper=PAPER,
        statistic=f"late-phase mean of lambda_max * eta / 2 at eta = {setup.edge_steps[0]:.4g} "
        "(mean over seeds; every step size in data)",
        **interval_fields(first),
        rule=f"holds: every edge step size's CI inside {list(EDGE_BAND)}; fails: any CI "
        "entirely outside; else undecided",
        decision=decision,
        controls=[control],
        data={
            "power": power,
            "seeds": list(seeds),
            "late_start": late,
            "setup": COHEN2021_SETUP.note,
            "ratios": {_label(eta): v for eta, v in ratios.items()},
            "intervals": {_label(eta): vars(i) for eta, i in intervals.items()},
            "stable_seeds": list(fresh(setup.stable_seeds, seed_offset)),
            "stable_ratios": [r.edge_ratio(late) for r in stable_runs],
            "sanity_checks": _sanity_checks(
                [r for rows in runs.values() for r in rows] + stable_runs
            ),
            "first_crossing": {
                _label(eta): [_first_crossing(r) for r in rows] for eta, rows in runs.items()
            },
            "matvecs_per_measurement": _matvec_summary([*runs.values(), stable_runs]),
        },
    )
    if report_dir is not None:
        _draw(setup, seeds[0], device, report_dir)
    conclude(record_property, record, expected="holds")


def _first_crossing(run: Trajectory) -> int | None:
    """The first step at which ``lambda_max >= 2 / eta``, or None."""
    above = np.flatnonzero(run.sharpness * run.eta / 2 >= 1)
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
    threshold = float(np.log(SHARPENING))
    pilot_runs = _runs(
        setup, setup.stable_step, fresh(setup.stable_pilot_seeds, seed_offset), device
    )
    pilot = {
        _label(setup.stable_step): [float(np.log(_sharpening(r, 0, late))) for r in pilot_runs]
    }
    power = stats.require_power(
        stats.power_by_setting(
            pilot,
            dict.fromkeys(pilot, threshold),
            len(setup.stable_seeds),
            power=POWER,
            resolution=TOL,
        ),
        len(setup.stable_seeds),
    )
    stable_runs = _stable_runs(setup, seed_offset, device)
    rises = [_sharpening(r, 0, late) for r in stable_runs]
    stable = stats.geometric_mean_interval(rises)
    decision = decide(holds=stable.low > SHARPENING, fails=stable.high < SHARPENING)
    seeds = fresh(setup.seeds, seed_offset)
    edge_runs = {eta: _runs(setup, eta, seeds, device) for eta in setup.edge_steps}
    edge_rises = {eta: [_sharpening(r, 0, late) for r in rows] for eta, rows in edge_runs.items()}
    edge = setup.edge_steps[0]
    past = [_sharpening(r, late, setup.steps) for r in edge_runs[edge]]
    after = stats.geometric_mean_interval(past)
    control = Control(
        name=f"past the edge: the late phase itself at eta = {edge:.4g} (claim 1's seeds)",
        statistic="lambda_max at the end / at the late-phase start (geometric mean)",
        **interval_fields(after),
        rule=f"fires if the upper end is below {SHARPENING} (sharpening stops at 2/eta)",
        fired=after.high < SHARPENING,
    )
    frozen_runs = _runs(
        setup,
        setup.stable_step,
        fresh(setup.stable_seeds, seed_offset),
        device,
        last_layer_only=True,
    )
    frozen = [_sharpening(r, 0, late) for r in frozen_runs]
    record = ClaimRecord(
        id="cohen2021.eos.progressive_sharpening",
        claim="lambda_max rises during full-batch GD training while below 2 / eta",
        paper=PAPER,
        statistic=f"lambda_max at step {late} / at initialisation, stable eta = "
        f"{setup.stable_step:g} (geometric mean over seeds; the edge step sizes in data)",
        **interval_fields(stable),
        rule=f"holds: the stable step size's lower end > {SHARPENING}; fails: its upper end "
        f"< {SHARPENING}; else undecided (the edge step sizes' rises are implied by claim 1, "
        "2/eta being above 1.5 lambda_0 by choice of eta, and are not decisive)",
        decision=decision,
        controls=[control],
        data={
            "power": power,
            "seeds": list(fresh(setup.stable_seeds, seed_offset)),
            "late_start": late,
            "rises": rises,
            "initial_sharpness": [r.sharpness[0] for r in stable_runs],
            "edge_seeds": list(seeds),
            "edge_rises": {_label(eta): v for eta, v in edge_rises.items()},
            "edge_intervals": {
                _label(eta): vars(stats.geometric_mean_interval(v)) for eta, v in edge_rises.items()
            },
            "past_edge_rises": past,
            "sanity_checks": {
                "frozen_features_rises": frozen,
                "frozen_features_interval": vars(stats.geometric_mean_interval(frozen)),
                "frozen_features_rule": f"constant Hessian: upper end below {SHARPENING}",
                "frozen_features_passed": stats.geometric_mean_interval(frozen).high < SHARPENING,
                **_sanity_checks(frozen_runs),
            },
        },
    )
    conclude(record_property, record, expected="holds")


def test_loss_falls_non_monotonically(
    setup: Setup, seed_offset: int, device: str, record_property: Callable[[str, object], None]
) -> None:
    late = setup.late_start
    pilot_seeds = fresh(setup.pilot_seeds, seed_offset)
    pilot, thresholds = {}, {}
    for eta in setup.edge_steps:
        rows = _runs(setup, eta, pilot_seeds, device)
        pilot[f"rising {_label(eta)}"] = [r.rising_fraction(late) for r in rows]
        pilot[f"log loss ratio {_label(eta)}"] = [float(np.log(r.loss_ratio(late))) for r in rows]
        thresholds |= {f"rising {_label(eta)}": RISING, f"log loss ratio {_label(eta)}": 0.0}
    resolution = 1 / (setup.steps - late)  # the smallest step of the rising fraction
    power = stats.require_power(
        stats.power_by_setting(
            pilot, thresholds, len(setup.seeds), power=POWER, resolution=resolution
        ),
        len(setup.seeds),
    )
    seeds = fresh(setup.seeds, seed_offset)
    runs = {eta: _runs(setup, eta, seeds, device) for eta in setup.edge_steps}
    rising = {
        eta: stats.t_interval([r.rising_fraction(late) for r in v]) for eta, v in runs.items()
    }
    falls = {
        eta: stats.geometric_mean_interval([r.loss_ratio(late) for r in v])
        for eta, v in runs.items()
    }
    decision = decide(
        holds=all(rising[e].low > RISING and falls[e].high < 1 for e in setup.edge_steps),
        fails=any(rising[e].high < RISING or falls[e].low > 1 for e in setup.edge_steps),
    )
    stable_runs = _stable_runs(setup, seed_offset, device)
    stable = stats.t_interval([r.rising_fraction(late) for r in stable_runs])
    control = Control(
        name=f"the stable step size eta = {setup.stable_step:g} (claim 2's seeds)",
        statistic="fraction of late-phase steps at which the loss rose (mean over seeds)",
        **interval_fields(stable),
        rule=f"fires if the upper end is below {RISING} (monotone descent)",
        fired=stable.high < RISING,
    )
    first = rising[setup.edge_steps[0]]
    record = ClaimRecord(
        id="cohen2021.eos.loss_falls_unsteadily",
        claim="at the edge of stability the loss keeps falling, but not monotonically",
        paper=PAPER,
        statistic=f"fraction of late-phase steps with a rising loss at eta = "
        f"{setup.edge_steps[0]:.4g} (mean over seeds; ratios and other step sizes in data)",
        **interval_fields(first),
        rule=f"holds: at every edge step size the fraction's lower end > {RISING} and the "
        "late-phase loss ratio's upper end < 1; fails: at any, the fraction's upper end < "
        f"{RISING} or the ratio's lower end > 1; else undecided",
        decision=decision,
        controls=[control],
        data={
            "power": power,
            "seeds": list(seeds),
            "late_start": late,
            "rising": {_label(e): [r.rising_fraction(late) for r in v] for e, v in runs.items()},
            "rising_intervals": {_label(e): vars(i) for e, i in rising.items()},
            "loss_ratios": {_label(e): [r.loss_ratio(late) for r in v] for e, v in runs.items()},
            "loss_ratio_intervals": {_label(e): vars(i) for e, i in falls.items()},
            "final_losses": {_label(e): [r.losses[-1] for r in v] for e, v in runs.items()},
            "stable_rising": [r.rising_fraction(late) for r in stable_runs],
        },
    )
    conclude(record_property, record, expected="holds")


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
