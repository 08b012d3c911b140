"""sagun2017: widening the network at fixed data grows the Hessian's bulk; the outliers stay.

Conjecture (``sagun2017``, section 3.2, "increasing the number of parameters merely scales
the bulk", following ``sagun2016``):
    Fix the data and widen the network: the outliers of the Hessian's spectrum stay put
    (the same number, about the same values) while the bulk grows with the number of
    parameters ``P``. The empirical content beyond the Gauss-Newton rank bound is the
    bulk's *shape*: does its density scale, i.e. is the density of ``lambda * P`` the same
    at every width?

Setup (:data:`SETUPS`; the data and network of :mod:`claims.spectra`, the paper's):
    ``k = 5`` Gaussian clusters of 100 samples in 100 dimensions, ReLU networks
    ``100-w-w-5``, full-batch GD (step 0.05) to the matched training loss 0.01. The outlier
    records need only the top of the spectrum (Lanczos, float64): widths
    ``{20, 30, 50, 70}`` (2,545 to 12,395 parameters; the paper's 10-70). The bulk records
    compare eigenvalues with zero and need every eigenvalue of the dense float64 Hessian:
    widths ``{10, 20, 30}`` (1,175 to 4,115 parameters). The full profile (not yet run)
    takes 200 samples per cluster, widths 20-100 and dense spectra to width 70.

Records (:data:`CLAIMS`; 95% intervals over seeds):
    1. ``sagun2017.bulk.outliers_stay`` (evidence). Per seed, the mean of the top ``k``
       eigenvalues at the widest over the narrowest width; the geometric mean over seeds
       with the t-interval of the mean log ratio. Holds when the interval lies inside
       [1/2, 2]. Control (can fail): the narrowest network trained on to a ten times lower
       loss instead of widened; every eigenvalue shrinks with the loss, so the same ratio
       (there over the matched loss) must lie below 1/2. False target: outliers that grow
       in proportion to the parameters, the ratio divided by ``P_wide / P_narrow``, must
       not lie inside the band.
    2. ``sagun2017.bulk.outlier_count_stays`` (identity). The range across widths of the
       per-width median class-mean subspace count. The rule reads the count off the ``k``
       class-mean gradients, which span at most ``k`` directions at any width, so it stays
       by construction. Sanity: with ``k in {2, 5, 10}`` at one width the medians follow
       ``k`` (range at least 2).
    3. ``sagun2017.bulk.zero_bulk_grows`` (identity). Per seed, the slope of the log
       near-zero count ``#{|lambda| <= 1e-3 max |lambda|}`` on log ``P`` across the dense
       widths; above 0.5. The Gauss-Newton part has rank at most ``N (k - 1)`` whatever the
       width, so the near-zero count grows with ``P`` by construction. Sanity: adding
       samples at fixed ``P`` can only raise that rank, so the same slope on the log number
       of samples lies below 0.5.
    4. ``sagun2017.bulk.shape_scales`` (evidence). The bulk: the eigenvalues below the top
       ``k``, off the zero bulk (``|lambda| > 1e-3 max |lambda|``). Per seed, the
       Wasserstein-1 distance between the distributions of ``log(|lambda| P)`` at the
       narrowest and the widest dense width, in units of ``log(P_wide / P_narrow)`` (the
       shift one power of ``P`` makes, so 0 is the same density and a bulk that scales as
       ``P^a`` gives about ``|1 - a|``). Holds when the interval lies below 1/2 (the best
       exponent within 1/2 of 1). Control (can fail): two seeds at the widest width, where
       no rescaling can matter, must be within the level: the statistic sees a shared
       density when there is one. False target: the bulk rescaled by ``P^2``
       (``log(|lambda| P^2)``) must not match. The unrescaled distance (``P^0``) is in
       ``data``.

Power design (:class:`claims.stats.SequentialDesign`): the evidence records run a pilot
first (pilot seeds 0-2, shifted like every seed list). Its per-seed values (log value
ratios for 1, distances for 4) give the standard deviation and the distance of their mean
from the rule's nearest threshold, hence the seeds needed for power 0.9
(:func:`claims.stats.mean_rule_power`, in ``data["power"]``); the claim seeds are drawn in
order from a reserve, at least the design's minimum and at most its cap (beyond it the
record is ``undecided``). The identities need no power: they run on the first seeds of
the same reserves (``identity_seeds``), shared with the evidence records' runs.
The design history is in ``claims/HISTORY.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import wasserstein_distance

from claims import spectra as sp
from claims import stats
from claims.figures import pyplot, save_figure
from claims.preregistration import Claim, Control, FalseTarget, Rule, Sanity
from claims.report import conclude
from claims.seeds import fresh
from hesskit.spectrum import NEAR_ZERO, near_zero_fraction

DECIDING_RULE = "class_mean_subspace"
VALUE_BAND = (0.5, 2.0)
"""The outlier values stay when the widest/narrowest ratio's interval lies inside this."""
UNMATCHED_LOSS = 1e-3
"""The control's training loss: ten times below the matched loss 0.01 of :class:`sp.Run`."""
COUNT_SPREAD = 1.5
"""The count stays when the per-width medians span less than this (at most 1 apart)."""
GROWTH_LEVEL = 0.5
"""The slope of log near-zero count on log size that counts as growth with the size."""
SHAPE_LEVEL = 0.5
"""The bulk's densities match when their distance is below half a power of ``P``."""
POWER = 0.9

CLAIMS = (
    OUTLIERS_STAY := Claim(
        id="sagun2017.bulk.outliers_stay",
        conjecture="widening the network leaves the values of the Hessian's outliers in place",
        paper="sagun2017",
        section="section 3.2",
        kind="evidence",
        statistic="top-k mean, widest / narrowest width (geometric mean over seeds)",
        rule=Rule("inside", VALUE_BAND, null=1.0),
        expected="holds",
        controls=(
            Control(
                "unmatched loss",
                f"the narrowest network trained on to loss {UNMATCHED_LOSS:g} instead of "
                "widened: every eigenvalue shrinks with the loss, so the top-k mean there "
                "over the matched loss's must lie below the band",
                Rule("below", VALUE_BAND[0], null=1.0),
            ),
        ),
        false_targets=(
            FalseTarget(
                "outliers grow with P",
                "outliers in proportion to the parameters: the ratio over P_wide / P_narrow",
            ),
        ),
    ),
    OUTLIER_COUNT := Claim(
        id="sagun2017.bulk.outlier_count_stays",
        conjecture="widening the network leaves the number of the Hessian's outliers in place",
        paper="sagun2017",
        section="section 3.2",
        kind="identity",
        statistic="range across widths of the per-width median class-mean subspace count",
        rule=Rule("below", COUNT_SPREAD),
        expected="holds",
        why="the class-mean subspace rule counts the top eigenvectors holding the span of "
        "the k class-mean gradients, which is at most k-dimensional at every width: the "
        "count stays near k by construction",
        sanity_checks=(
            Sanity(
                "the data change",
                "k in {2, 5, 10} at one width: the class means follow k, so the medians' "
                "range is at least 2",
                Rule("above", COUNT_SPREAD),
            ),
        ),
    ),
    ZERO_BULK := Claim(
        id="sagun2017.bulk.zero_bulk_grows",
        conjecture="the bulk at zero grows with the number of parameters",
        paper="sagun2017",
        section="section 3.2",
        kind="identity",
        statistic="slope of log #{|lambda| <= 1e-3 max|lambda|} on log #parameters (seed mean)",
        rule=Rule("above", GROWTH_LEVEL),
        expected="holds",
        why="the Gauss-Newton part has rank at most N(k-1) whatever the width, and the "
        "residual term is small at the matched loss: the near-zero count grows with the "
        "parameters by construction",
        sanity_checks=(
            Sanity(
                "samples grow",
                "samples grow at fixed parameters: the Gauss-Newton rank can only grow with "
                "them, so the near-zero count cannot grow (slope below the level)",
                Rule("below", GROWTH_LEVEL),
            ),
        ),
    ),
    SHAPE := Claim(
        id="sagun2017.bulk.shape_scales",
        conjecture="rescaled by the number of parameters P, the bulk's density is the same "
        "at every width (the density of lambda * P)",
        paper="sagun2017",
        section="section 3.2",
        kind="evidence",
        statistic="W1 distance of log(|lambda| P) over the bulk (below the top k, off zero), "
        "narrowest vs widest width, in units of log(P_wide / P_narrow) (seed mean)",
        rule=Rule("below", SHAPE_LEVEL),
        expected="fails",
        why="the bulk off zero keeps the scale of its eigenvalues as the width grows: only "
        "their number grows, so lambda * P moves by a whole power of P; the unrescaled "
        "density is the one that stays (data['rescaled'])",
        controls=(
            Control(
                "same width",
                "two seeds at the widest width (equal P, no rescaling can matter): the "
                "statistic must see the shared density, below the level",
                Rule("below", SHAPE_LEVEL),
            ),
        ),
        false_targets=(
            FalseTarget("rescaled by P^2", "the bulk rescaled by P^2: log(|lambda| P^2)"),
        ),
    ),
)


@dataclass(frozen=True)
class Setup:
    """One profile's pre-registered sizes, seed reserves and sequential design."""

    num_clusters: int
    widths: tuple[int, ...]
    dense_widths: tuple[int, ...]
    samples_per_cluster: int
    data_clusters: tuple[int, ...]
    data_width: int
    sample_width: int
    sample_sizes: tuple[int, ...]
    dense_reserve: tuple[int, ...]
    top_reserve: tuple[int, ...]
    pilot_seeds: tuple[int, ...]
    top_design: stats.SequentialDesign
    dense_design: stats.SequentialDesign
    identity_seeds: int
    """How many seeds of a reserve the identities run on (a theorem needs no power)."""

    def run(self, width: int, seed: int, device: str, **changes) -> sp.Run:
        """The cache key of one trained network of this setup (``changes``: fields of
        :class:`claims.spectra.Run` that differ, e.g. ``num_clusters``)."""
        fields = {
            "num_clusters": self.num_clusters,
            "samples_per_cluster": self.samples_per_cluster,
            **changes,
        }
        return sp.Run(width=width, seed=seed, device=device, **fields)


SETUPS = {
    "quick": Setup(
        num_clusters=5,
        widths=(20, 30, 50, 70),
        dense_widths=(10, 20, 30),
        samples_per_cluster=100,
        data_clusters=(2, 5, 10),
        data_width=30,
        sample_width=20,
        sample_sizes=(50, 100, 200),
        dense_reserve=tuple(range(500, 512)),
        top_reserve=tuple(range(400, 410)),
        pilot_seeds=(0, 1, 2),
        top_design=stats.SequentialDesign(minimum=4, cap=8),
        dense_design=stats.SequentialDesign(minimum=6, cap=10),
        identity_seeds=3,
    ),
    "full": Setup(
        num_clusters=5,
        widths=(20, 30, 50, 70, 100),
        dense_widths=(10, 30, 50, 70),
        samples_per_cluster=200,
        data_clusters=(2, 5, 10, 20),
        data_width=30,
        sample_width=30,
        sample_sizes=(100, 200, 400),
        dense_reserve=tuple(range(500, 512)),
        top_reserve=tuple(range(400, 412)),
        pilot_seeds=(0, 1, 2),
        top_design=stats.SequentialDesign(minimum=5, cap=10),
        dense_design=stats.SequentialDesign(minimum=6, cap=12),
        identity_seeds=5,
    ),
}


def _sequential(design: stats.SequentialDesign, reserve, seed_offset: int, pilot, threshold):
    """The claim seeds drawn for a pilot's power target, and the power numbers there."""
    needed = stats.mean_rule_power(pilot, threshold, design.minimum, power=POWER)
    draw = design.draw(fresh(reserve, seed_offset), needed["seeds_needed"])
    return draw, stats.mean_rule_power(pilot, threshold, len(draw.seeds), power=POWER)


def _identity_seeds(setup: Setup, reserve, seed_offset: int) -> tuple[int, ...]:
    """The seeds of an identity: the first of a reserve (a theorem needs no power)."""
    return fresh(reserve[: setup.identity_seeds], seed_offset)


def _exact(value: float) -> stats.Interval:
    """An exact value (a count's range) in the shape of an interval."""
    return stats.Interval(value, value, value)


def _scaled(interval: stats.Interval, factor: float) -> stats.Interval:
    """``interval`` times ``factor`` (a ratio over the parameter ratio)."""
    return stats.Interval(interval.estimate * factor, interval.low * factor, interval.high * factor)


# ---------------------------------------------------------------------------------------
# the outliers (Lanczos)


def _tops(setup: Setup, width: int, seeds, device: str, **changes) -> list[sp.TopSpectrum]:
    """Per seed, the top spectrum at ``width`` (every run reaches its target loss)."""
    return sp.top_sweep({width: [setup.run(width, s, device, **changes) for s in seeds]})[width]


def _top_ends(setup: Setup, seeds, device: str) -> tuple[list, list]:
    """Per seed, the top spectra at the narrowest and the widest width."""
    return tuple(_tops(setup, w, seeds, device) for w in (min(setup.widths), max(setup.widths)))


def _top_ratios(narrow: list, wide: list) -> list[float]:
    """Per seed, the top-k mean of ``wide`` over that of ``narrow``."""
    return [
        b.top_mean(a.run.num_classes) / a.top_mean(a.run.num_classes)
        for a, b in zip(narrow, wide, strict=True)
    ]


def _count_range(sweep: dict[int, list[sp.TopSpectrum]]) -> float:
    medians = [float(np.median(c)) for c in sp.sweep_counts(sweep, DECIDING_RULE).values()]
    return max(medians) - min(medians)


def test_outliers_stay_when_the_model_grows(setup, seed_offset, device, record_property):
    pilot = np.log(_top_ratios(*_top_ends(setup, fresh(setup.pilot_seeds, seed_offset), device)))
    nearest = min(np.log(VALUE_BAND), key=lambda edge: abs(edge - pilot.mean()))
    draw, power = _sequential(setup.top_design, setup.top_reserve, seed_offset, pilot, nearest)
    narrow, wide = _top_ends(setup, draw.seeds, device)
    ratio = stats.geometric_mean_interval(_top_ratios(narrow, wide))
    trained_on = _tops(setup, min(setup.widths), draw.seeds, device, target_loss=UNMATCHED_LOSS)
    unmatched = stats.geometric_mean_interval(_top_ratios(narrow, trained_on))
    params = wide[0].num_params / narrow[0].num_params
    record = OUTLIERS_STAY.record(
        ratio,
        controls={"unmatched loss": unmatched},
        false_targets={"outliers grow with P": _scaled(ratio, 1 / params)},
        data={
            "power": power,
            "seeds": list(draw.seeds),
            "widths": [min(setup.widths), max(setup.widths)],
            "parameter_ratio": params,
            "ratios": _top_ratios(narrow, wide),
            "unmatched_ratios": _top_ratios(narrow, trained_on),
            "runs": [s.summary() for s in (*narrow, *wide, *trained_on)],
        },
        unpowered=draw.unpowered,
    )
    conclude(record_property, record, seed_offset=seed_offset)


def test_outlier_count_stays_by_construction(setup, seed_offset, device, record_property):
    seeds = _identity_seeds(setup, setup.top_reserve, seed_offset)
    sweep = sp.top_sweep({w: [setup.run(w, s, device) for s in seeds] for w in setup.widths})
    by_data = sp.top_sweep(
        {
            k: [setup.run(setup.data_width, s, device, num_clusters=k) for s in seeds]
            for k in setup.data_clusters
        }
    )
    record = OUTLIER_COUNT.record(
        _exact(_count_range(sweep)),
        sanity_checks={"the data change": _exact(_count_range(by_data))},
        data={
            "seeds": list(seeds),
            "counts": {f"{w}": c for w, c in sp.sweep_counts(sweep, DECIDING_RULE).items()},
            "data_counts": {f"{k}": c for k, c in sp.sweep_counts(by_data, DECIDING_RULE).items()},
        },
    )
    conclude(record_property, record, seed_offset=seed_offset)


# ---------------------------------------------------------------------------------------
# the bulk (dense float64 spectra)


def _near_zero_count(run: sp.Run) -> int:
    values = sp.dense_spectrum(run)
    return round(near_zero_fraction(values) * values.size)


def _growth_slopes(runs_by_seed: list[list[sp.Run]], sizes: list[list[float]]) -> list[float]:
    """Per seed, the slope of log near-zero count on log size."""
    return [
        stats.slope_interval(np.log(size), [np.log(_near_zero_count(r)) for r in runs]).estimate
        for runs, size in zip(runs_by_seed, sizes, strict=True)
    ]


def test_zero_bulk_grows_by_construction(setup, seed_offset, device, record_property, report_dir):
    seeds = _identity_seeds(setup, setup.dense_reserve, seed_offset)
    runs = [[setup.run(w, s, device) for w in setup.dense_widths] for s in seeds]
    params = [[sp.dense_spectrum(r).size for r in row] for row in runs]
    sample_runs = [
        [
            setup.run(setup.sample_width, s, device, samples_per_cluster=n)
            for n in setup.sample_sizes
        ]
        for s in seeds
    ]
    samples = [[setup.num_clusters * n for n in setup.sample_sizes] for _ in seeds]
    slopes, sample_slopes = _growth_slopes(runs, params), _growth_slopes(sample_runs, samples)
    record = ZERO_BULK.record(
        stats.t_interval(slopes),
        sanity_checks={"samples grow": stats.t_interval(sample_slopes)},
        data={
            "seeds": list(seeds),
            "widths": list(setup.dense_widths),
            "slopes": slopes,
            "near_zero_counts": [[_near_zero_count(r) for r in row] for row in runs],
            "sample_sizes": list(setup.sample_sizes),
            "sample_slopes": sample_slopes,
            "sample_near_zero_counts": [[_near_zero_count(r) for r in row] for row in sample_runs],
        },
    )
    _draw(setup, seeds[0], device, report_dir)
    conclude(record_property, record, seed_offset=seed_offset)


def _log_bulk(run: sp.Run, exponent: int) -> np.ndarray:
    """``log(|lambda| P^exponent)`` over the bulk of ``run``: below the top ``k``, off zero."""
    values = sp.dense_spectrum(run)
    bulk = values[run.num_classes :]
    bulk = bulk[np.abs(bulk) > NEAR_ZERO * values[0]]
    return np.log(np.abs(bulk)) + exponent * np.log(values.size)


def _distance(a: sp.Run, b: sp.Run, exponent: int, unit: float) -> float:
    """W1 between the rescaled bulks of ``a`` and ``b``, in units of ``unit``."""
    return wasserstein_distance(_log_bulk(a, exponent), _log_bulk(b, exponent)) / unit


def _dense_ends(setup: Setup, seed: int, device: str) -> tuple[sp.Run, sp.Run]:
    """The runs of ``seed`` at the narrowest and the widest dense width."""
    return tuple(
        setup.run(w, seed, device) for w in (min(setup.dense_widths), max(setup.dense_widths))
    )


def _log_parameter_ratio(setup: Setup, seed: int, device: str) -> float:
    """``log(P_wide / P_narrow)`` of the dense widths: the shift one power of ``P`` makes."""
    narrow, wide = (sp.dense_spectrum(r).size for r in _dense_ends(setup, seed, device))
    return float(np.log(wide / narrow))


def _shape_distances(setup: Setup, seeds, device: str, exponent: int) -> list[float]:
    """Per seed, the distance of the bulks rescaled by ``P^exponent`` between the narrowest
    and widest dense width, in units of the log parameter ratio."""
    unit = _log_parameter_ratio(setup, seeds[0], device)
    return [_distance(*_dense_ends(setup, s, device), exponent, unit) for s in seeds]


def test_bulk_shape_scales_with_the_parameters(setup, seed_offset, device, record_property):
    pilot = _shape_distances(setup, fresh(setup.pilot_seeds, seed_offset), device, exponent=1)
    draw, power = _sequential(
        setup.dense_design, setup.dense_reserve, seed_offset, pilot, SHAPE_LEVEL
    )
    rescaled = {p: _shape_distances(setup, draw.seeds, device, p) for p in (0, 1, 2)}
    wide = [_dense_ends(setup, s, device)[1] for s in draw.seeds]
    unit = _log_parameter_ratio(setup, draw.seeds[0], device)
    # each seed against the next (cyclically): equal P, so the power cannot matter
    same_width = [_distance(a, b, 0, unit) for a, b in zip(wide, wide[1:] + wide[:1], strict=True)]
    record = SHAPE.record(
        stats.t_interval(rescaled[1]),
        controls={"same width": stats.t_interval(same_width)},
        false_targets={"rescaled by P^2": stats.t_interval(rescaled[2])},
        data={
            "power": power,
            "seeds": list(draw.seeds),
            "widths": [min(setup.dense_widths), max(setup.dense_widths)],
            "unit_log_parameter_ratio": unit,
            "rescaled": {f"P^{p}": d for p, d in rescaled.items()},
            "same_width": same_width,
            "bulk_sizes": [
                [_log_bulk(r, 0).size for r in _dense_ends(setup, s, device)] for s in draw.seeds
            ],
        },
        unpowered=draw.unpowered,
    )
    conclude(record_property, record, seed_offset=seed_offset)


def _draw(setup: Setup, seed: int, device: str, report_dir) -> None:
    """The |spectrum| per width (one seed): the bulk at zero grows, the top stays."""
    if report_dir is None:
        return
    plt = pyplot()
    figure, ax = plt.subplots(figsize=(5.5, 3.6))
    bins = np.linspace(-9, 0.2, 60)
    for width in setup.dense_widths:
        values = sp.dense_spectrum(setup.run(width, seed, device))
        ax.hist(
            np.log10(np.maximum(np.abs(values) / values[0], 1e-9)),
            bins=bins,
            histtype="step",
            label=f"width {width} ({values.size} parameters)",
        )
    ax.axvline(np.log10(NEAR_ZERO), color="k", ls=":", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("log10 |lambda| / lambda_1")
    ax.set_ylabel("eigenvalues")
    ax.legend(fontsize=7)
    ax.set_title(
        f"sagun2017: Hessian spectra per width (k = 5, seed {seed}); near-zero floor dotted",
        fontsize=8,
    )
    save_figure(figure, report_dir, "sagun2017_bulk_spectra")
