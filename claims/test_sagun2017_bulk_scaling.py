"""sagun2017: growing the model at fixed data grows only the bulk of the Hessian spectrum.

Conjecture:
    Fix the data and widen the network. The outliers of the Hessian's spectrum stay put
    -- the same number, about the same values -- while the bulk at zero grows with the
    number of parameters and stays concentrated at zero.

Paper:
    Sagun, Evci, Güney, Dauphin, Bottou (2017), *Empirical Analysis of the Hessian of
    Over-Parametrized Neural Networks*, arXiv:1706.04454, section 3.2 ("increasing the
    number of parameters merely scales the bulk"; 1k samples, widths 10 to 70), following
    Sagun, Bottou, LeCun (2016), arXiv:1611.07476. The outliers' dependence on the data
    (section 3.1, Table 1; :data:`hesskit.problems.reference.SAGUN2017_OUTLIER_COUNTS`) is
    the negative control.

Setup (quick profile; ``full`` in :data:`SETUPS`):
    ``gaussian_mixture(k=4, input_dim=20, samples_per_cluster=100, separation=10)`` (400
    samples) and ReLU networks ``20-w-w-4`` with softmax cross-entropy for widths
    ``w in {8, 16, 32}`` (276, 676 and 1,860 parameters). Seeds 10-15: seed ``s`` draws the
    data *and* the initialisation, so each seed is an independent replicate and each
    width sees the same six data sets. Full-batch gradient descent (lr 0.05) to a matched
    training loss of 0.01 (at most 20,000 steps; every run must reach it). Dense float64
    Hessians, ``torch.linalg.eigvalsh``. ReLU, not tanh: in the pilot, tanh networks showed
    no gap at all above the bulk, consistent with the outliers coming from the non-zero
    mean of the features (Papyan 2019, arXiv:1901.08244), which a centred tanh layer lacks.
    Outliers are counted by the largest log-gap among the top 21 eigenvalues
    (:func:`claims.spectra.count_outliers`; why not ``hesskit.spectrum.split``'s default
    is in :mod:`claims.spectra`).

Statistics and decision rules (fixed before the run; 95% intervals, alpha = 0.05):
    1. Outlier count: least-squares slope of the count on ``log2(#parameters)`` over the
       18 runs, with its t-interval. Holds if the interval lies inside
       ``[-0.5, +0.5]`` outlier per doubling of the parameters (:data:`COUNT_MARGIN`;
       the sweep spans 2.75 doublings, so this bounds a drift to about one outlier over
       the sweep, the resolution the paper's own counting rules have, Table 1).
    2. Outlier values: per seed, the ratio of the mean of the top ``k - 1 = 3``
       eigenvalues at the widest and at the narrowest width (same data); geometric mean
       with the t-interval of the mean log-ratio (``scipy.stats.ttest_1samp``). Holds if
       the interval lies inside ``[1/2, 2]`` (:data:`VALUE_BAND`, a factor of two either
       way, fixed before the run).
    3. Bulk: the number of near-zero eigenvalues, ``|lambda| <= 1e-3 lambda_1``; slope of
       ``log(count)`` on ``log(#parameters)``. Holds if the interval's lower end is above
       0 (the bulk at zero grows with the parameters; a slope of 1 would be proportional
       growth, reported, not required).
    The claim holds if all three hold.

Negative control (the same statistic where the conjecture predicts the opposite):
    Change the data instead of the model: ``k in {2, 3, 4}`` clusters at the fixed
    width 16, same seeds and protocol (these are models of the cluster sweep of
    ``test_sagun2017_outliers_track_clusters``). The number of parameters barely moves
    (642 to 676, through the output layer), the outliers should: statistic 1's slope on
    ``log2(#parameters)`` must have an interval that excludes 0 (and so leaves the
    margin). k = 6 is left out of the control because the pilot showed that this network
    does not resolve six outliers (counts 5, 1, 2, 1 on the pilot seeds; that is a finding
    of the tracking claim, reported there): a control must be run where the statistic can
    see the change it is meant to detect.

Pilots (before the rules were fixed; never the claim's seeds):
    1. Seeds 0 and 1, data seed 0, training loss 1e-3: counts 4, 4 / 4, 4 / 4, 4 at widths
       8, 16, 32 (k = 4, separation 10); near-zero fractions 0.51, 0.65, 0.79.
    2. This protocol on seeds 0-3 (data and init): counts 4, 1, 8, 4 / 4, 5, 4, 4 / 4, 4,
       4, 5; count slope 0 [-0.93, 0.93] per doubling (outside the margin, from the noisy
       width-8 counts), value ratio per seed 0.95-1.56, near-zero log-slope 1.25 [1.20,
       1.30]; the control at k in {2, 3, 4, 6} did not exclude 0 (k = 6 collapsed), hence
       k in {2, 3, 4} above, and six seeds instead of four for a narrower interval.

Result (quick profile, seeds 10-15, about 25 s on one CPU thread): fails, ``xfail``.
    1. Outlier count -- fails: slope 0.60 [-0.22, 1.43] outliers per doubling, outside
       the +-0.5 margin. Counts per width (seeds 10-15): width 8: 1, 8, 1, 1, 1, 1; width
       16: 3, 4, 3, 1, 3, 4; width 32: 2, 4, 4, 3, 6, 4. The narrowest network puts one
       outlier far above the rest (largest gap 0.8-1.5 after the first), so the largest-
       gap rule counts 1; at widths 16 and 32 the count is 3-4 (k - 1 or k) on 9 of 12 runs.
    2. Outlier values -- holds: widest/narrowest ratio of the top-3 mean 0.78 [0.59, 1.01]
       (per seed 0.54-1.00), inside [1/2, 2]; lambda_1 0.57-2.7 throughout.
    3. Bulk -- holds: the near-zero count grows as #params^1.11 [1.05, 1.17] (fractions
       0.50-0.76 at width 8, 0.63-0.70 at 16, 0.77-0.79 at 32): slightly faster than in
       proportion (the most negative eigenvalue is -1.6% to -5.6% of lambda_1, not the
       paper's ~1e-3 ratio of
       :data:`hesskit.problems.reference.SAGUN2017_NEAR_MINIMUM_EIGENVALUES`: at a
       training loss of 0.01 these networks are not yet near a minimum).
    Control -- NOT detected, ``xfail``: with k in {2, 3, 4} the counts are 2 x 6 / 3, 3,
    6, 3, 3, 3 / 3, 4, 3, 1, 3, 4 and the slope on log2(#params) is 13.5 [-3.6, 30.7]
    (p = 0.11): six seeds of this noisy count do not detect the change of the data at
    alpha 0.05. So the count statistic, as measured here, can neither confirm that the
    outliers stay (claim) nor show that they move (control). The value and bulk
    statistics agree with the conjecture, but carry no negative control of their own in
    this module; the separability sweep of ``test_sagun2017_outliers_track_clusters``
    shows the same top-3 mean moving by about 3x when the data change (separation 10 to
    2), against 0.78x here across a 6.7x change of the parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from claims import spectra as sp
from claims.report import ClaimRecord, record_claim


@dataclass(frozen=True)
class Setup:
    """One profile's pre-registered sizes, seeds and protocol."""

    num_clusters: int
    input_dim: int
    samples_per_cluster: int
    separation: float
    widths: tuple[int, ...]
    control_clusters: tuple[int, ...]
    control_width: int
    seeds: tuple[int, ...]
    lr: float
    target_loss: float
    max_steps: int

    def run(self, num_clusters: int, width: int, seed: int, device: str) -> sp.Run:
        """The cache key of one trained network."""
        return sp.Run(
            num_clusters=num_clusters,
            width=width,
            seed=seed,
            input_dim=self.input_dim,
            samples_per_cluster=self.samples_per_cluster,
            separation=self.separation,
            lr=self.lr,
            target_loss=self.target_loss,
            max_steps=self.max_steps,
            device=device,
        )


SETUPS = {
    "quick": Setup(
        num_clusters=4,
        input_dim=20,
        samples_per_cluster=100,
        separation=10.0,
        widths=(8, 16, 32),
        control_clusters=(2, 3, 4),
        control_width=16,
        seeds=(10, 11, 12, 13, 14, 15),
        lr=0.05,
        target_loss=0.01,
        max_steps=20_000,
    ),
    # the paper's scale: input 100, widths 10-70 (1,150-12,700 parameters), 1,000 samples;
    # dense spectra up to 12,700 x 12,700, meant for a GPU
    "full": Setup(
        num_clusters=5,
        input_dim=100,
        samples_per_cluster=200,
        separation=10.0,
        widths=(10, 30, 50, 70),
        control_clusters=(2, 5, 10, 20),
        control_width=30,
        seeds=tuple(range(10, 20)),
        lr=0.05,
        target_loss=0.01,
        max_steps=100_000,
    ),
}
COUNT_MARGIN = 0.5
"""Equivalence margin on the count's slope, outliers per doubling of the parameters."""
VALUE_BAND = (0.5, 2.0)
"""Band for the widest/narrowest ratio of the mean top-(k-1) eigenvalue."""
XFAIL_REASON = (
    "measured in the quick profile: the outlier-count slope 0.60 [-0.22, 1.43] per doubling "
    "of the parameters leaves the +-0.5 margin (width 8 counts one dominant outlier on 5 of "
    "6 seeds); outlier values (ratio 0.78 [0.59, 1.01]) and bulk growth (log-slope 1.11 "
    "[1.05, 1.17]) hold"
)
"""Why the claim is a strict xfail in the quick profile (see the Result paragraph)."""
XFAIL_CONTROL = (
    "measured in the quick profile: the k sweep {2, 3, 4} moves the mean counts (2, 3.5, "
    "3.0) but the slope on log2(#params), 13.5 [-3.6, 30.7] (p = 0.11), does not exclude 0 "
    "with six seeds of this noisy count"
)
"""Why the control is a strict xfail in the quick profile."""


@dataclass(frozen=True, eq=False)
class Sweep:
    """Spectra of one sweep: ``spectra[i][j]`` is setting ``i``, seed ``j``."""

    labels: list[str]
    spectra: list[list[sp.Spectrum]]

    def flat(self) -> list[sp.Spectrum]:
        return [s for row in self.spectra for s in row]


def _device(profile: str) -> str:
    import torch

    return "cuda" if profile == "full" and torch.cuda.is_available() else "cpu"


@pytest.fixture(scope="module")
def setup(profile) -> Setup:
    return SETUPS[profile]


@pytest.fixture(scope="module")
def width_sweep(setup, profile) -> Sweep:
    """Every width x seed at the fixed data (k = setup.num_clusters)."""
    device = _device(profile)
    spectra = [
        [sp.gaussian_spectrum(setup.run(setup.num_clusters, w, s, device)) for s in setup.seeds]
        for w in setup.widths
    ]
    return Sweep([f"width {w}" for w in setup.widths], spectra)


@pytest.fixture(scope="module")
def cluster_sweep(setup, profile) -> Sweep:
    """Every k x seed at the fixed width (the negative control)."""
    device = _device(profile)
    spectra = [
        [sp.gaussian_spectrum(setup.run(k, setup.control_width, s, device)) for s in setup.seeds]
        for k in setup.control_clusters
    ]
    return Sweep([f"k = {k}" for k in setup.control_clusters], spectra)


def _count_slope(sweep: Sweep):
    runs = sweep.flat()
    return sp.slope([np.log2(s.num_params) for s in runs], [s.count for s in runs])


def test_bulk_scales_outliers_stay(
    setup, width_sweep, cluster_sweep, profile, record_property, report_dir, request
):
    quick = profile == "quick"
    request.applymarker(pytest.mark.xfail(quick, reason=XFAIL_REASON, strict=True))
    runs = width_sweep.flat()
    assert all(s.reached_target for s in runs), "a run missed the matched training loss"
    k = setup.num_clusters
    count = _count_slope(width_sweep)
    count_holds = count.low >= -COUNT_MARGIN and count.high <= COUNT_MARGIN
    narrow, wide = width_sweep.spectra[0], width_sweep.spectra[-1]
    ratios = [w.top_mean(k - 1) / n.top_mean(k - 1) for n, w in zip(narrow, wide, strict=True)]
    values = sp.geometric_mean_interval(ratios)
    values_hold = VALUE_BAND[0] <= values.low and values.high <= VALUE_BAND[1]
    bulk = sp.slope([np.log(s.num_params) for s in runs], [np.log(s.near_zero) for s in runs])
    bulk_holds = bulk.low > 0
    holds = count_holds and values_hold and bulk_holds
    control = _count_slope(cluster_sweep)
    control_detects = control.low > 0 or control.high < 0
    record_claim(
        record_property,
        ClaimRecord(
            claim="sagun2017 bulk scales with parameters, outliers stay",
            statistic="slope of the outlier count on log2(#params) over the width sweep",
            estimate=count.estimate,
            interval=count.bounds,
            p_value=None,
            rule=(
                f"count slope 95% CI inside [-{COUNT_MARGIN}, {COUNT_MARGIN}]; AND top-{k - 1} "
                f"mean widest/narrowest geometric-mean ratio 95% CI inside {list(VALUE_BAND)}; "
                "AND slope of log(#near-zero eigenvalues) on log(#params) 95% CI > 0"
            ),
            decision="holds" if holds else "fails",
            control=(
                f"k sweep {list(setup.control_clusters)} at width {setup.control_width}: count "
                f"slope on log2(#params) {sp.fmt(control)} "
                f"({'detected: excludes 0' if control_detects else 'NOT detected'})"
            ),
            details={
                "seeds": list(setup.seeds),
                "widths": list(setup.widths),
                "num_clusters": k,
                "count_slope_per_doubling": count.estimate,
                "count_slope_interval": count.bounds,
                "top_mean_ratio_wide_over_narrow": values.estimate,
                "top_mean_ratio_interval": values.bounds,
                "top_mean_ratio_per_seed": ratios,
                "near_zero_log_slope": bulk.estimate,
                "near_zero_log_slope_interval": bulk.bounds,
                "decisions": {
                    "count": count_holds,
                    "values": values_hold,
                    "bulk": bulk_holds,
                },
                "per_width": {
                    label: [s.summary() for s in row]
                    for label, row in zip(width_sweep.labels, width_sweep.spectra, strict=True)
                },
                "control_count_slope": control.estimate,
                "control_count_slope_interval": control.bounds,
                "control_p_value": control.p_value,
                "control_counts": {
                    label: [s.count for s in row]
                    for label, row in zip(cluster_sweep.labels, cluster_sweep.spectra, strict=True)
                },
            },
        ),
    )
    if report_dir is not None:
        _draw(setup, width_sweep, cluster_sweep, report_dir)
    assert count_holds, f"count slope {sp.fmt(count)} not inside +-{COUNT_MARGIN}"
    assert values_hold, f"outlier value ratio {sp.fmt(values)} not inside {VALUE_BAND}"
    assert bulk_holds, f"near-zero log-slope {sp.fmt(bulk)} not above 0"


def test_control_more_clusters_moves_outliers(
    setup, cluster_sweep, profile, record_property, request
):
    quick = profile == "quick"
    request.applymarker(pytest.mark.xfail(quick, reason=XFAIL_CONTROL, strict=True))
    runs = cluster_sweep.flat()
    assert all(s.reached_target for s in runs), "a run missed the matched training loss"
    control = _count_slope(cluster_sweep)
    detects = control.low > 0 or control.high < 0
    record_claim(
        record_property,
        ClaimRecord(
            claim="sagun2017 bulk scales with parameters -- control: more clusters",
            statistic="slope of the outlier count on log2(#params) over the k sweep",
            estimate=control.estimate,
            interval=control.bounds,
            p_value=None,
            rule="control detects the moved outliers if the 95% CI excludes 0",
            decision="holds" if detects else "fails",
            control=f"this is the control (p = {control.p_value:.2g})",
            details={
                "clusters": list(setup.control_clusters),
                "width": setup.control_width,
                "num_params": [row[0].num_params for row in cluster_sweep.spectra],
                "counts": [[s.count for s in row] for row in cluster_sweep.spectra],
                "top_mean": [[s.top_mean(2) for s in row] for row in cluster_sweep.spectra],
            },
        ),
    )
    assert detects, f"control: count slope {sp.fmt(control)} does not exclude 0"


def _draw(setup: Setup, width_sweep: Sweep, cluster_sweep: Sweep, report_dir) -> None:
    sp.draw_spectra(
        list(zip(width_sweep.labels, width_sweep.spectra, strict=True)),
        report_dir,
        "sagun2017_bulk_scaling_width_spectra",
        f"sagun2017 bulk scaling: Hessian spectra per width (k = {setup.num_clusters}; top row "
        f"seed {setup.seeds[0]}, bottom row pooled over seeds)",
    )
    sp.draw_spectra(
        list(zip(cluster_sweep.labels, cluster_sweep.spectra, strict=True)),
        report_dir,
        "sagun2017_bulk_scaling_control_cluster_spectra",
        f"control: Hessian spectra per k at width {setup.control_width}",
    )
    sp.draw_counts(
        [
            (
                "width sweep (claim)",
                [np.log2(s.num_params) for s in width_sweep.flat()],
                [s.count for s in width_sweep.flat()],
            ),
            (
                "k sweep (control)",
                [np.log2(s.num_params) for s in cluster_sweep.flat()],
                [s.count for s in cluster_sweep.flat()],
            ),
        ],
        report_dir,
        "sagun2017_bulk_scaling_counts",
        "outlier count against log2(#parameters)",
        "log2(#parameters)",
    )
