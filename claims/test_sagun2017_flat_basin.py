"""sagun2017: large- and small-batch solutions lie in one flat, connected basin.

Conjecture:
    Training with large batches reaches a solution; continuing from it with small
    batches, the loss first climbs and then falls, as if the small-batch run crossed into
    another basin. Yet the straight segment between the two end points has no barrier,
    and the Hessian at both ends is highly singular (most eigenvalues near zero): the two
    solutions sit in one flat, connected region.

Paper:
    Sagun, Evci, Güney, Dauphin, Bottou (2017), *Empirical Analysis of the Hessian of
    Over-Parametrized Neural Networks*, arXiv:1706.04454, section 4.1 (large batch, then
    small batch; the interpolation between the two solutions). The singular Hessian is
    the bulk at zero of section 3, whose size "indicates how over-parametrized the
    system is" (Sagun, Bottou, LeCun 2016, arXiv:1611.07476).

Setup (quick profile; ``full`` in :data:`SETUPS`):
    ``gaussian_mixture(k=4, input_dim=20, samples_per_cluster=50, separation=3)`` (data
    seed 0, 200 samples), the 30-30 hidden widths of the paper's 100-30-30-k tanh network
    with softmax cross-entropy: 1,684 parameters, above the ``n (k - 1) = 600`` rank bound
    of the Gauss-Newton part. For each of 8 initialisation seeds: full-batch gradient
    descent (lr 0.5) to a training loss of 0.05 (the large-batch end point ``theta_L``),
    then SGD with batch 8 at the same step size for 2,000 steps from ``theta_L`` (the
    small-batch end point ``theta_S``). The loss along the segment is evaluated at 21
    evenly spaced points (:func:`hesskit.landscape.interpolate`); Hessians are dense, in
    float64.

Statistics and decision rules (fixed before the run; 95% intervals, alpha = 0.05):
    1. No barrier. ``b = B / L(theta_L)``, the barrier of the segment ``theta_L ->
       theta_S`` (the largest excess of the loss over the chord between the end points)
       relative to the large-batch loss. Holds if the upper end of the BCa bootstrap
       interval of the mean of ``b`` over seeds is below ``tau = 0.1`` (the segment never
       rises by more than a tenth of the large-batch loss above the chord; the pilot in
       ``shared/claims.md`` measured 0.000 here against 0.224 in absolute loss for
       independent runs). Setup check, also asserted: on every seed SGD climbs above
       ``L(theta_L)`` and ends below it (the paper's climb-then-fall).
    2. Singular at both ends. ``f = min(f(theta_L), f(theta_S))`` with ``f`` the
       fraction of Hessian eigenvalues with ``|lambda| < 1e-3 * max |lambda|`` (the
       relative floor of :func:`hesskit.spectrum.split`; the paper's negative
       eigenvalues are about 1e-3 of its outliers). Holds if the lower end of the
       bootstrap interval of the mean of ``f`` exceeds 0.5 ("most eigenvalues").

Negative controls (the same statistic where the conjecture predicts the opposite):
    1. Independently initialised solutions: the pairs ``(theta_L of seed r, theta_S of
       seed r + 1)`` -- the same training, different initialisations, each solution used
       once -- and, second, ``theta_L`` with a copy whose hidden units are randomly
       permuted (the same function elsewhere in parameter space). The statistic must
       detect their barriers: the lower end of each interval of the mean of ``b`` above
       ``tau``.
    2. An under-parametrised network (hidden 4-4, 124 parameters < 600) trained by the
       same protocol: the upper end of the interval of the mean of ``f`` must be below 0.5.

Pilot (before the rules were fixed, 3 seeds, hidden 20-20 and 30-30): barrier 0 for every
    large/small pair, 0.19-0.48 (absolute) for independent pairs; near-zero fractions
    0.28-0.43 at 1e-3 and 0.75-0.87 at 1e-2. The floor 1e-3 and the level 0.5 had been
    chosen before the pilot and were kept; the pilot fixed only the step size, target loss
    and SGD budget (climb then fall on every seed).

Result (quick profile, 8 seeds, about 30 s on one CPU thread):
    No barrier -- holds. The relative barrier is exactly 0 on all 8 seeds (mean 0, interval
    [0, 0]): the loss along every segment lies below the chord. SGD from ``theta_L``
    (``L = 0.049``) climbs by 7.7 [6.0, 9.9] times ``L(theta_L)`` (peaks 0.26-0.68) and ends
    at 0.0003 (0.5-0.6% of ``L(theta_L)``), 4.5-5.2 away in parameter space. Controls
    detected: independent initialisations 5.33 [4.57, 5.80] (absolute 0.18-0.30, cf. the
    pilot's 0.224), permuted copies 7.66 [6.04, 9.20], all far above tau = 0.1.
    Singular at both ends -- fails as pre-registered, marked ``xfail`` in the quick
    profile: 0.397 [0.391, 0.403] of the eigenvalues lie below 1e-3 of the largest at the
    worse end (0.38-0.44 at either end), not a majority. The spectrum is one broad bulk
    centred about 10^-2.5 of the top (0.80-0.87 of it lies below 1e-2), not a spike at
    zero: the Gauss-Newton part has at least 1,084 exact zeros (rank <= 600), but the
    residual term of cross-entropy at these losses spreads them to 1e-5..1e-2 of the top.
    The control separates cleanly (under-parametrised 0.119 [0.092, 0.165]), so the
    statistic discriminates; the shortfall is the level the conjecture asks for, at this
    floor, on this problem.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from claims import trajectories as tr
from claims.report import ClaimRecord, record_claim
from claims.stats import save_figure
from hesskit.params import flatten_parameters
from hesskit.problems import gaussian_mixture


@dataclass(frozen=True)
class Setup:
    """One profile's pre-registered sizes, seeds and training protocol."""

    num_clusters: int
    input_dim: int
    samples_per_cluster: int
    separation: float
    hidden: tuple[int, ...]
    narrow_hidden: tuple[int, ...]
    data_seed: int
    seeds: tuple[int, ...]
    lr: float
    target_loss: float
    max_large_steps: int
    batch_size: int
    small_steps: int
    eval_every: int
    path_points: int


SETUPS = {
    "quick": Setup(
        num_clusters=4,
        input_dim=20,
        samples_per_cluster=50,
        separation=3.0,
        hidden=(30, 30),
        narrow_hidden=(4, 4),
        data_seed=0,
        seeds=tuple(range(8)),
        lr=0.5,
        target_loss=0.05,
        max_large_steps=5000,
        batch_size=8,
        small_steps=2000,
        eval_every=10,
        path_points=21,
    ),
    # the paper's 100-30-30-k network on 1,000 samples: 4,084 parameters (dense on a GPU)
    "full": Setup(
        num_clusters=4,
        input_dim=100,
        samples_per_cluster=250,
        separation=3.0,
        hidden=(30, 30),
        narrow_hidden=(4, 4),
        data_seed=0,
        seeds=tuple(range(20)),
        lr=0.5,
        target_loss=0.05,
        max_large_steps=20000,
        batch_size=16,
        small_steps=10000,
        eval_every=20,
        path_points=41,
    ),
}
BARRIER_THRESHOLD = 0.1
"""tau: the largest relative barrier ``B / L(theta_L)`` that counts as no barrier."""
NEAR_ZERO_EPS = 1e-3
"""An eigenvalue is near zero when ``|lambda| < NEAR_ZERO_EPS * max |lambda|``."""
SINGULAR_LEVEL = 0.5
"""The fraction of near-zero eigenvalues above which a Hessian counts as highly singular."""
SENSITIVITY_EPS = (1e-4, 1e-3, 1e-2)
"""Floors at which the near-zero fraction is also reported (not part of the decision)."""
PERMUTATION_SEED = 12345
SINGULAR_XFAIL = (
    "measured in the quick profile: only 0.397 [0.391, 0.403] of the eigenvalues lie below "
    "1e-3 of the largest at the worse end (0.82-0.87 below 1e-2), short of the pre-registered "
    "majority; the under-parametrised control has 0.119 [0.092, 0.165]"
)


@dataclass(frozen=True, eq=False)
class Experiment:
    """Everything both claims of this module measure, for one profile."""

    setup: Setup
    switches: list[tr.BatchSwitch]
    claim_paths: list
    independent_paths: list
    permuted_paths: list
    spectra: list[tuple[torch.Tensor, torch.Tensor]]
    narrow_spectra: list[tuple[torch.Tensor, torch.Tensor]]
    num_parameters: int
    narrow_parameters: int
    num_samples: int


@pytest.fixture(scope="module")
def experiment(profile) -> Experiment:
    """Train every seed once; the barrier and the singularity claims share the runs."""
    setup = SETUPS[profile]
    device = "cuda" if profile == "full" and torch.cuda.is_available() else "cpu"
    problem = gaussian_mixture(
        setup.num_clusters,
        input_dim=setup.input_dim,
        samples_per_cluster=setup.samples_per_cluster,
        separation=setup.separation,
        hidden=setup.hidden,
        seed=setup.data_seed,
    ).to(device=device)
    narrow = gaussian_mixture(
        setup.num_clusters,
        input_dim=setup.input_dim,
        samples_per_cluster=setup.samples_per_cluster,
        separation=setup.separation,
        hidden=setup.narrow_hidden,
        seed=setup.data_seed,
    ).to(device=device)
    protocol = {
        "lr": setup.lr,
        "target_loss": setup.target_loss,
        "max_large_steps": setup.max_large_steps,
        "batch_size": setup.batch_size,
        "small_steps": setup.small_steps,
        "eval_every": setup.eval_every,
    }
    switches, spectra, narrow_spectra = [], [], []
    for seed in setup.seeds:
        switch = tr.large_then_small_batch(
            problem, problem.make_model(seed=seed), seed=seed, **protocol
        )
        switches.append(switch)
        spectra.append(
            (
                tr.hessian_spectrum(problem, switch.large.model),
                tr.hessian_spectrum(problem, switch.small.model),
            )
        )
        thin = tr.large_then_small_batch(
            narrow, narrow.make_model(seed=seed), seed=seed, **protocol
        )
        narrow_spectra.append(
            (
                tr.hessian_spectrum(narrow, thin.large.model),
                tr.hessian_spectrum(narrow, thin.small.model),
            )
        )
    model = switches[0].large.model
    points = setup.path_points
    claim_paths = [
        tr.segment(problem, model, s.theta_large, s.theta_small, points) for s in switches
    ]
    shifted = switches[1:] + switches[:1]
    independent_paths = [
        tr.segment(problem, model, s.theta_large, t.theta_small, points)
        for s, t in zip(switches, shifted, strict=True)
    ]
    permuted_paths = []
    for seed, s in zip(setup.seeds, switches, strict=True):
        twin = tr.permuted_copy(s.large.model, seed=PERMUTATION_SEED + seed)
        theta_twin = flatten_parameters(twin)
        permuted_paths.append(tr.segment(problem, model, s.theta_large, theta_twin, points))
    return Experiment(
        setup=setup,
        switches=switches,
        claim_paths=claim_paths,
        independent_paths=independent_paths,
        permuted_paths=permuted_paths,
        spectra=spectra,
        narrow_spectra=narrow_spectra,
        num_parameters=int(switches[0].theta_large.numel()),
        narrow_parameters=sum(p.numel() for p in narrow.make_model().parameters()),
        num_samples=problem.num_samples,
    )


def _relative_barriers(experiment: Experiment, paths) -> np.ndarray:
    return np.array(
        [path.barrier / s.loss_large for path, s in zip(paths, experiment.switches, strict=True)]
    )


def test_no_barrier_between_large_and_small_batch_solutions(
    experiment, record_property, report_dir
):
    setup, switches = experiment.setup, experiment.switches
    claim = _relative_barriers(experiment, experiment.claim_paths)
    independent = _relative_barriers(experiment, experiment.independent_paths)
    permuted = _relative_barriers(experiment, experiment.permuted_paths)
    claim_ci = tr.mean_interval(claim)
    independent_ci = tr.mean_interval(independent)
    permuted_ci = tr.mean_interval(permuted)
    climbs = np.array([s.climb for s in switches])
    falls = np.array([s.fall for s in switches])
    climb_ci = tr.mean_interval(climbs)
    holds = claim_ci.high < BARRIER_THRESHOLD
    setup_reproduced = bool(np.all(climbs > 0) and np.all(falls < 1))
    detects_independent = independent_ci.low > BARRIER_THRESHOLD
    detects_permuted = permuted_ci.low > BARRIER_THRESHOLD
    record_claim(
        record_property,
        ClaimRecord(
            claim="sagun2017 flat basin: no barrier between large- and small-batch solutions",
            statistic="mean over seeds of barrier(theta_L -> theta_S) / L(theta_L)",
            estimate=claim_ci.estimate,
            interval=claim_ci.bounds,
            p_value=None,
            rule=f"95% bootstrap upper bound < tau = {BARRIER_THRESHOLD}; every seed climbs "
            "above L(theta_L) and ends below it",
            decision="holds" if holds and setup_reproduced else "fails",
            control=(
                f"independent inits: {independent_ci.estimate:.3g} "
                f"[{independent_ci.low:.3g}, {independent_ci.high:.3g}] "
                f"({'detected' if detects_independent else 'NOT detected'}); permuted copy: "
                f"{permuted_ci.estimate:.3g} [{permuted_ci.low:.3g}, {permuted_ci.high:.3g}] "
                f"({'detected' if detects_permuted else 'NOT detected'})"
            ),
            details={
                "seeds": list(setup.seeds),
                "num_parameters": experiment.num_parameters,
                "num_samples": experiment.num_samples,
                "relative_barrier": claim.tolist(),
                "absolute_barrier": [p.barrier for p in experiment.claim_paths],
                "loss_large": [s.loss_large for s in switches],
                "loss_small": [s.small.final_loss for s in switches],
                "large_batch_steps": [s.large.num_steps for s in switches],
                "max_relative_climb": climbs.tolist(),
                "mean_relative_climb": climb_ci.estimate,
                "mean_relative_climb_interval": climb_ci.bounds,
                "final_over_start": falls.tolist(),
                "distance": [float((s.theta_large - s.theta_small).norm()) for s in switches],
                "control_independent": independent.tolist(),
                "control_independent_absolute": [p.barrier for p in experiment.independent_paths],
                "control_permuted": permuted.tolist(),
            },
        ),
    )
    if report_dir is not None:
        _draw_paths(experiment, report_dir)
        _draw_climb(experiment, report_dir)
    assert setup_reproduced, f"SGD did not climb then fall: climbs {climbs}, final/start {falls}"
    assert detects_independent, f"control missed the barrier of independent inits: {independent}"
    assert detects_permuted, f"control missed the barrier of permuted copies: {permuted}"
    assert holds, f"barrier upper bound {claim_ci.high:.3g} >= {BARRIER_THRESHOLD}: {claim}"


def test_hessian_singular_at_both_ends(experiment, record_property, report_dir, request, profile):
    request.applymarker(pytest.mark.xfail(profile == "quick", reason=SINGULAR_XFAIL, strict=True))
    fractions = np.array(
        [
            min(tr.near_zero_fraction(ev, eps=NEAR_ZERO_EPS) for ev in pair)
            for pair in experiment.spectra
        ]
    )
    narrow = np.array(
        [
            min(tr.near_zero_fraction(ev, eps=NEAR_ZERO_EPS) for ev in pair)
            for pair in experiment.narrow_spectra
        ]
    )
    claim_ci = tr.mean_interval(fractions)
    narrow_ci = tr.mean_interval(narrow)
    holds = claim_ci.low > SINGULAR_LEVEL
    control_detected = narrow_ci.high < SINGULAR_LEVEL
    sensitivity = {
        f"{eps:g}": {
            "large_batch": [tr.near_zero_fraction(a, eps=eps) for a, _ in experiment.spectra],
            "small_batch": [tr.near_zero_fraction(b, eps=eps) for _, b in experiment.spectra],
            "narrow_min_of_ends": [
                min(tr.near_zero_fraction(ev, eps=eps) for ev in pair)
                for pair in experiment.narrow_spectra
            ],
        }
        for eps in SENSITIVITY_EPS
    }
    record_claim(
        record_property,
        ClaimRecord(
            claim="sagun2017 flat basin: Hessian highly singular at both ends",
            statistic=f"mean over seeds of min over the two ends of the fraction of "
            f"|lambda| < {NEAR_ZERO_EPS:g} max|lambda|",
            estimate=claim_ci.estimate,
            interval=claim_ci.bounds,
            p_value=None,
            rule=f"95% bootstrap lower bound > {SINGULAR_LEVEL}",
            decision="holds" if holds else "fails",
            control=(
                f"under-parametrised net ({experiment.narrow_parameters} parameters): "
                f"{narrow_ci.estimate:.3g} [{narrow_ci.low:.3g}, {narrow_ci.high:.3g}] "
                f"({'below' if control_detected else 'NOT below'} {SINGULAR_LEVEL})"
            ),
            details={
                "seeds": list(experiment.setup.seeds),
                "num_parameters": experiment.num_parameters,
                "gauss_newton_rank_bound": experiment.num_samples
                * (experiment.setup.num_clusters - 1),
                "min_fraction_per_seed": fractions.tolist(),
                "control_min_fraction_per_seed": narrow.tolist(),
                "fraction_by_eps": sensitivity,
                "lambda_max": [[float(ev.abs().max()) for ev in p] for p in experiment.spectra],
                "lambda_min": [[float(ev.min()) for ev in p] for p in experiment.spectra],
            },
        ),
    )
    if report_dir is not None:
        _draw_spectra(experiment, report_dir)
    assert control_detected, f"under-parametrised control not below the level: {narrow}"
    assert holds, (
        f"near-zero fraction lower bound {claim_ci.low:.3g} <= {SINGULAR_LEVEL}: {fractions}"
    )


# ---------------------------------------------------------------------------------------
# figures


def _draw_paths(experiment: Experiment, report_dir) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(6, 4))
    groups = (
        (experiment.claim_paths, "tab:blue", "large -> small batch (claim)"),
        (experiment.independent_paths, "tab:red", "independent inits (control)"),
        (experiment.permuted_paths, "tab:orange", "permuted copy (control)"),
    )
    for paths, color, label in groups:
        for i, (path, s) in enumerate(zip(paths, experiment.switches, strict=True)):
            excess = (path.excess / s.loss_large).cpu().numpy()
            ax.plot(
                path.t.cpu().numpy(),
                excess,
                color=color,
                alpha=0.6,
                label=label if i == 0 else None,
            )
    ax.axhline(BARRIER_THRESHOLD, color="k", ls="--", lw=1, label="tau")
    ax.set_yscale("symlog", linthresh=1e-2)
    ax.set_xlabel("t along the segment")
    ax.set_ylabel("(loss - chord) / L(theta_L)")
    ax.set_title("sagun2017: loss along the segment")
    ax.legend(fontsize=8)
    save_figure(figure, report_dir, "sagun2017_segment")


def _draw_climb(experiment: Experiment, report_dir) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(6, 4))
    for s in experiment.switches:
        large_steps = np.array(s.large.steps)
        ax.plot(large_steps, s.large.losses, color="tab:gray", alpha=0.6)
        ax.plot(
            large_steps[-1] + np.array(s.small.steps), s.small.losses, color="tab:blue", alpha=0.6
        )
    ax.axhline(experiment.setup.target_loss, color="k", ls="--", lw=1, label="L(theta_L)")
    ax.set_yscale("log")
    ax.set_xscale("symlog", linthresh=100)
    ax.set_xlim(left=0)
    ax.set_xlabel("step (full-batch GD in grey, then SGD in blue)")
    ax.set_ylabel("training loss")
    ax.set_title("sagun2017: SGD from the large-batch solution climbs, then falls")
    ax.legend(fontsize=8)
    save_figure(figure, report_dir, "sagun2017_sgd_climb")


def _draw_spectra(experiment: Experiment, report_dir) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def relative_log(spectra, which):
        values = [pair[which].abs().cpu().numpy() for pair in spectra]
        return np.concatenate([np.log10(np.maximum(v / v.max(), 1e-18)) for v in values])

    figure, ax = plt.subplots(figsize=(6, 4))
    bins = np.linspace(-18, 0, 73)
    for spectra, which, color, label in (
        (experiment.spectra, 0, "tab:gray", "large-batch end"),
        (experiment.spectra, 1, "tab:blue", "small-batch end"),
        (experiment.narrow_spectra, 1, "tab:red", "under-parametrised (control)"),
    ):
        ax.hist(
            relative_log(spectra, which),
            bins=bins,
            density=True,
            histtype="step",
            color=color,
            label=label,
        )
    ax.axvline(np.log10(NEAR_ZERO_EPS), color="k", ls="--", lw=1, label="near-zero floor")
    ax.set_xlabel("log10 |lambda| / max |lambda|")
    ax.set_ylabel("density (pooled over seeds)")
    ax.set_title("sagun2017: Hessian spectra at the two ends")
    ax.legend(fontsize=8)
    save_figure(figure, report_dir, "sagun2017_spectra")
