"""sagun2014: gradient descent from random starts ends in an energy band that narrows with N.

Conjecture:
    On high-dimensional non-convex landscapes, gradient descent from random starts ends
    in a narrow band of values, and the band narrows as the dimension grows. On the
    spherical p-spin glass the band sits just above the threshold energy
    ``-2 sqrt((p-1)/p)`` (``-1.633`` for p = 3, ``-1.732`` for p = 4, so p = 4 shifts it
    by about -0.1); teacher-student networks show the same concentration, and gradient
    descent (GD) and stochastic gradient descent (SGD) reach the band within the same
    number of steps.

Paper:
    Sagun, Güney, Ben Arous, LeCun (2014), *Explorations on high dimensional
    landscapes*, arXiv:1412.6615: section 2 (spherical spin glass; histograms of the
    final energies of GD from random starts for growing N, concentrating near the
    threshold), section 3 (teacher-student networks; GD and SGD reach the band within the
    same number of steps). Threshold and ground-state energies: Auffinger, Ben Arous,
    Černý (2013), arXiv:1003.1129, kept with provenance in
    :mod:`hesskit.problems.reference`.

Setup (quick profile; ``full`` in :data:`SETUPS`):
    Spin glass ``H(w) = N^{-(p-1)/2} sum J w..w`` on ``|w|^2 = N``
    (:class:`hesskit.problems.SphericalSpinGlass`). p = 3 at N in {20, 30, 50, 70, 100};
    at each N, 4 landscapes (coupling seeds ``100000 p + 1000 N + 10 g``), 32 uniform
    random starts each (seed + 1), projected gradient descent
    (:func:`hesskit.train.spherical_gradient_descent`) with step ``1 / (4 sqrt(p (p-1)))``
    (half the stability limit of the band) until the gradient norm per ``sqrt(N)`` is
    below 1e-4 (at most 5,000 steps). p = 4 the same at N in {20, 30}.
    Teacher-student (:func:`hesskit.problems.teacher_student`, tanh, the student has the
    teacher's architecture as in the paper): input dimension = hidden width
    ``m in {6, 10, 16}`` (49, 121, 289 parameters), 4 samples per parameter, 3 teachers
    per size, 6 student initialisations each, full-batch GD with step 0.5 for 2,000 steps;
    at the largest size the same initialisations are also trained by SGD (batch 32, step
    0.5) until they reach the band.

Statistics and decision rules (fixed before the run; 95% intervals, alpha = 0.05):
    1. Band narrows (p = 3). Spread of a landscape = standard deviation of its runs'
       final ``H/N``. Slope of ``log spread`` on ``log N`` over the 20 landscapes, with
       its t-interval (:func:`claims.stats.slope_interval`). Holds if the upper end < 0
       and the observed slope is extreme among the slopes of 999 assignments with the
       runs shuffled across landscapes (one-sided permutation p < 0.05).
    2. Band approaches the threshold from above (p = 3). Slope of the landscapes' mean
       final ``H/N`` on ``log N``: upper end < 0 and permutation p < 0.05 as in 1 (the
       band descends with N); and at the largest N the mean is above the threshold
       -1.633 (one-sided one-sample t-test over landscapes, ``scipy.stats.ttest_1samp``,
       p < 0.05).
    3. p = 4 shifts the band by about -0.1. Difference of landscape means ``p4 - p3`` at
       N = 30 with Welch's t-interval (``scipy.stats.ttest_ind``). Holds if the interval
       lies in the equivalence band [-0.2, -0.05] ("about -0.1" within a factor 2).
    4. Teacher-student band narrows. Slope of ``log spread`` of the final training loss on
       ``log (number of parameters)`` over the 9 teachers: upper end < 0 and permutation
       p < 0.05 as in 1.
    5. GD and SGD reach the band in the same number of steps. Band ceiling of a teacher =
       the largest of its GD final losses. Per initialisation, the ratio of the steps SGD
       and GD need to first reach the ceiling (SGD capped at 3x the GD budget; a capped
       run counts at the cap); geometric mean with a BCa bootstrap interval. Holds if the
       interval lies in [0.5, 2] ("the same number of steps" within a factor 2).

Negative controls (the same statistic where the conjecture predicts no effect or the
opposite; it must not fire, or must fire, accordingly):
    1, 2, 4. The runs shuffled across landscapes (N, or the size, loses its meaning):
       the t-interval rule, recomputed on each of 999 shuffles, may fire on at most 10%
       of them (its nominal rate is 2.5%).
    3. Every relabelling of the N = 30 landscapes into two groups of four ("p" loses its
       meaning): the rule may fire on at most 10% of them.
    5. SGD with a quarter of the step size on the first teacher's initialisations (capped
       at 6x the GD budget): the conjecture predicts about four times the steps, and the
       statistic must see a difference (interval entirely above 2).

Pilot (before the rules were fixed): one landscape per N gave spreads 0.087 (N = 25),
    0.053 (50), 0.034 (100) and p = 4 means -1.470 (N = 25), -1.598 (N = 40); tolerance
    1e-4 changes final energies by < 3e-7 against 1e-6. Teacher-student pilots fixed the
    step size; the sizes, budget and batch were set before any spread was compared.

Result (quick profile, about 75 s on one CPU thread; every descent converged):
    1. Holds. Mean spread per N: 0.099 (20), 0.083 (30), 0.056 (50), 0.044 (70), 0.041
       (100); slope -0.50 [-0.80, -0.21], permutation p = 0.001. Control: the rule fired
       on 3.0% of shuffles, mean shuffled slope 0.002.
    2. Holds. Mean final H/N: -1.475, -1.481, -1.499, -1.538, -1.560 for N = 20..100;
       slope -0.055 [-0.071, -0.039], permutation p = 0.001; at N = 100 the mean -1.560
       [-1.577, -1.544] is above the threshold -1.633 (p = 0.0004), as in the pilot of
       ``shared/claims.md`` (-1.556). Control: fired on 2.8% of shuffles.
    3. Fails as pre-registered, ``xfail`` in the quick profile: at N = 30 the shift is
       -0.063 [-0.095, -0.031] (Welch p = 0.003: a real downward shift, but not yet
       -0.1; -0.025 at N = 20, so it grows with N towards the thresholds' difference
       -0.099). Control: no relabelling fired (0 of 69).
    4. Fails as pre-registered, ``xfail`` in the quick profile: the spread grows with size,
       slope +0.87 [0.01, 1.73] (permutation p = 1.0); mean final losses rise from about
       3e-4 (49 parameters) to 2.4e-3 (289), i.e. after the fixed 2,000-step budget the
       larger students are further from convergence, and the budget, not the landscape,
       sets the band; the relative spread (coefficient of variation) falls slightly,
       0.19-0.71 to 0.24-0.31, but was not the pre-registered statistic. Control: fired on
       2.4% of shuffles. A test of the band at convergence would need a stopping rule on
       the gradient norm instead of a step budget; the design was not changed after
       seeing this result.
    5. Holds. Steps to the band ceiling at width 16: median 1,250 (GD) and 1,720 (SGD);
       ratio 1.35 [1.21, 1.48], no SGD run capped. SGD reaches the ceiling on a downward
       fluctuation: its running level stays near the ceiling while GD goes below it (see
       the figure). Control: SGD at a quarter step needs 4.30 [4.09, 4.66] times the
       steps, detected.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from scipy import stats

from claims import trajectories as tr
from claims.report import ClaimRecord, record_claim
from claims.stats import Interval, save_figure
from hesskit.problems import reference, teacher_student
from hesskit.train import gradient_descent, sgd


@dataclass(frozen=True)
class Setup:
    """One profile's pre-registered sizes, seeds and descent parameters."""

    p3_sizes: tuple[int, ...]
    p4_sizes: tuple[int, ...]
    shift_size: int
    landscapes: int
    starts: int
    max_steps: int
    tol: float
    widths: tuple[int, ...]
    samples_per_parameter: int
    teachers: int
    inits: int
    ts_lr: float
    ts_steps: int
    sgd_batch: int
    sgd_cap: int
    control_cap: int
    num_shuffles: int


SETUPS = {
    "quick": Setup(
        p3_sizes=(20, 30, 50, 70, 100),
        p4_sizes=(20, 30),
        shift_size=30,
        landscapes=4,
        starts=32,
        max_steps=5000,
        tol=1e-4,
        widths=(6, 10, 16),
        samples_per_parameter=4,
        teachers=3,
        inits=6,
        ts_lr=0.5,
        ts_steps=2000,
        sgd_batch=32,
        sgd_cap=3,
        control_cap=6,
        num_shuffles=999,
    ),
    # paper scale, meant for a GPU: 8 N^3 bytes per glass (1 GB at N = 500, p = 3)
    "full": Setup(
        p3_sizes=(50, 100, 200, 300, 500),
        p4_sizes=(50, 100),
        shift_size=100,
        landscapes=8,
        starts=200,
        max_steps=20000,
        tol=1e-5,
        widths=(8, 16, 32, 64),
        samples_per_parameter=4,
        teachers=4,
        inits=10,
        ts_lr=0.5,
        ts_steps=10000,
        sgd_batch=32,
        sgd_cap=3,
        control_cap=6,
        num_shuffles=9999,
    ),
}
SHIFT_BAND = (-0.2, -0.05)
"""The equivalence band of the p = 4 shift: "about -0.1" within a factor of 2."""
STEP_RATIO_BAND = (0.5, 2.0)
"""The equivalence band of steps(SGD) / steps(GD): "the same number of steps" within 2x."""
MAX_FIRE_RATE = 0.10
"""The most a rule may fire on shuffled labels (its nominal one-sided rate is 0.025)."""
ALPHA = 0.05
SHUFFLE_SEED = 2014
CONTROL_LR_FACTOR = 0.25
P4_XFAIL = (
    "measured in the quick profile: at N = 30 the p = 4 band lies only -0.063 "
    "[-0.095, -0.031] below the p = 3 band, short of the asymptotic -0.1 (the thresholds' "
    "difference); the shift grows with N (-0.025 at N = 20)"
)
TS_XFAIL = (
    "measured in the quick profile: the spread of the teacher-student final loss grows with "
    "size (slope +0.87 [0.01, 1.73]): after the fixed 2,000-step budget the larger students "
    "are further from convergence, so their losses are higher and more spread"
)


def step_size(p: int) -> float:
    """Half the stability limit ``2 / (4 sqrt(p (p - 1)))`` of GD near the band."""
    return 1.0 / (4.0 * math.sqrt(p * (p - 1)))


def glass_seed(p: int, num_spins: int, index: int) -> int:
    """Distinct coupling seeds for every (p, N, landscape) (starts use seed + 1)."""
    return 100_000 * p + 1000 * num_spins + 10 * index


@dataclass(frozen=True)
class Bands:
    """The final energies per spin of every landscape of one p, grouped by landscape."""

    p: int
    bands: list[tr.Band]

    @property
    def sizes(self) -> np.ndarray:
        """``N`` of each landscape."""
        return np.array([b.size for b in self.bands])

    @property
    def values(self) -> np.ndarray:
        """``(num_landscapes, starts)`` final energies per spin."""
        return np.stack([b.values for b in self.bands])

    def means_at(self, num_spins: int) -> np.ndarray:
        """The mean final energy of each landscape of size ``num_spins``."""
        return np.array([b.values.mean() for b in self.bands if b.size == num_spins])


def _bands(setup: Setup, p: int, sizes, device: str) -> Bands:
    return Bands(
        p,
        [
            tr.spin_glass_band(
                n,
                p,
                seed=glass_seed(p, n, g),
                num_starts=setup.starts,
                lr=step_size(p),
                max_steps=setup.max_steps,
                tol=setup.tol,
                device=device,
            )
            for n in sizes
            for g in range(setup.landscapes)
        ],
    )


@pytest.fixture(scope="module")
def setup(profile) -> Setup:
    return SETUPS[profile]


@pytest.fixture(scope="module")
def spin_glass(setup, profile) -> dict[int, Bands]:
    """Every p = 3 and p = 4 descent, run once and shared by claims 1-3."""
    device = "cuda" if profile == "full" and torch.cuda.is_available() else "cpu"
    return {
        3: _bands(setup, 3, setup.p3_sizes, device),
        4: _bands(setup, 4, setup.p4_sizes, device),
    }


@dataclass(frozen=True, eq=False)
class TeacherStudent:
    """GD runs of every (size, teacher, init), and GD-vs-SGD at the largest size."""

    parameters: dict[int, int]
    gd: dict[tuple[int, int], list]
    ceilings: dict[tuple[int, int], float]
    gd_steps: list[int]
    sgd_steps: list[int]
    sgd_capped: int
    sgd_runs: list
    control_gd_steps: list[int]
    control_steps: list[int]
    control_capped: int


@pytest.fixture(scope="module")
def networks(setup) -> TeacherStudent:
    """Teacher-student runs shared by claims 4 and 5."""
    parameters, gd, ceilings, problems = {}, {}, {}, {}
    for width in setup.widths:
        count = width * (width + 2) + 1
        parameters[width] = count
        for t in range(setup.teachers):
            problem = teacher_student(
                input_dim=width,
                teacher_width=width,
                num_samples=setup.samples_per_parameter * count,
                seed=1000 * width + t,
            )
            problems[width, t] = problem
            gd[width, t] = [
                gradient_descent(
                    problem.make_model(seed=s),
                    problem.loss_fn,
                    problem.data,
                    lr=setup.ts_lr,
                    max_steps=setup.ts_steps,
                )
                for s in range(1, setup.inits + 1)
            ]
            ceilings[width, t] = max(run.final_loss for run in gd[width, t])
    largest = setup.widths[-1]
    gd_steps, sgd_steps, sgd_runs, capped = [], [], [], 0
    control_gd, control_steps, control_capped = [], [], 0
    for t in range(setup.teachers):
        problem, ceiling = problems[largest, t], ceilings[largest, t]
        for s, gd_run in zip(range(1, setup.inits + 1), gd[largest, t], strict=True):
            gd_steps.append(tr.steps_to_reach(gd_run, ceiling))
            run = sgd(
                problem.make_model(seed=s),
                problem.loss_fn,
                problem.data,
                lr=setup.ts_lr,
                batch_size=setup.sgd_batch,
                max_steps=setup.sgd_cap * setup.ts_steps,
                target_loss=ceiling,
                eval_every=10,
                seed=s,
            )
            sgd_runs.append(run)
            reached = tr.steps_to_reach(run, ceiling)
            capped += reached is None
            sgd_steps.append(run.num_steps if reached is None else reached)
            if t == 0:
                slow = sgd(
                    problem.make_model(seed=s),
                    problem.loss_fn,
                    problem.data,
                    lr=CONTROL_LR_FACTOR * setup.ts_lr,
                    batch_size=setup.sgd_batch,
                    max_steps=setup.control_cap * setup.ts_steps,
                    target_loss=ceiling,
                    eval_every=10,
                    seed=s,
                )
                reached = tr.steps_to_reach(slow, ceiling)
                control_capped += reached is None
                control_steps.append(slow.num_steps if reached is None else reached)
                control_gd.append(gd_steps[-1])
    return TeacherStudent(
        parameters,
        gd,
        ceilings,
        gd_steps,
        sgd_steps,
        capped,
        sgd_runs,
        control_gd,
        control_steps,
        control_capped,
    )


def _slope_record(name, statistic, fit: Interval, control: tr.ShuffleControl, details):
    """The decision of a slope claim and of its shuffle control, and the record of both."""
    holds = fit.high < 0 and control.p_value < ALPHA
    control_ok = control.fire_rate <= MAX_FIRE_RATE
    first = control.first
    return (
        holds,
        control_ok,
        ClaimRecord(
            claim=name,
            statistic=statistic,
            estimate=fit.estimate,
            interval=fit.bounds,
            p_value=control.p_value,
            rule=f"upper end of the 95% t-interval of the slope < 0 and one-sided permutation "
            f"p-value of the slope among {len(control.slopes)} shuffles < {ALPHA}",
            decision="holds" if holds else "fails",
            control=(
                f"runs shuffled across sizes ({len(control.slopes)} shuffles): rule fired on "
                f"{control.fire_rate:.1%} (must be <= {MAX_FIRE_RATE:.0%}); mean shuffled slope "
                f"{control.slopes.mean():.3g}; first shuffle {first.estimate:.3g} "
                f"[{first.low:.3g}, {first.high:.3g}]"
            ),
            details={
                **details,
                "slope_t_p_value": fit.p_value,
                "permutation_p_value": control.p_value,
            },
        ),
    )


def test_band_narrows_with_n(spin_glass, setup, record_property, report_dir):
    bands = spin_glass[3]
    fit = tr.group_slope(bands.sizes, bands.values, "log_spread")
    control = tr.shuffle_control(
        bands.sizes, bands.values, num_shuffles=setup.num_shuffles, seed=SHUFFLE_SEED
    )
    spreads = {
        int(n): [float(b.values.std(ddof=1)) for b in bands.bands if b.size == n]
        for n in setup.p3_sizes
    }
    holds, control_ok, record = _slope_record(
        "sagun2014 energy band narrows with N (p = 3 spin glass)",
        "slope of log(std of final H/N) on log N over landscapes",
        fit,
        control,
        {
            "sizes": list(setup.p3_sizes),
            "landscapes_per_size": setup.landscapes,
            "starts_per_landscape": setup.starts,
            "spread_per_landscape": spreads,
            "converged_fraction": min(b.converged for b in bands.bands),
        },
    )
    record_claim(record_property, record)
    if report_dir is not None:
        _draw_bands(spin_glass, setup, report_dir)
        _draw_spread(bands, fit, control, report_dir)
    assert control_ok, f"shuffle control fired on {control.fire_rate:.1%} of the shuffles"
    assert holds, f"slope {fit.estimate:.3g} [{fit.low:.3g}, {fit.high:.3g}] not below 0"


def test_band_approaches_threshold_from_above(spin_glass, setup, record_property):
    bands = spin_glass[3]
    threshold = reference.THRESHOLD_ENERGY[3].value
    fit = tr.group_slope(bands.sizes, bands.values, "mean")
    control = tr.shuffle_control(
        bands.sizes,
        bands.values,
        kind="mean",
        num_shuffles=setup.num_shuffles,
        seed=SHUFFLE_SEED,
    )
    top = bands.means_at(setup.p3_sizes[-1])
    above = stats.ttest_1samp(top, threshold, alternative="greater")
    top_ci = stats.ttest_1samp(top, threshold).confidence_interval(1 - ALPHA)
    means = {int(n): bands.means_at(n).tolist() for n in setup.p3_sizes}
    holds, control_ok, record = _slope_record(
        "sagun2014 energy band descends towards the p = 3 threshold from above",
        "slope of the landscape mean of final H/N on log N",
        fit,
        control,
        {
            "mean_per_landscape": means,
            "threshold": threshold,
            "ground_state": reference.GROUND_STATE_ENERGY[3].value,
            "largest_n_mean": float(top.mean()),
            "largest_n_interval": [float(top_ci.low), float(top_ci.high)],
            "largest_n_above_threshold_p": float(above.pvalue),
        },
    )
    holds = holds and above.pvalue < ALPHA
    record = dataclasses.replace(
        record,
        rule=record.rule + f"; and mean at N = {setup.p3_sizes[-1]} above {threshold} "
        f"(one-sided t-test p < {ALPHA})",
        decision="holds" if holds else "fails",
    )
    record_claim(record_property, record)
    assert control_ok, f"shuffle control fired on {control.fire_rate:.1%} of the shuffles"
    assert holds, f"slope {fit.bounds}, largest-N mean {top.mean():.4f} (p {above.pvalue:.3g})"


def test_p4_shifts_band(spin_glass, setup, record_property, request, profile):
    request.applymarker(pytest.mark.xfail(profile == "quick", reason=P4_XFAIL, strict=True))
    n = setup.shift_size
    p3, p4 = spin_glass[3].means_at(n), spin_glass[4].means_at(n)
    test = stats.ttest_ind(p4, p3, equal_var=False)
    ci = test.confidence_interval(1 - ALPHA)
    low, high = SHIFT_BAND

    def fires(a, b) -> bool:
        interval = stats.ttest_ind(a, b, equal_var=False).confidence_interval(1 - ALPHA)
        return bool(low <= interval.low and interval.high <= high)

    pooled = np.concatenate([p4, p3])
    labels = list(itertools.combinations(range(len(pooled)), len(p4)))
    fire_rate = float(
        np.mean(
            [
                fires(pooled[list(c)], np.delete(pooled, list(c)))
                for c in labels
                if set(c) != set(range(len(p4)))
            ]
        )
    )
    holds = bool(low <= ci.low and ci.high <= high)
    threshold_shift = reference.THRESHOLD_ENERGY[4].value - reference.THRESHOLD_ENERGY[3].value
    matched = {
        int(m): {
            "p3_means": spin_glass[3].means_at(m).tolist(),
            "p4_means": spin_glass[4].means_at(m).tolist(),
        }
        for m in setup.p4_sizes
    }
    record_claim(
        record_property,
        ClaimRecord(
            claim="sagun2014 p = 4 shifts the energy band by about -0.1",
            statistic=f"difference of landscape means of final H/N, p4 - p3, at N = {n}",
            estimate=float(p4.mean() - p3.mean()),
            interval=(float(ci.low), float(ci.high)),
            p_value=None,
            rule=f"Welch 95% interval inside [{low}, {high}]",
            decision="holds" if holds else "fails",
            control=(
                f"all {len(labels) - 1} other relabellings of the {len(pooled)} landscapes: "
                f"rule fired on {fire_rate:.1%} (must be <= {MAX_FIRE_RATE:.0%})"
            ),
            details={
                "threshold_shift": threshold_shift,
                "per_size": matched,
                "welch_p_value": float(test.pvalue),
            },
        ),
    )
    assert fire_rate <= MAX_FIRE_RATE, f"relabelling control fired on {fire_rate:.1%}"
    assert holds, f"shift {p4.mean() - p3.mean():.3g} [{ci.low:.3g}, {ci.high:.3g}]"


def test_teacher_student_band_narrows(
    networks, setup, record_property, report_dir, request, profile
):
    request.applymarker(pytest.mark.xfail(profile == "quick", reason=TS_XFAIL, strict=True))
    keys = sorted(networks.gd)
    sizes = [networks.parameters[w] for w, _ in keys]
    values = np.array([[run.final_loss for run in networks.gd[k]] for k in keys])
    fit = tr.group_slope(sizes, values, "log_spread")
    control = tr.shuffle_control(sizes, values, num_shuffles=setup.num_shuffles, seed=SHUFFLE_SEED)
    holds, control_ok, record = _slope_record(
        "sagun2014 teacher-student loss band narrows with size",
        "slope of log(std of final training loss) on log(number of parameters)",
        fit,
        control,
        {
            "widths": list(setup.widths),
            "parameters": [networks.parameters[w] for w in setup.widths],
            "coefficient_of_variation": {
                f"m={w},teacher={t}": float(values[i].std(ddof=1) / values[i].mean())
                for i, (w, t) in enumerate(keys)
            },
            "final_loss": {
                f"m={w},teacher={t}": values[i].tolist() for i, (w, t) in enumerate(keys)
            },
        },
    )
    record_claim(record_property, record)
    if report_dir is not None:
        _draw_teacher_student(networks, setup, report_dir)
    assert control_ok, f"shuffle control fired on {control.fire_rate:.1%} of the shuffles"
    assert holds, f"slope {fit.estimate:.3g} [{fit.low:.3g}, {fit.high:.3g}] not below 0"


def test_gd_and_sgd_reach_band_in_same_steps(networks, setup, record_property):
    ratios = np.array(networks.sgd_steps) / np.array(networks.gd_steps)
    ci = tr.geometric_mean_interval(ratios)
    control = np.array(networks.control_steps) / np.array(networks.control_gd_steps)
    control_ci = tr.geometric_mean_interval(control)
    low, high = STEP_RATIO_BAND
    holds = low <= ci.low and ci.high <= high
    detected = control_ci.low > high
    record_claim(
        record_property,
        ClaimRecord(
            claim="sagun2014 GD and SGD reach the teacher-student band in the same steps",
            statistic=f"geometric mean over inits of steps(SGD, batch {setup.sgd_batch}) / "
            f"steps(GD) to the band ceiling, width {setup.widths[-1]}",
            estimate=ci.estimate,
            interval=ci.bounds,
            p_value=None,
            rule=f"95% bootstrap interval inside [{low}, {high}]",
            decision="holds" if holds else "fails",
            control=(
                f"SGD at {CONTROL_LR_FACTOR}x the step: {control_ci.estimate:.3g} "
                f"[{control_ci.low:.3g}, {control_ci.high:.3g}] "
                f"({'detected' if detected else 'NOT detected'}: must be above {high})"
            ),
            details={
                "gd_steps": networks.gd_steps,
                "sgd_steps": networks.sgd_steps,
                "sgd_capped": networks.sgd_capped,
                "control_steps": networks.control_steps,
                "control_capped": networks.control_capped,
                "ceilings": {f"m={w},teacher={t}": c for (w, t), c in networks.ceilings.items()},
            },
        ),
    )
    assert detected, f"control (quarter step) not detected: {control_ci.bounds}"
    assert holds, f"steps ratio {ci.estimate:.3g} {ci.bounds} outside {STEP_RATIO_BAND}"


# ---------------------------------------------------------------------------------------
# figures


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _draw_bands(spin_glass, setup: Setup, report_dir) -> None:
    plt = _pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    bins = np.linspace(-1.75, -1.1, 66)
    for n in setup.p3_sizes:
        values = np.concatenate([b.values for b in spin_glass[3].bands if b.size == n])
        axes[0].hist(values, bins=bins, density=True, histtype="step", label=f"N = {n}")
    for p, color in ((3, "tab:blue"), (4, "tab:red")):
        values = np.concatenate(
            [b.values for b in spin_glass[p].bands if b.size == setup.shift_size]
        )
        axes[1].hist(
            values, bins=bins, density=True, histtype="step", color=color, label=f"p = {p}"
        )
        axes[1].axvline(reference.THRESHOLD_ENERGY[p].value, color=color, ls="--", lw=1)
    axes[0].axvline(
        reference.THRESHOLD_ENERGY[3].value, color="k", ls="--", lw=1, label="threshold"
    )
    axes[0].set_title("p = 3: final H/N of GD from random starts")
    axes[1].set_title(f"N = {setup.shift_size}: p = 3 vs p = 4 (dashed: thresholds)")
    for ax in axes:
        ax.set_xlabel("final energy per spin H/N")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("density (pooled over landscapes)")
    save_figure(figure, report_dir, "sagun2014_bands")


def _draw_spread(bands: Bands, fit: Interval, control: tr.ShuffleControl, report_dir) -> None:
    plt = _pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    spread = bands.values.std(axis=1, ddof=1)
    x = np.log(bands.sizes)
    axes[0].scatter(x, np.log(spread), s=12)
    line = np.linspace(x.min(), x.max(), 2)
    intercept = np.mean(np.log(spread)) - fit.estimate * np.mean(x)
    axes[0].plot(
        line,
        intercept + fit.estimate * line,
        color="k",
        label=f"slope {fit.estimate:.2f} [{fit.low:.2f}, {fit.high:.2f}]",
    )
    axes[0].set_xlabel("log N")
    axes[0].set_ylabel("log std of final H/N (per landscape)")
    axes[0].legend(fontsize=8)
    axes[1].hist(control.slopes, bins=40, color="tab:gray", label="N shuffled across runs")
    axes[1].axvline(fit.estimate, color="tab:red", label="observed")
    axes[1].set_xlabel("slope of log spread on log N")
    axes[1].legend(fontsize=8)
    save_figure(figure, report_dir, "sagun2014_spread")


def _draw_teacher_student(networks: TeacherStudent, setup: Setup, report_dir) -> None:
    plt = _pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for width in setup.widths:
        finals = [run.final_loss for t in range(setup.teachers) for run in networks.gd[width, t]]
        axes[0].hist(
            np.log10(finals),
            bins=20,
            histtype="step",
            label=f"m = {width} ({networks.parameters[width]} parameters)",
        )
    axes[0].set_xlabel("log10 final training loss (GD)")
    axes[0].set_title("teacher-student: final losses over teachers and inits")
    axes[0].legend(fontsize=8)
    largest = setup.widths[-1]
    for i, run in enumerate(networks.gd[largest, 0]):
        axes[1].plot(
            run.steps, run.losses, color="tab:gray", alpha=0.6, label="GD" if i == 0 else None
        )
    for i, run in enumerate(networks.sgd_runs[: setup.inits]):
        axes[1].plot(
            run.steps,
            run.losses,
            color="tab:blue",
            alpha=0.6,
            label=f"SGD batch {setup.sgd_batch}" if i == 0 else None,
        )
    axes[1].axhline(networks.ceilings[largest, 0], color="k", ls="--", lw=1, label="band ceiling")
    axes[1].set_yscale("log")
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("training loss")
    axes[1].set_title(f"m = {largest}, teacher 0: GD vs SGD")
    axes[1].legend(fontsize=8)
    save_figure(figure, report_dir, "sagun2014_teacher_student")
