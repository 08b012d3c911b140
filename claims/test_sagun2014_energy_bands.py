"""sagun2014: gradient descent from random starts ends in a band near the threshold energy.

Conjecture:
    On high-dimensional non-convex landscapes, gradient descent from random starts ends
    in a narrow band of values that sits near the threshold energy of the spherical
    p-spin glass, ``-2 sqrt((p-1)/p)``, and approaches it as N grows; a teacher-student
    network shows the same band, narrowing as the network grows; GD and SGD reach it in
    about the same number of steps.

Paper:
    Sagun, Güney, Ben Arous, LeCun (2014), *Explorations on high dimensional
    landscapes*, arXiv:1412.6615: section 2 (spherical spin glass, histograms of the final
    energies of GD from random starts for growing N), section 3 (teacher-student networks,
    GD against SGD). Threshold and ground-state energies: Auffinger, Ben Arous, Černý
    (2013), arXiv:1003.1129, in :mod:`hesskit.problems.reference` (p = 3: -1.633 and
    -1.657; p = 4: -1.732 and -1.794).

Why location, not width:
    The spread of H/N over *random* points of the sphere already falls as N^(-1/2), so a
    narrowing band is no evidence of descent (log-spread slopes: random points -0.53,
    10 GD steps -0.52, full GD -0.50 in the pilot). The claims test where the band is.
    Narrowing is reported in ``data`` next to the same slope of random points.

Setup (``SETUPS``; the full profile has not run, no GPU was available):
    Spin glass (:class:`hesskit.problems.SphericalSpinGlass`), projected GD
    (:func:`hesskit.train.spherical_gradient_descent`) with step ``1 / (4 sqrt(p (p-1)))``
    until ``|grad H| / sqrt(N) < 1e-4`` (every quick run converged). Quick: p = 3 at
    N in {20, 30, 50, 70, 100}, p = 4 at N in {12, 16, 20, 25, 30}, 16 landscapes per N
    for p = 3 and 28 for p = 4 (80 and 140), 8 random starts each (the landscape-to-
    landscape spread of the mean dominates, so landscapes, not starts, buy power; p = 4's
    narrower range of log N needs more). Full: p = 3 up to N = 500, p = 4 up
    to 100, 16 landscapes, 64 starts. The same runs give the controls: their energies at
    the start (random points, no descent) and after 10 steps (early-stopped descent).
    Teacher-student (:func:`hesskit.problems.teacher_student`, tanh, the student has the
    teacher's architecture, 4 samples per parameter, float64): widths m in {6, 10, 16}
    (49 to 289 parameters), 11 teachers x 4 initialisations per width (full: 16 x 6),
    trained by full-batch L-BFGS (:func:`claims.protocols.train_to_convergence`: stop at
    loss <= 1e-10 x initial ("zero"), gradient norm < 1e-9, or 1,000 iterations). Most
    runs stop at the 1,000-iteration cap, not converged: the final gradient norm is
    1e-7 to 1e-3 (typically 1e-5 to 1e-4), and a run costs 0.6 s per 1,000 iterations,
    so letting them converge does not fit the quick budget; the "final" loss is the loss
    after 1,000 L-BFGS iterations. The teachers are ``1000 m + t`` with t = 20-30, never
    run before this design (t = 10-12, the first design's teachers, were seen: pooled
    spreads 2.2, 1.25, 0.68 decades at offset 0 and 1.55, 1.54, 0.47 at offset 1), so all
    three teacher-student claims were re-run on them. GD vs SGD: the first 3 teachers at
    the largest width, GD (step 0.5, at most 4,000 steps) and SGD (batch 32, step 0.5, at
    most 3x the GD steps) from the same 4 initialisations each until the loss is <= 1e-2
    x its initial value.
    The quick profile keeps the paper's landscapes and algorithms and only shrinks N (and
    the network widths); at N <= 100 the band sits above the threshold, so the quick rule
    tests the approach to it rather than its limit, and cannot tell the threshold (-1.633)
    from the ground state (-1.657): only the full profile's extrapolation can.

Statistics and decision rules (fixed before the claim seeds ran; 95% intervals):
    1, 2. Band location, each p against its own threshold ``E_th(p)``. Quick: slope of
       ``log(mean final H/N - E_th)`` on ``log N``, the mean taken over the landscapes of
       each N, with a bootstrap interval that resamples landscapes within each N
       (:func:`claims.stats.grouped_slope_interval`): the gap to the threshold closes as a
       power of N. Holds if the interval lies below ``-GAP_EXPONENT`` = -0.2; fails if it
       lies above; else undecided. (A first version took the log of every landscape's own
       gap; one pilot landscape at N = 20 ended 0.02 *below* the threshold, where the log
       is undefined: finite-N bands straddle it, their means do not.) Full: the limit
       ``e_inf`` of ``mean(N) = e_inf + a N^(-gamma)`` (:func:`claims.stats.power_law_limit`,
       bootstrap over landscapes): holds if its interval lies in
       ``[E_0 - 0.03, E_th + 0.03]``; fails if it lies entirely outside.
    3. Teacher-student band: at each width, the median over teachers of
       ``log10(final / initial loss)`` (each teacher the mean over its initialisations,
       which the teachers share) with a BCa bootstrap interval over teachers. Holds if at every
       width the interval lies below ``log10(BAND_CEILING)`` = -3; fails if at some width it
       lies above; else undecided. The fraction of runs reaching zero (<= 1e-10 of the
       initial loss) is reported with its Jeffreys 80% interval, and the spread (sd of
       log10 relative loss) per width.
    4. GD vs SGD: geometric mean over initialisations of steps(SGD) / steps(GD) to 1e-2 of
       the initial loss (:func:`claims.stats.geometric_mean_interval`). Holds if the
       interval lies in [0.5, 2]; fails if it lies outside; else undecided.
    Teacher-student narrowing is reported, not decided (``data["narrowing"]`` of record
    3): per teacher, the sd of log10 final loss over its initialisations, and the slope
    of log(sd) on log(#parameters), next to the same slope at initialisation and after
    10 L-BFGS iterations. A first design decided it with the spread at initialisation as
    its control; that control did not fire at offset 1 (-0.55 [-0.83, -0.28]): random
    initialisations concentrate as the network grows too, as random points of the sphere
    do, so no opposite setting separates narrowing from plain concentration here.

Opposite-setting controls (the same statistic must report the opposite; ``fired``):
    1, 2. Random starting points and early-stopped descent (10 steps) of the same runs:
       fired if the rule, on a finite interval, does not decide ``holds`` there (the
       10-step p = 4 pilot interval reached -0.23, so "fails" would be too strict a fire
       rule for an early stop that has begun to descend).
    3. The first 10 L-BFGS iterations of the same runs: fired if at some width the
       interval lies above -3. (The random initialisation, a first control, is 0 by
       construction of the relative loss and was dropped.)
    4. SGD at a quarter of the step size (first teacher's 4 initialisations): fired if the
       interval lies entirely above 2.

Power analysis (pilot seeds apart from the claim seeds; the spin-glass pilot runs in the
test and is shifted by the seed offset; the teacher-student pilots ran offline, at offset
0, and are reported here):
    A first design (4 landscapes x 32 starts, pilot on landscapes 0-3: residual sd 0.17)
    gave, on its claim landscapes 10-13, -0.46 [-0.79, -0.14] for p = 3: undecided, the
    pilot had understated the landscape-to-landscape variance. A second pilot on
    landscapes 0-15 (8 starts) measured log-gap slopes, GD: p = 3 -0.48 (residual sd
    0.36, sd of log N 0.58), p = 4 -0.70 (0.31, 0.33); 10 steps -0.05 and -0.15; random
    0.009 and 0.017. Treating the slope as a mean with per-landscape sd = residual sd /
    sd(log N) and margin |slope + 0.2|, ``seeds_for_mean_interval`` asked for 54 (p = 3)
    and 42 (p = 4) landscapes; 80 are run, on fresh claim landscapes 100-115.
    The pilot runs inside the test (fixture ``spin_glass_power``) on 8 pilot landscapes
    per N (0-7, fresh at the offset): its bootstrap standard error of the slope, scaled
    as ``1 / sqrt(landscapes)``, gives the landscapes per N that detect the
    pre-registered effect of interest -- a gap closing as N^(-1/2), slope -0.5, a margin
    of 0.3 from the rule's -0.2 -- with 90% power
    (:func:`claims.stats.replicates_for_standard_error`); the test fails if fewer are run.
    The effect is fixed, not the pilot's own slope, which 8 landscapes estimate poorly.
    History: 16 landscapes per N for both p first; with a t-interval over landscapes the
    pilot asked for 103 landscapes in all for p = 4 (a narrow range of log N), so p = 4
    went to 28 per N, and every coupling seed moved to a new, never run set
    (``glass_seed`` now spaces p so that no two (p, N) share a seed). Measured: see the
    result below and each location record's ``data["power"]``.
    Teacher-student pilot of the band (teachers 0-2, inits 1-4): median log10 relative
    loss -4.5 at m = 16 (sd 1.2, margin 1.5: 9 runs needed per width, 44 run); 2 of 36
    pilot runs reached zero. (11 teachers per width were chosen for the narrowing test of
    the first design: an offline pilot, teachers ``1000 m + 0..3``, asked for 31.)
    GD/SGD pilot at 1e-2 of the initial loss (6 inits): ratios 1.5-2.2. A level of 1e-3
    (tried once on the claim seeds: 1.16 [0.89, 1.50]) left GD capped at 10,000 steps on
    half the runs and cost 170 s, so 1e-2 was kept.

Result (quick profile, offsets 0 / 1, from the suite's reports; all descents converged):
    1. p = 3 location -- holds at both: -0.63 [-0.73, -0.51] / -0.61 [-0.70, -0.52]: the
       gap of the band to -1.633 closes about as N^(-0.6) (mean gap 0.21 at N = 20, 0.08
       at N = 100 at offset 0), from above. Controls fired: random starts -0.007 [-0.019,
       0.006] / 0.006 [-0.009, 0.020]; 10 GD steps -0.09 [-0.13, -0.05] / -0.05 [-0.09,
       -0.01]. Pilot: 10 / 4 landscapes per N needed, 16 run (minimal detectable margin
       0.23 / 0.14).
    2. p = 4 location -- holds at both: -0.64 [-0.75, -0.52] / -0.56 [-0.69, -0.44] (gap
       to -1.732). Controls fired: random starts 0.008 [-0.013, 0.031] / 0.010 [-0.012,
       0.034]; 10 steps -0.12 [-0.18, -0.05] / -0.14 [-0.20, -0.07]. Pilot: 15 / 12
       landscapes per N needed, 28 run (0.22 / 0.20).
       The quick sizes cannot tell the threshold from the ground state (-1.657 / -1.794);
       the narrowing of the band (``data["narrowing_slope"]``) is reported next to the
       same slope of random points, which narrow as N^(-1/2) too.
    3. Teacher-student band -- holds at both: the worst width's median relative loss is
       10^-4.35 [10^-4.52, 10^-4.12] / 10^-4.42 [10^-4.89, 10^-4.08]. Control fired: after 10
       L-BFGS iterations 10^-1.38 at both. Zero loss (1e-10 of the start) is reached by 2
       of 132 runs at each offset (Jeffreys 80% interval 0.006-0.035); 130 of 132 stop at
       the 1,000-iteration budget (gradient norms about 1e-5): "converged" here means far
       below the start, not at a minimum. Spread of log10 relative loss per width (6, 10,
       16): 1.83, 1.38, 0.72 / 2.08, 1.93, 0.93 decades; per-teacher narrowing slopes
       (reported) 0.27 / -0.11 for the final losses, -0.02 / -0.27 at initialisation.
    4. GD and SGD steps -- holds at both: 1.37 [1.22, 1.53] / 1.36 [1.22, 1.52]; no run
       capped. Control fired: SGD at a quarter step 4.25 [3.97, 4.54] / 4.22 [4.11, 4.34].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
from scipy import stats as scipy_stats

from claims import protocols
from claims.figures import pyplot, save_figure
from claims.report import ClaimRecord, Control, conclude, decide
from claims.seeds import fresh
from claims.stats import (
    Interval,
    bootstrap_interval,
    geometric_mean_interval,
    grouped_slope_interval,
    power_law_limit,
    replicates_for_standard_error,
    slope_interval,
)
from hesskit.problems import reference, teacher_student
from hesskit.train import TrainResult, gradient_descent, sgd

PAPER = "Sagun, Guney, Ben Arous, LeCun (2014), arXiv:1412.6615"


@dataclass(frozen=True)
class Setup:
    """One profile's pre-registered sizes, seeds and descent parameters."""

    sizes: dict[int, tuple[int, ...]]
    landscapes: dict[int, int]
    starts: int
    max_steps: int
    tol: float
    rule: str
    widths: tuple[int, ...]
    teachers: int
    inits: int
    max_iter: int
    gd_steps: int
    sgd_cap: int
    control_inits: int
    pilot_landscapes: int
    race_teachers: int


SETUPS = {
    "quick": Setup(
        sizes={3: (20, 30, 50, 70, 100), 4: (12, 16, 20, 25, 30)},
        landscapes={3: 16, 4: 28},
        starts=8,
        max_steps=5000,
        tol=1e-4,
        rule="slope",
        widths=(6, 10, 16),
        teachers=11,
        inits=4,
        max_iter=1000,
        gd_steps=4000,
        sgd_cap=3,
        control_inits=4,
        pilot_landscapes=8,
        race_teachers=3,
    ),
    # meant for one H100/H200 (has not run): 8 N^p bytes per glass, 1 GB at p = 3, N = 500
    "full": Setup(
        sizes={3: (50, 100, 200, 300, 500), 4: (20, 30, 50, 70, 100)},
        landscapes={3: 16, 4: 16},
        starts=64,
        max_steps=20000,
        tol=1e-5,
        rule="limit",
        widths=(8, 16, 32),
        teachers=16,
        inits=6,
        max_iter=3000,
        gd_steps=20000,
        sgd_cap=3,
        control_inits=6,
        pilot_landscapes=8,
        race_teachers=4,
    ),
}
GAP_EXPONENT = 0.2
"""Quick rule: the gap to the threshold must close at least as ``N^(-0.2)``."""
POWER_SEED = 4
"""The seed of the pilot's bootstrap (shifted by the offset like every seed)."""
EFFECT_OF_INTEREST = 0.5
"""The power analysis's effect: a gap closing as ``N^(-1/2)`` (margin 0.3 from the rule)."""
LIMIT_TOLERANCE = 0.03
"""Full rule: ``e_inf`` within ``[E_0 - 0.03, E_th + 0.03]``."""
EARLY_STEPS = 10
ZERO_LEVEL = 1e-10
"""A loss at most this times the initial loss is zero (float64)."""
GRAD_TOL = 1e-9
BAND_CEILING = 1e-3
"""The teacher-student band lies below this fraction of the initial loss."""
STEP_LEVEL = 1e-2
"""GD and SGD race to this fraction of the initial loss."""
STEP_RATIO_BAND = (0.5, 2.0)
CONTROL_LR_FACTOR = 0.25
LR = {"gd": 0.5, "sgd": 0.5}
SGD_BATCH = 32
PILOT_LANDSCAPES = tuple(range(16))
CLAIM_LANDSCAPES = tuple(range(100, 128))
CLAIM_TEACHERS = tuple(range(20, 36))
"""Teacher seeds (``1000 m + t``); 0-3 were the pilot's, 10-12 the first design's (seen)."""


def step_size(p: int) -> float:
    """Half the stability limit ``2 / (4 sqrt(p (p - 1)))`` of GD near the band."""
    return 1.0 / (4.0 * math.sqrt(p * (p - 1)))


def glass_seed(p: int, num_spins: int, landscape: int) -> int:
    """Distinct coupling seeds for every (p, N <= 9,999, landscape); starts use seed + 1."""
    return 100_000_000 * p + 10_000 * num_spins + 10 * landscape


def _descents(setup: Setup, landscapes: dict[int, tuple], seed_offset: int, device: str):
    """Per p, the descents on its landscapes (fresh at ``seed_offset``) at every N."""
    bands = {}
    for p, sizes in setup.sizes.items():
        bands[p] = [
            protocols.spin_glass_band(
                n,
                p,
                seed=seed,
                num_starts=setup.starts,
                lr=step_size(p),
                max_steps=setup.max_steps,
                tol=setup.tol,
                early_steps=EARLY_STEPS,
                device=device,
            )
            for n in sizes
            for seed in fresh((glass_seed(p, n, g) for g in landscapes[p]), seed_offset)
        ]
    return bands


@pytest.fixture(scope="module")
def spin_glass(setup, seed_offset, device) -> dict[int, list[protocols.Band]]:
    """Every p = 3 and p = 4 descent, run once and shared by claims 1 and 2."""
    claim = {p: CLAIM_LANDSCAPES[:count] for p, count in setup.landscapes.items()}
    return _descents(setup, claim, seed_offset, device)


@pytest.fixture(scope="module")
def spin_glass_power(setup, seed_offset, device) -> dict[int, dict]:
    """Per p, the power of the location rule from a pilot on the pilot landscapes.

    The pilot's residual sd about its log-gap slope on log N gives a per-landscape sd
    ``residual / sd(log N)`` of the slope seen as a mean; :func:`seeds_for_mean_interval`
    gives the landscapes needed to detect, with 90% power, the pre-registered effect of
    interest (slope ``-EFFECT_OF_INTEREST``, a margin of 0.3 from the rule's threshold).
    The effect is fixed, not the pilot's own slope: a pilot of 8 landscapes per N
    estimates the spread well and the slope poorly.
    """
    pilots = {p: PILOT_LANDSCAPES[: setup.pilot_landscapes] for p in setup.sizes}
    pilot = _descents(setup, pilots, seed_offset, device)
    z = scipy_stats.norm.ppf(0.975)
    margin = EFFECT_OF_INTEREST - GAP_EXPONENT
    power = {}
    for p, bands in pilot.items():
        fit = _gap_slope(bands, p, "values", fresh((POWER_SEED,), seed_offset)[0])
        se = (fit.high - fit.low) / (2 * z)
        run = setup.landscapes[p]
        power[p] = {
            "pilot_seeds": [b.seed for b in bands],
            "pilot_slope": vars(fit),
            "pilot_landscapes_per_n": setup.pilot_landscapes,
            "pilot_standard_error": se,
            "margin": margin,
            "landscapes_needed_per_n": replicates_for_standard_error(
                se, setup.pilot_landscapes, margin
            ),
            "landscapes_per_n": run,
            "min_detectable_margin": float(
                (z + scipy_stats.norm.ppf(0.9)) * se * math.sqrt(setup.pilot_landscapes / run)
            ),
        }
    return power


def _gap_slope(bands: list[protocols.Band], p: int, field: str, seed: int) -> Interval:
    """Slope of log(mean over landscapes of one stage's mean H/N - E_th) on log N."""
    e_th = reference.THRESHOLD_ENERGY[p].value
    groups = {}
    for band in bands:
        groups.setdefault(band.size, []).append(float(getattr(band, field).mean()))
    return grouped_slope_interval(
        groups, lambda mean: math.log(mean - e_th) if mean > e_th else math.nan, seed=seed
    )


def _location(bands: list[protocols.Band], p: int, field: str, setup: Setup, seed: int):
    """The location statistic of one p and one stage (values, start or early), decided."""
    if setup.rule == "slope":
        fit = _gap_slope(bands, p, field, seed)
        return fit, decide(fit.high < -GAP_EXPONENT, fit.low > -GAP_EXPONENT)
    e_th = reference.THRESHOLD_ENERGY[p].value
    e_0 = reference.GROUND_STATE_ENERGY[p].value
    means = [getattr(b, field).mean() for b in bands]
    fit = power_law_limit([b.size for b in bands], means, seed=seed)
    low, high = e_0 - LIMIT_TOLERANCE, e_th + LIMIT_TOLERANCE
    return fit, decide(low <= fit.low and fit.high <= high, fit.high < low or fit.low > high)


def _location_record(p: int, bands, setup: Setup, seed: int) -> ClaimRecord:
    fit, decision = _location(bands, p, "values", setup, seed)
    e_th = reference.THRESHOLD_ENERGY[p].value
    if setup.rule == "slope":
        statistic = f"slope of log(mean final H/N - ({e_th})) on log N (landscape bootstrap)"
        rule = f"95% interval below -{GAP_EXPONENT}: holds; above: fails; else undecided"
    else:
        statistic = "e_inf of mean(N) = e_inf + a N^(-gamma), bootstrap over landscapes"
        rule = (
            f"95% interval inside [E_0 - {LIMIT_TOLERANCE}, E_th + {LIMIT_TOLERANCE}]: "
            "holds; entirely outside: fails; else undecided"
        )
    controls = []
    for name, field in (("random starting points", "start"), ("10 steps of GD", "early")):
        control, control_decision = _location(bands, p, field, setup, seed)
        controls.append(
            Control(
                name=name,
                statistic=statistic,
                estimate=control.estimate,
                low=control.low,
                high=control.high,
                p_value=control.p_value,
                rule=(
                    "fired if the same rule, on a finite interval, does not decide holds "
                    "(no approach to the threshold)"
                ),
                fired=control_decision != "holds" and math.isfinite(control.low),
            )
        )
    sizes = sorted({b.size for b in bands})
    per = {n: [b for b in bands if b.size == n] for n in sizes}

    def spread_slope(field: str) -> float:
        x = np.log([b.size for b in bands])
        return slope_interval(x, np.log([getattr(b, field).std(ddof=1) for b in bands])).estimate

    return ClaimRecord(
        id=f"sagun2014.spin_glass.p{p}.location",
        claim=f"GD ends in a band approaching the threshold {e_th} as N grows (p = {p})",
        paper=PAPER + ", section 2",
        statistic=statistic,
        estimate=fit.estimate,
        low=fit.low,
        high=fit.high,
        p_value=fit.p_value,
        rule=rule,
        decision=decision,
        controls=controls,
        data={
            "threshold": e_th,
            "ground_state": reference.GROUND_STATE_ENERGY[p].value,
            "seeds": {n: [b.seed for b in per[n]] for n in sizes},
            "final_energy": {n: [b.values.tolist() for b in per[n]] for n in sizes},
            "start_energy_mean": {n: [float(b.start.mean()) for b in per[n]] for n in sizes},
            "early_energy_mean": {n: [float(b.early.mean()) for b in per[n]] for n in sizes},
            "converged_fraction": min(b.converged for b in bands),
            "e_inf_fit": None if setup.rule == "limit" else _limit_summary(bands, seed),
            "narrowing_slope": {f: spread_slope(f) for f in ("values", "start", "early")},
        },
    )


def _limit_summary(bands, seed: int) -> dict[str, float]:
    """``e_inf`` of the finite-size fit, reported (not decided) in the quick profile."""
    sizes = [b.size for b in bands]
    fit = power_law_limit(sizes, [b.values.mean() for b in bands], num_resamples=199, seed=seed)
    return {"estimate": fit.estimate, "low": fit.low, "high": fit.high}


@pytest.mark.parametrize("p", [3, 4])
def test_band_location(
    p, spin_glass, spin_glass_power, setup, seed_offset, record_property, report_dir
):
    record = _location_record(p, spin_glass[p], setup, fresh((2014,), seed_offset)[0])
    assert record.data["converged_fraction"] == 1.0, "a spin-glass descent did not converge"
    power = spin_glass_power[p]
    record.data["power"] = power
    if report_dir is not None:
        _draw_location(p, spin_glass[p], report_dir)
    assert power["landscapes_needed_per_n"] <= power["landscapes_per_n"], (
        f"p = {p}: the design is underpowered: {power}"
    )
    conclude(record_property, record, expected="holds")


# ---------------------------------------------------------------------------------------
# teacher-student


@dataclass(frozen=True, eq=False)
class Networks:
    """Converged runs per width, and the GD-vs-SGD race at the largest width."""

    parameters: dict[int, int]
    runs: dict[int, list[protocols.Convergence]]
    gd_steps: list[int]
    sgd_steps: list[int]
    control_gd_steps: list[int]
    control_steps: list[int]
    capped: int
    teachers: dict[int, tuple[int, ...]]

    def per_teacher(self, width: int) -> list[list[protocols.Convergence]]:
        """The runs at ``width`` grouped by teacher (each teacher's initialisations)."""
        size = len(self.runs[width]) // len(self.teachers[width])
        return [self.runs[width][i : i + size] for i in range(0, len(self.runs[width]), size)]


def _problem(width: int, seed: int):
    count = width * (width + 2) + 1
    return teacher_student(
        input_dim=width, teacher_width=width, num_samples=4 * count, seed=seed
    ), count


def _gd_to_level(problem, seed: int, setup: Setup) -> tuple[TrainResult, float]:
    """GD from the initialisation ``seed`` until ``STEP_LEVEL`` of its initial loss."""
    model = problem.make_model(seed=seed)
    start = gradient_descent(model, problem.loss_fn, problem.data, lr=LR["gd"], max_steps=0)
    level = STEP_LEVEL * start.final_loss
    gd = gradient_descent(
        model,
        problem.loss_fn,
        problem.data,
        lr=LR["gd"],
        max_steps=setup.gd_steps,
        target_loss=level,
    )
    return gd, level


def _race(
    problem, seed: int, gd: TrainResult, level: float, setup: Setup, lr_factor: float = 1.0
) -> tuple[int, int, bool]:
    """Steps GD took and SGD needs (capped at ``sgd_cap`` times GD's) to reach ``level``."""
    cap = int(setup.sgd_cap * gd.num_steps / lr_factor)
    run = sgd(
        problem.make_model(seed=seed),
        problem.loss_fn,
        problem.data,
        lr=LR["sgd"] * lr_factor,
        batch_size=SGD_BATCH,
        max_steps=cap,
        target_loss=level,
        eval_every=10,
        seed=seed,
    )
    reached = protocols.steps_to_reach(run, level)
    capped = reached is None or not gd.reached_target
    return gd.num_steps, run.num_steps if reached is None else reached, capped


@pytest.fixture(scope="module")
def networks(setup, seed_offset) -> Networks:
    """Teacher-student runs shared by claims 3 and 4."""
    init_seeds = fresh(range(10, 10 + setup.inits), seed_offset)
    parameters, runs, problems, teachers = {}, {}, {}, {}
    for width in setup.widths:
        runs[width] = []
        teachers[width] = fresh(
            (1000 * width + t for t in CLAIM_TEACHERS[: setup.teachers]), seed_offset
        )
        for teacher in teachers[width]:
            problem, parameters[width] = _problem(width, teacher)
            problems[width, teacher] = problem
            runs[width] += [
                protocols.train_to_convergence(
                    problem,
                    problem.make_model(seed=s),
                    zero_level=ZERO_LEVEL,
                    grad_tol=GRAD_TOL,
                    max_iter=setup.max_iter,
                )
                for s in init_seeds
            ]
    largest = [problems[k] for k in problems if k[0] == setup.widths[-1]][: setup.race_teachers]
    # GD once per initialisation; the control re-races SGD against the first teacher's
    gd_runs = [(pb, s, *_gd_to_level(pb, s, setup)) for pb in largest for s in init_seeds]
    race = [_race(*run, setup) for run in gd_runs]
    control = [_race(*run, setup, CONTROL_LR_FACTOR) for run in gd_runs[: setup.control_inits]]
    return Networks(
        parameters,
        runs,
        [r[0] for r in race],
        [r[1] for r in race],
        [r[0] for r in control],
        [r[1] for r in control],
        sum(r[2] for r in race + control),
        teachers,
    )


def _median_bands(networks: Networks, field: str, seed: int) -> dict[int, Interval]:
    """Per width, the median over teachers of log10(loss / initial loss) of one stage.

    Each teacher contributes one value, the mean over its initialisations (the
    initialisation seeds are shared by the teachers of a width, so runs are not
    independent; teachers are), and the BCa bootstrap resamples teachers.
    """
    return {
        width: bootstrap_interval(
            [
                np.mean([math.log10(getattr(r, field) / r.initial_loss) for r in group])
                for group in networks.per_teacher(width)
            ],
            np.median,
            seed=seed,
        )
        for width in networks.runs
    }


def test_teacher_student_band(networks, setup, seed_offset, record_property, report_dir):
    seed = fresh((2014,), seed_offset)[0]
    ceiling = math.log10(BAND_CEILING)
    bands = _median_bands(networks, "final_loss", seed)
    worst = max(bands.values(), key=lambda fit: fit.high)
    decision = decide(
        all(fit.high < ceiling for fit in bands.values()),
        any(fit.low > ceiling for fit in bands.values()),
    )
    controls = []
    for name, field in (("10 L-BFGS steps", "early_loss"),):
        control = max(_median_bands(networks, field, seed).values(), key=lambda f: f.low)
        controls.append(
            Control(
                name=name,
                statistic="the same median after 10 L-BFGS iterations, the highest width",
                estimate=control.estimate,
                low=control.low,
                high=control.high,
                p_value=None,
                rule=f"fired if at some width the interval lies above {ceiling}",
                fired=control.low > ceiling,
            )
        )
    all_runs = [r for group in networks.runs.values() for r in group]
    zeros = sum(r.final_loss <= ZERO_LEVEL * r.initial_loss for r in all_runs)
    record = ClaimRecord(
        id="sagun2014.teacher_student.band",
        claim="teacher-student training by L-BFGS ends in a low band (1e3 below the start)",
        paper=PAPER + ", section 3",
        statistic="median over teachers of log10(final / initial loss), the worst width",
        estimate=worst.estimate,
        low=worst.low,
        high=worst.high,
        p_value=None,
        rule=f"BCa 95% interval below {ceiling} at every width: holds; above at some: fails",
        decision=decision,
        controls=controls,
        data={
            "parameters": networks.parameters,
            "median_log10_relative_loss": {w: vars(fit) for w, fit in bands.items()},
            "relative_loss": {w: [r.relative_loss for r in g] for w, g in networks.runs.items()},
            "gradient_norm": {w: [r.gradient_norm for r in g] for w, g in networks.runs.items()},
            "iterations": {w: [r.iterations for r in g] for w, g in networks.runs.items()},
            "spread_log10_relative_loss": {
                w: float(np.std([math.log10(r.relative_loss) for r in g], ddof=1))
                for w, g in networks.runs.items()
            },
            "narrowing": _narrowing(networks),
            "zero_fraction": zeros / len(all_runs),
            "zero_fraction_jeffreys_80": scipy_stats.beta.ppf(
                [0.1, 0.9], zeros + 0.5, len(all_runs) - zeros + 0.5
            ).tolist(),
        },
    )
    if report_dir is not None:
        _draw_teacher_student(networks, report_dir)
    conclude(record_property, record, expected="holds")


def _narrowing(networks: Networks) -> dict:
    """Reported, not decided: the spread slopes of the final, initial and early losses."""
    found = {}
    for stage in ("final_loss", "initial_loss", "early_loss"):
        fit, spreads = _spread_slope(networks, stage)
        found[stage] = {"slope": vars(fit), "spread_per_teacher": spreads}
    return found


def _spread_slope(networks: Networks, field: str) -> tuple[Interval, dict[int, list[float]]]:
    """Slope of log(sd over a teacher's initialisations of log10 loss) on log #parameters."""
    spreads = {
        width: [
            float(np.std([math.log10(getattr(r, field)) for r in group], ddof=1))
            for group in networks.per_teacher(width)
        ]
        for width in networks.runs
    }
    x = [math.log(networks.parameters[w]) for w, group in spreads.items() for _ in group]
    y = [math.log(spread) for group in spreads.values() for spread in group]
    return slope_interval(x, y), spreads


def test_gd_and_sgd_reach_band_in_same_steps(networks, setup, record_property):
    assert networks.capped == 0, f"{networks.capped} runs hit a step cap: the ratio is censored"
    ratios = geometric_mean_interval(np.array(networks.sgd_steps) / np.array(networks.gd_steps))
    control = geometric_mean_interval(
        np.array(networks.control_steps) / np.array(networks.control_gd_steps)
    )
    low, high = STEP_RATIO_BAND
    record = ClaimRecord(
        id="sagun2014.teacher_student.gd_sgd_steps",
        claim="GD and SGD reach the teacher-student band in about the same number of steps",
        paper=PAPER + ", section 3",
        statistic=f"geometric mean of steps(SGD, batch {SGD_BATCH}) / steps(GD) to "
        f"{STEP_LEVEL} x the initial loss, width {setup.widths[-1]}",
        estimate=ratios.estimate,
        low=ratios.low,
        high=ratios.high,
        p_value=ratios.p_value,
        rule=f"95% t-interval of the log ratio inside [{low}, {high}]: holds; outside: fails",
        decision=decide(
            low <= ratios.low and ratios.high <= high, ratios.high < low or ratios.low > high
        ),
        controls=[
            Control(
                name=f"SGD at {CONTROL_LR_FACTOR} x the step",
                statistic="the same ratio",
                estimate=control.estimate,
                low=control.low,
                high=control.high,
                p_value=control.p_value,
                rule=f"fired if the interval lies above {high}",
                fired=control.low > high,
            )
        ],
        data={
            "gd_steps": networks.gd_steps,
            "sgd_steps": networks.sgd_steps,
            "control_gd_steps": networks.control_gd_steps,
            "control_sgd_steps": networks.control_steps,
            "capped_runs": networks.capped,
        },
    )
    conclude(record_property, record, expected="holds")


# ---------------------------------------------------------------------------------------
# figures


def _draw_location(p: int, bands: list[protocols.Band], report_dir) -> None:
    plt = pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    e_th = reference.THRESHOLD_ENERGY[p].value
    sizes = sorted({b.size for b in bands})
    bins = np.linspace(-1.9, 0.6, 126)
    for field, color in (("start", "tab:gray"), ("early", "tab:orange"), ("values", "tab:blue")):
        values = np.concatenate([getattr(b, field) for b in bands if b.size == sizes[-1]])
        axes[0].hist(values, bins=bins, density=True, histtype="step", color=color, label=field)
        gaps = [
            np.mean([getattr(b, field).mean() - e_th for b in bands if b.size == n]) for n in sizes
        ]
        axes[1].loglog(sizes, gaps, "o-", color=color, label=field)
    axes[0].axvline(e_th, color="k", ls="--", lw=1, label="threshold")
    axes[0].axvline(
        reference.GROUND_STATE_ENERGY[p].value, color="k", ls=":", lw=1, label="ground state"
    )
    axes[0].set_xlabel(f"H/N at N = {sizes[-1]} (start, 10 steps, end of GD)")
    axes[1].set_xlabel("N")
    axes[1].set_ylabel("mean H/N - threshold")
    for ax in axes:
        ax.legend(fontsize=8)
        ax.set_title(f"p = {p}")
    save_figure(figure, report_dir, f"sagun2014_location_p{p}")


def _draw_teacher_student(networks: Networks, report_dir) -> None:
    plt = pyplot()
    figure, ax = plt.subplots(figsize=(6, 4))
    for width, group in networks.runs.items():
        ax.hist(
            np.log10([r.relative_loss for r in group]),
            bins=np.linspace(-12, 0, 49),
            histtype="step",
            label=f"m = {width} ({networks.parameters[width]} parameters)",
        )
    ax.axvline(math.log10(BAND_CEILING), color="k", ls="--", lw=1, label="band ceiling")
    ax.axvline(math.log10(ZERO_LEVEL), color="k", ls=":", lw=1, label="zero")
    ax.set_xlabel("log10(final / initial training loss), L-BFGS (at most the iteration budget)")
    ax.legend(fontsize=8)
    save_figure(figure, report_dir, "sagun2014_teacher_student")
