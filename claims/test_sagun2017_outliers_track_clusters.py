"""sagun2017: the number of Hessian outliers tracks the number of clusters in the data.

Conjecture:
    Fix the model and vary the number ``k`` of clusters (= classes) of the data: the
    number of outliers of the Hessian's spectrum follows ``k``. Making the data less
    separable changes the outliers (they grow), not the bulk.

Paper:
    Sagun, Evci, Güney, Dauphin, Bottou (2017), *Empirical Analysis of the Hessian of
    Over-Parametrized Neural Networks*, arXiv:1706.04454, section 3.1 and Table 1 (a
    100-30-30-k network on k Gaussian clusters, k in {2, 5, 10, 20, 50}; three counting
    rules that disagree, 4, 21 and 21 outliers for k = 20:
    :data:`hesskit.problems.reference.SAGUN2017_OUTLIER_COUNTS`); separability: Sagun,
    Bottou, LeCun (2016), arXiv:1611.07476 (two blobs of growing spread, larger top
    eigenvalues).

k or k - 1:
    With softmax cross-entropy the Hessian of the loss in the logits,
    ``diag(p) - p p^T``, has rank ``k - 1`` (the all-ones direction is null), so the
    output-bias block of the Hessian has rank at most ``k - 1``, and when the features
    share one large mean vector (ReLU features do) the leading ``Kronecker`` term
    ``mean(diag(p) - p p^T) (x) mu mu^T`` of the Gauss-Newton part gives ``k - 1``
    outliers. The class-conditional means of the logit gradients (Papyan 2019,
    arXiv:1901.08244) add up to ``k`` such directions, since they are not tied by the
    zero-sum constraint; which one a spectrum shows depends on how far the class means
    of the features stand out from their shared mean. We therefore expect **k - 1 or
    k**, the "within one of k" that the paper's own Table 1 supports, and the decision
    rests on the slope of the count against ``k - 1`` (the same slope as against ``k``);
    how often each occurs is reported. The pilot saw ``k`` on well separated clusters
    (separation 10-20) and ``k - 1`` on the less separated ones (separation 1.5-5).

Setup (quick profile; ``full`` in :data:`SETUPS`):
    ``gaussian_mixture(k, input_dim=20, samples_per_cluster=100, separation=10)`` for
    ``k in {2, 3, 4, 6}`` and a fixed ReLU network ``20-16-16-k`` (softmax
    cross-entropy, 642-710 parameters). Seeds 10-15: seed ``s`` draws the data and the
    initialisation. Full-batch gradient descent (lr 0.05) to a
    matched training loss of 0.01 (at most 20,000 steps; every run must reach it). Dense
    float64 Hessians, ``torch.linalg.eigvalsh``; the Gauss-Newton spectrum of the same
    models is reported too. Outliers are counted by the largest log-gap among the top 21
    eigenvalues (:func:`claims.spectra.count_outliers`; why not ``split``'s default: see
    :mod:`claims.spectra`). ReLU as in :mod:`claims.test_sagun2017_bulk_scaling` (tanh
    showed no gap in the pilot).

Statistics and decision rules (fixed before the run; 95% intervals, alpha = 0.05):
    1. Tracking: least-squares slope of the count on ``k - 1`` over all runs with its
       t-interval. Holds if the interval contains 1 and excludes 0.
    2. Separability (k = 4, width 16, separations {2, 3, 5, 10}, same seeds): (a) slope
       of ``log`` of the mean of the top ``k - 1`` eigenvalues on ``log(separation)``;
       holds if the interval lies below 0 (less separable, larger outliers; the
       ``scipy.stats.linregress`` t-test). (b) The bulk: the fraction of near-zero
       eigenvalues ``|lambda| <= 1e-3 lambda_1``; its change across the sweep (slope on
       ``log(separation)`` times ``log(10 / 2)``) must have its interval inside
       ``+-0.1`` (:data:`BULK_MARGIN`; the pilot's width sweep moved it by 0.29). Holds if
       (a) and (b) hold.
    Digits (exploratory, no decision): the same count on scikit-learn's digits restricted
    to the classes {0, 1}, {0, 1, 2}, {0, 1, 2, 3}, {0, ..., 5} (all about 180 samples per
    class, standardized), network ``64-16-16-k``, seeds 10 and 11; the pilot in
    ``shared/claims.md`` found no clean gap there, so only the numbers are reported.

Negative controls (the same statistic where the conjecture predicts no tracking):
    1. Width sweep at fixed k = 4 (widths 8, 16, 32; the models of the bulk-scaling
       claim): the count regressed on ``log2(width)`` must not fire the tracking rule.
    2. Random labels: the labels of the k in {2, 3, 4} mixtures randomly permuted (class
       sizes kept), trained by the same protocol to the same loss (k = 6 is left out: the
       network cannot memorise 600 random labels to that loss in the step budget). The
       count regressed on ``k - 1`` must not fire the tracking rule.
    3. For the separability rule (b): the same bulk statistic across the width sweep must
       leave the margin (its interval lies above +0.1), so it can see a bulk that moves.

Pilot (this protocol on seeds 0-3, before the final run; never the claim's seeds):
    counts 2, 2, 2, 2 / 3, 3, 4, 3 / 4, 5, 4, 4 / 5, 1, 2, 1 for k = 2, 3, 4, 6: tracking
    up to k = 4, then a collapse at k = 6 (one or two outliers far above a spread of
    smaller ones: the largest gap falls after the first); slope 0.02 [-0.46, 0.51].
    Random labels 3.25 [1.55, 4.95] (no gap: counts 1-12), width control 0 [-1.28,
    1.28]. Separability: outlier slope -0.76 [-1.07, -0.44], bulk change -0.046 [-0.136,
    0.044] (just outside the margin). The rules were kept; the number of seeds went from 4
    to 6 for narrower intervals within the time budget.

Result (quick profile, seeds 10-15, about 90 s on one CPU thread):
    1. Tracking -- holds by the pre-registered rule, weakly: slope 0.54 [0.03, 1.06]
       (p = 0.04). Counts for k = 2, 3, 4, 6: 2 x 6 / 3, 3, 6, 3, 3, 3 / 3, 4, 3, 1, 3, 4
       / 10, 6, 1, 5, 3, 2. Up to k = 4 the count is k or k - 1 on 16 of 18 runs (k = 2:
       always 2 = k; k = 3: 3 = k with one 6 = k(k-1), the next level of Papyan's
       hierarchy; k = 4: 3 or 4 on five of six); at k = 6 this 16-16 network resolves no clean
       gap (log-gaps 0.44-0.70, counts 1-10), which pulls the slope to half. Overall 58%
       of counts equal k, 17% equal k - 1 (75% in {k - 1, k}). The Gauss-Newton spectra
       of the same models give 0.57 [-0.20, 1.33] (does not exclude 0), and ``split``'s
       default counts 0 for every k >= 4. Both controls below have point estimates near
       1 and do not fire only because their intervals include 0: the rule separates the
       sweep from the controls only by the interval's lower end (0.03), so read this as
       tracking for k <= 4, not as evidence up to the paper's k = 50.
    2. Separability -- fails, ``xfail``: the outliers grow as the clusters move together
       (slope of log top-3 mean on log separation -0.80 [-1.06, -0.55], p = 2e-6; top-3
       mean 0.57 at separation 10, 1.86 at 2, 3.2x), but the bulk statistic's change
       across the sweep, -0.049 [-0.120, 0.022], is not inside +-0.1 (mean near-zero
       fractions 0.67, 0.74, 0.60, 0.66 at separations 2, 3, 5, 10: no trend, but not
       tight enough), and its control failed too: across widths 8-32 the same
       statistic moves by 0.145 [0.071, 0.218], not clearly beyond 0.1. The
       near-zero fraction at 1e-3 of lambda_1 is too noisy at six seeds to decide the
       bulk half of this claim either way. The count drops from k = 4 towards k - 1 and
       below as the separation shrinks (separation 2: 3, 1, 2, 3, 2, 3).
    Controls of the tracking rule -- both did not fire: width sweep 0.83 [-0.31, 1.97]
    per doubling of the width (counts 1, 8, 1, 1, 1, 1 / 3, 4, 3, 1, 3, 4 / 2, 4, 4, 3,
    6, 4); random labels 0.92 [-0.66, 2.49] (counts 3, 1, 4, 2, 3, 2 / 2, 6, 7, 6, 6, 7 /
    9, 2, 1, 1, 8, 5; mean deciding log-gap 0.55 against 1.15 with true labels: no
    separated outliers).
    Digits (exploratory): counts 4, 8 / 1, 1 / 1, 1 / 1, 5 for k = 2, 3, 4, 6 (slope
    -0.49 [-2.09, 1.12]), deciding log-gaps 0.24-0.82: as in the pilot of
    ``shared/claims.md``, no clean gap and no tracking on digits with this network.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from claims import spectra as sp
from claims.report import ClaimRecord, record_claim
from hesskit.problems import reference


@dataclass(frozen=True)
class Setup:
    """One profile's pre-registered sizes, seeds and protocol."""

    clusters: tuple[int, ...]
    width: int
    input_dim: int
    samples_per_cluster: int
    separation: float
    seeds: tuple[int, ...]
    separations: tuple[float, ...]
    separation_clusters: int
    control_widths: tuple[int, ...]
    control_clusters: int
    random_label_clusters: tuple[int, ...]
    digits_classes: tuple[tuple[int, ...], ...]
    digits_seeds: tuple[int, ...]
    lr: float
    target_loss: float
    max_steps: int

    def run(
        self,
        num_clusters: int,
        width: int,
        seed: int,
        device: str,
        *,
        separation: float | None = None,
        random_labels: bool = False,
    ) -> sp.Run:
        """The cache key of one trained network."""
        return sp.Run(
            num_clusters=num_clusters,
            width=width,
            seed=seed,
            input_dim=self.input_dim,
            samples_per_cluster=self.samples_per_cluster,
            separation=self.separation if separation is None else separation,
            lr=self.lr,
            target_loss=self.target_loss,
            max_steps=self.max_steps,
            random_labels=random_labels,
            device=device,
        )


SETUPS = {
    "quick": Setup(
        clusters=(2, 3, 4, 6),
        width=16,
        input_dim=20,
        samples_per_cluster=100,
        separation=10.0,
        seeds=(10, 11, 12, 13, 14, 15),
        separations=(2.0, 3.0, 5.0, 10.0),
        separation_clusters=4,
        control_widths=(8, 16, 32),
        control_clusters=4,
        random_label_clusters=(2, 3, 4),
        digits_classes=((0, 1), (0, 1, 2), (0, 1, 2, 3), (0, 1, 2, 3, 4, 5)),
        digits_seeds=(10, 11),
        lr=0.05,
        target_loss=0.01,
        max_steps=20_000,
    ),
    # the paper's 100-30-30-k network and k values (k = 50: 5,000 samples, 5,530
    # parameters); dense spectra, meant for a GPU
    "full": Setup(
        clusters=(2, 5, 10, 20, 50),
        width=30,
        input_dim=100,
        samples_per_cluster=100,
        separation=10.0,
        seeds=tuple(range(10, 20)),
        separations=(2.0, 3.0, 5.0, 10.0),
        separation_clusters=5,
        control_widths=(10, 30, 50),
        control_clusters=5,
        random_label_clusters=(2, 5, 10),
        digits_classes=tuple(tuple(range(c)) for c in (2, 3, 4, 6, 8, 10)),
        digits_seeds=tuple(range(10, 15)),
        lr=0.05,
        target_loss=0.01,
        max_steps=100_000,
    ),
}
BULK_MARGIN = 0.1
"""Largest change of the near-zero fraction across the separation sweep that counts as none."""
XFAIL_SEPARABILITY = (
    "measured in the quick profile: the outliers grow as separation shrinks (slope -0.80 "
    "[-1.06, -0.55]) but the bulk change -0.049 [-0.120, 0.022] is not inside +-0.1, and "
    "the bulk statistic's own control (width sweep, 0.145 [0.071, 0.218]) does not clear "
    "0.1 either"
)
"""Why the separability claim is a strict xfail in the quick profile."""


def _device(profile: str) -> str:
    import torch

    return "cuda" if profile == "full" and torch.cuda.is_available() else "cpu"


@pytest.fixture(scope="module")
def setup(profile) -> Setup:
    return SETUPS[profile]


@pytest.fixture(scope="module")
def cluster_sweep(setup, profile) -> list[list[sp.Spectrum]]:
    """``[k][seed]`` Hessian spectra at the fixed width (shared with the bulk claim)."""
    device = _device(profile)
    return [
        [sp.gaussian_spectrum(setup.run(k, setup.width, s, device)) for s in setup.seeds]
        for k in setup.clusters
    ]


@pytest.fixture(scope="module")
def width_sweep(setup, profile) -> list[list[sp.Spectrum]]:
    """``[width][seed]`` at fixed k (the width control; shared with the bulk claim)."""
    device = _device(profile)
    k = setup.control_clusters
    return [
        [sp.gaussian_spectrum(setup.run(k, w, s, device)) for s in setup.seeds]
        for w in setup.control_widths
    ]


def _flat(sweep):
    return [s for row in sweep for s in row]


def _tracking(sweep) -> sp.Interval:
    runs = _flat(sweep)
    return sp.slope([s.num_clusters - 1 for s in runs], [s.count for s in runs])


def _rates(runs) -> dict[str, float]:
    k = np.array([s.num_clusters for s in runs])
    c = np.array([s.count for s in runs])
    return {
        "count_equals_k": float(np.mean(c == k)),
        "count_equals_k_minus_1": float(np.mean(c == k - 1)),
        "count_within_one_of_k": float(np.mean(np.abs(c - k) <= 1)),
        "count_in_k_minus_1_or_k": float(np.mean((c == k) | (c == k - 1))),
    }


def test_outlier_count_tracks_clusters(setup, cluster_sweep, profile, record_property, report_dir):
    runs = _flat(cluster_sweep)
    assert all(s.reached_target for s in runs), "a run missed the matched training loss"
    tracking = _tracking(cluster_sweep)
    holds = sp.tracking_fires(tracking)
    x = np.array([s.num_clusters - 1 for s in runs], dtype=float)
    intercept = float(np.polyfit(x, [s.count for s in runs], 1)[1])
    device = _device(profile)
    ggn = [
        [
            sp.gaussian_spectrum(setup.run(k, setup.width, s, device), "ggn").count
            for s in setup.seeds
        ]
        for k in setup.clusters
    ]
    ggn_slope = sp.slope(
        [k - 1 for k in setup.clusters for _ in setup.seeds], [c for row in ggn for c in row]
    )
    record_claim(
        record_property,
        ClaimRecord(
            claim="sagun2017 outliers track clusters",
            statistic="slope of the Hessian outlier count on k - 1 (Gaussian mixtures)",
            estimate=tracking.estimate,
            interval=tracking.bounds,
            p_value=None,
            rule="95% t-interval contains 1 and excludes 0",
            decision="holds" if holds else "fails",
            control=(
                "width sweep and random labels must not fire the rule: see the two control records"
            ),
            details={
                "clusters": list(setup.clusters),
                "width": setup.width,
                "seeds": list(setup.seeds),
                "counts": {
                    f"k={k}": [s.count for s in row]
                    for k, row in zip(setup.clusters, cluster_sweep, strict=True)
                },
                "split_default_counts": {
                    f"k={k}": [s.split_count for s in row]
                    for k, row in zip(setup.clusters, cluster_sweep, strict=True)
                },
                "ggn_counts": {f"k={k}": row for k, row in zip(setup.clusters, ggn, strict=True)},
                "ggn_slope": ggn_slope.estimate,
                "ggn_slope_interval": ggn_slope.bounds,
                "intercept_on_k_minus_1": intercept,
                "slope_p_value": tracking.p_value,
                **_rates(runs),
                "per_k": {
                    f"k={k}": [s.summary() for s in row]
                    for k, row in zip(setup.clusters, cluster_sweep, strict=True)
                },
                "paper_table1_k20": [
                    reference.SAGUN2017_OUTLIER_COUNTS[(20, rule)].value for rule in (1, 2, 3)
                ],
            },
        ),
    )
    if report_dir is not None:
        sp.draw_spectra(
            [(f"k = {k}", row) for k, row in zip(setup.clusters, cluster_sweep, strict=True)],
            report_dir,
            "sagun2017_outliers_cluster_spectra",
            f"sagun2017 outliers track clusters: Hessian spectra per k (width {setup.width}; "
            f"top row seed {setup.seeds[0]}, bottom row pooled)",
        )
    assert holds, f"count slope on k - 1 {sp.fmt(tracking)} does not contain 1 and exclude 0"


def test_control_width_sweep_does_not_track(setup, width_sweep, record_property, report_dir):
    runs = _flat(width_sweep)
    assert all(s.reached_target for s in runs), "a run missed the matched training loss"
    x = [np.log2(w) for w in setup.control_widths for _ in setup.seeds]
    interval = sp.slope(x, [s.count for s in runs])
    fires = sp.tracking_fires(interval)
    record_claim(
        record_property,
        ClaimRecord(
            claim="sagun2017 outliers track clusters -- control: width sweep",
            statistic=f"slope of the outlier count on log2(width) at k = {setup.control_clusters}",
            estimate=interval.estimate,
            interval=interval.bounds,
            p_value=None,
            rule="the tracking rule (CI contains 1 and excludes 0) must NOT fire",
            decision="holds" if not fires else "fails",
            control="this is the control: " + ("fired (FAILED)" if fires else "did not fire"),
            details={
                "widths": list(setup.control_widths),
                "counts": {
                    f"width={w}": [s.count for s in row]
                    for w, row in zip(setup.control_widths, width_sweep, strict=True)
                },
                "p_value": interval.p_value,
            },
        ),
    )
    if report_dir is not None:
        sp.draw_spectra(
            [(f"width {w}", row) for w, row in zip(setup.control_widths, width_sweep, strict=True)],
            report_dir,
            "sagun2017_outliers_control_width_spectra",
            f"control: Hessian spectra per width at k = {setup.control_clusters}",
        )
    assert not fires, f"the width sweep looks like tracking: slope {sp.fmt(interval)}"


def test_control_random_labels_do_not_track(
    setup, cluster_sweep, profile, record_property, report_dir
):
    device = _device(profile)
    random = [
        [
            sp.gaussian_spectrum(setup.run(k, setup.width, s, device, random_labels=True))
            for s in setup.seeds
        ]
        for k in setup.random_label_clusters
    ]
    runs = _flat(random)
    interval = _tracking(random)
    fires = sp.tracking_fires(interval)
    real = [s for s in _flat(cluster_sweep) if s.num_clusters in setup.random_label_clusters]
    record_claim(
        record_property,
        ClaimRecord(
            claim="sagun2017 outliers track clusters -- control: random labels",
            statistic="slope of the outlier count on k - 1 with randomly permuted labels",
            estimate=interval.estimate,
            interval=interval.bounds,
            p_value=None,
            rule="the tracking rule (CI contains 1 and excludes 0) must NOT fire",
            decision="holds" if not fires else "fails",
            control="this is the control: " + ("fired (FAILED)" if fires else "did not fire"),
            details={
                "clusters": list(setup.random_label_clusters),
                "counts": {
                    f"k={k}": [s.count for s in row]
                    for k, row in zip(setup.random_label_clusters, random, strict=True)
                },
                "reached_target": [s.reached_target for s in runs],
                "final_loss": [s.final_loss for s in runs],
                "steps": [s.num_steps for s in runs],
                "mean_gap_random": float(np.mean([s.gap for s in runs])),
                "mean_gap_true_labels": float(np.mean([s.gap for s in real])),
                "p_value": interval.p_value,
                **_rates(runs),
            },
        ),
    )
    if report_dir is not None:
        sp.draw_spectra(
            [
                (f"k = {k}, random labels", row)
                for k, row in zip(setup.random_label_clusters, random, strict=True)
            ],
            report_dir,
            "sagun2017_outliers_control_random_label_spectra",
            "control: Hessian spectra with random labels",
        )
        sp.draw_counts(
            [
                (
                    "Gaussian mixtures",
                    [s.num_clusters for s in _flat(cluster_sweep)],
                    [s.count for s in _flat(cluster_sweep)],
                ),
                (
                    "random labels (control)",
                    [s.num_clusters for s in runs],
                    [s.count for s in runs],
                ),
            ],
            report_dir,
            "sagun2017_outliers_counts",
            "outlier count against k",
            "k (clusters = classes)",
            identity=(min(setup.clusters), max(setup.clusters)),
        )
    assert not fires, f"random labels look like tracking: slope {sp.fmt(interval)}"


def test_less_separable_grows_outliers_not_bulk(
    setup, width_sweep, profile, record_property, report_dir, request
):
    quick = profile == "quick"
    request.applymarker(pytest.mark.xfail(quick, reason=XFAIL_SEPARABILITY, strict=True))
    device = _device(profile)
    k = setup.separation_clusters
    sweep = [
        [
            sp.gaussian_spectrum(setup.run(k, setup.width, s, device, separation=sep))
            for s in setup.seeds
        ]
        for sep in setup.separations
    ]
    runs = _flat(sweep)
    assert all(s.reached_target for s in runs), "a run missed the matched training loss"
    log_sep = [np.log(sep) for sep in setup.separations for _ in setup.seeds]
    outliers = sp.slope(log_sep, [np.log(s.top_mean(k - 1)) for s in runs])
    outliers_hold = outliers.high < 0
    span = np.log(max(setup.separations) / min(setup.separations))
    bulk = sp.slope(log_sep, [s.near_zero_fraction for s in runs])
    bulk_change = sp.Interval(bulk.estimate * span, bulk.low * span, bulk.high * span)
    bulk_holds = bulk_change.low >= -BULK_MARGIN and bulk_change.high <= BULK_MARGIN
    holds = outliers_hold and bulk_holds
    width_runs = _flat(width_sweep)
    width_x = [np.log(w) for w in setup.control_widths for _ in setup.seeds]
    width_span = np.log(max(setup.control_widths) / min(setup.control_widths))
    width_bulk = sp.slope(width_x, [s.near_zero_fraction for s in width_runs])
    width_change = sp.Interval(
        width_bulk.estimate * width_span, width_bulk.low * width_span, width_bulk.high * width_span
    )
    control_detects = width_change.low > BULK_MARGIN or width_change.high < -BULK_MARGIN
    record_claim(
        record_property,
        ClaimRecord(
            claim="sagun2017 less separable data grows the outliers, not the bulk",
            statistic=f"slope of log mean top-{k - 1} eigenvalue on log(separation)",
            estimate=outliers.estimate,
            interval=outliers.bounds,
            p_value=outliers.p_value,
            rule=(
                "outlier slope 95% CI < 0 (linregress t-test) AND change of the near-zero "
                f"fraction across the sweep 95% CI inside +-{BULK_MARGIN}"
            ),
            decision="holds" if holds else "fails",
            control=(
                f"bulk change across widths {list(setup.control_widths)}: "
                f"{sp.fmt(width_change)} "
                f"({'detected: outside' if control_detects else 'NOT detected: not outside'} "
                f"+-{BULK_MARGIN}); bulk change across separations: {sp.fmt(bulk_change)}"
            ),
            details={
                "separations": list(setup.separations),
                "num_clusters": k,
                "bulk_change": bulk_change.estimate,
                "bulk_change_interval": bulk_change.bounds,
                "decisions": {"outliers": outliers_hold, "bulk": bulk_holds},
                "width_bulk_change": width_change.estimate,
                "width_bulk_change_interval": width_change.bounds,
                "per_separation": {
                    f"sep={sep:g}": [s.summary() for s in row]
                    for sep, row in zip(setup.separations, sweep, strict=True)
                },
            },
        ),
    )
    if report_dir is not None:
        sp.draw_spectra(
            [
                (f"separation {sep:g}", row)
                for sep, row in zip(setup.separations, sweep, strict=True)
            ],
            report_dir,
            "sagun2017_outliers_separation_spectra",
            f"sagun2017: Hessian spectra per separation (k = {k}, width {setup.width})",
        )
    assert control_detects, f"bulk statistic blind to width: change {sp.fmt(width_change)}"
    assert outliers_hold, f"outliers do not grow as separation shrinks: {sp.fmt(outliers)}"
    assert bulk_holds, f"bulk moved across separations: {sp.fmt(bulk_change)}"


def test_digits_class_subsets_exploratory(setup, profile, record_property, report_dir):
    """Exploratory: counts on digits class subsets are recorded, not asserted."""
    device = _device(profile)
    spectra = [
        [
            sp.digits_spectrum(
                classes,
                setup.width,
                seed,
                lr=setup.lr,
                target_loss=setup.target_loss,
                max_steps=setup.max_steps,
                device=device,
            )
            for seed in setup.digits_seeds
        ]
        for classes in setup.digits_classes
    ]
    runs = _flat(spectra)
    interval = _tracking(spectra)
    record_claim(
        record_property,
        ClaimRecord(
            claim="sagun2017 outliers track clusters -- digits class subsets (exploratory)",
            statistic="slope of the Hessian outlier count on k - 1 (digits, not asserted)",
            estimate=interval.estimate,
            interval=interval.bounds,
            p_value=None,
            rule="exploratory: reported only; the tracking rule would need 1 in CI, 0 out",
            decision="holds" if sp.tracking_fires(interval) else "fails",
            control="none (exploratory)",
            details={
                "classes": [list(c) for c in setup.digits_classes],
                "seeds": list(setup.digits_seeds),
                "counts": {
                    f"k={len(c)}": [s.count for s in row]
                    for c, row in zip(setup.digits_classes, spectra, strict=True)
                },
                "gaps": {
                    f"k={len(c)}": [round(s.gap, 3) for s in row]
                    for c, row in zip(setup.digits_classes, spectra, strict=True)
                },
                "per_k": {
                    f"k={len(c)}": [s.summary() for s in row]
                    for c, row in zip(setup.digits_classes, spectra, strict=True)
                },
                **_rates(runs),
            },
        ),
    )
    if report_dir is not None:
        sp.draw_spectra(
            [
                (f"digits k = {len(c)}", row)
                for c, row in zip(setup.digits_classes, spectra, strict=True)
            ],
            report_dir,
            "sagun2017_outliers_digits_spectra",
            "exploratory: Hessian spectra on digits class subsets",
        )
    assert all(np.isfinite(s.eigenvalues).all() for s in runs)
