"""sagun2017: the number of Hessian outliers tracks the number of clusters in the data.

Conjecture:
    Fix the model and vary the number ``k`` of clusters (= classes) of the data: the
    number of outliers above the bulk of the Hessian's spectrum follows ``k``.

Paper:
    ``sagun2017``, section 3.1 and Table 1: k Gaussian clusters in 100 dimensions, a
    100-30-30-k network, k in {2, 5, 10, 20, 50}; its three counting rules disagree (k = 20
    gave 4, 21 and 21: :data:`claims.reference.SAGUN2017_OUTLIER_COUNTS`), so the paper
    supports a count within one of k. The class-mean view of the outliers follows
    ``papyan2019``.

k or k - 1:
    The softmax's Hessian in the logits, ``diag(p) - p p^T``, has rank ``k - 1``, so the
    Gauss-Newton part's leading term gives ``k - 1`` outliers; the ``k`` class-mean
    gradients are not tied by the zero-sum constraint of the logits and can give ``k``.
    A count of **k - 1 or k** is a hit.

Setup (:data:`SETUPS`; the paper's, see :mod:`claims.spectra`):
    ``k`` clusters of 100 samples in 100 dimensions (cluster std 1, means at norm 10,
    inputs standardised globally), the paper's ``100-30-30-k`` ReLU network (softmax
    cross-entropy), full-batch GD with step 0.05 to a matched training loss of 0.01 (every
    run must reach it), the top ``3k + 10`` eigenpairs of the Hessian ``H`` and of the
    Gauss-Newton matrix ``G`` by Lanczos in float64. The quick profile's k grid stops at 10;
    the full profile runs the paper's grid up to 50 and repeats the claim on SGD (batch 32)
    as in Table 1.

Counting rule (:func:`hesskit.spectrum.agreed_count`):
    A run's count is ``c`` when three views agree: ``H`` has a gap after ``c`` that stands
    out against the bulk's own spacing below it (:func:`hesskit.spectrum.edge_gap`, the
    largest such contrast, at least 3), ``G`` has one after ``c`` or ``c +- 1``, and the
    class-mean gradients lie in the top ``c +- 1`` eigenvectors at the calibrated fraction
    ``1 - 1/(2c)``; otherwise 0. Why: the earlier deciding rule, the fewest eigenvectors
    holding 90% of the class-mean energy, is ``ceil(0.9 k)`` by construction when that
    energy spreads evenly (18 at k = 20, 45 at k = 50), and it measures alignment, not a
    gap (on digits it counts about 10 where the spectrum has no gap at rank 10). The new
    rule's planted-spectrum tests cover k up to 50 (``tests/test_spectrum_counting.py``).
    The old rules' counts are recorded for every run.

Statistic and decision rule (alpha = 0.05):
    Per k, the share of the claim seeds' runs whose count lies in {k - 1, k}, with an
    exact (Clopper-Pearson) interval at confidence ``1 - 0.05 / K`` (Bonferroni over the
    ``K`` values of k); the statistic is the smallest share, its interval from the
    smallest lower end to the smallest upper end (it covers the smallest true share when
    every per-k interval covers its own). **Holds** if the lower end exceeds 0.75 (every k
    is counted k - 1 or k by more than three runs in four), **fails** if the upper end
    lies below 0.75 (some k is not), else undecided. Per-k shares in ``data["per_k"]``.

Controls (opposite settings, the same statistic; each fires when its upper end lies
below 0.75):
    1. Random labels: the labels of the k in {2, 5, 10} mixtures randomly permuted (class
       sizes kept), trained by the same protocol to the same loss: the class means are no
       structure of the data.
    2. Digits with the W2 MLP (``64-128-128-10`` ReLU, 200 Adam steps,
       :func:`hesskit.train.trained_digits_network`), 10 classes: a spectrum without a
       gap at rank 10, which must not count 9 or 10.

False targets (the same rule against a wrong target must not hold):
    the share of runs counting ``k + 1`` or ``k + 2`` ("tracks k + 2"), and ``k - 3`` or
    ``k - 2`` ("tracks k - 2").

Power (sequential design, :class:`claims.stats.SequentialDesign`):
    pilot seeds apart from the claim seeds give each k's per-run hit rate (Jeffreys
    posterior mean, :func:`claims.stats.pilot_hit_rate`); the claim seeds are drawn in
    order from a reserve until the rule decides (holds or fails) with probability 0.9 at
    those rates, at least :attr:`Setup.minimum_seeds`, at most
    :attr:`Setup.maximum_seeds`; beyond the cap the record is undecided with the reason.
    The random-label and digits controls run on the first :attr:`Setup.control_seeds`
    claim seeds. Numbers in ``data["power"]``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pytest
from scipy import stats as scipy_stats

from claims import reference, stats
from claims import spectra as sp
from claims.figures import pyplot, save_figure
from claims.preregistration import Claim, Control, FalseTarget, Rule
from claims.report import conclude
from claims.seeds import fresh
from claims.stats import Interval, SequentialDesign
from hesskit.problems import digits
from hesskit.train import trained_digits_network

DECIDING_RULE = "agreed_count"
HIT_LEVEL = 0.75
"""The share of runs counting k - 1 or k above which the count tracks k."""
POWER = 0.9
"""The probability with which the design must clear the level at the pilot's hit rate."""
DIGITS_CLASSES = 10

TRACKS = Rule("above", HIT_LEVEL)
NO_TRACKING = Rule("below", HIT_LEVEL)
CONTROLS = (
    Control(
        "random labels",
        "the k in {2, 5, 10} mixtures with randomly permuted labels: the class means are no "
        "structure of the data; the share counting k - 1 or k must lie below the level",
        NO_TRACKING,
    ),
    Control(
        "digits W2, no gap",
        "digits with the W2 MLP (10 classes), a spectrum without a gap at rank 10: the "
        "share counting 9 or 10 must lie below the level",
        NO_TRACKING,
    ),
)
FALSE_TARGETS = (
    FalseTarget("k + 2", "the share of runs counting k + 1 or k + 2 (tracks k + 2)"),
    FalseTarget("k - 2", "the share of runs counting k - 3 or k - 2 (tracks k - 2)"),
)
STATISTIC = (
    "smallest per-k share of runs whose agreed count (gaps of H and G against the bulk's "
    "spacing, class means at 1 - 1/(2c)) lies in {k - 1, k}; exact intervals, simultaneous "
    "over k"
)
CONJECTURE = "the number of Hessian outliers tracks the number of clusters k"

CLAIMS = (
    Claim(
        id="sagun2017.clusters.count_tracks_k",
        conjecture=f"{CONJECTURE} (full-batch GD)",
        paper="sagun2017",
        section="section 3.1, Table 1",
        kind="evidence",
        statistic=STATISTIC,
        rule=TRACKS,
        expected="undecided",
        why=(
            "at k = 8 and 10 the quick setup's spectra often have no gap at rank k - 1 or k "
            "that G and the class means corroborate, so the smallest per-k share stays "
            "between the two outcomes within the seed cap"
        ),
        controls=CONTROLS,
        false_targets=FALSE_TARGETS,
    ),
    Claim(
        id="sagun2017.clusters.count_tracks_k_sgd32",
        conjecture=f"{CONJECTURE} (SGD, batch 32)",
        paper="sagun2017",
        section="section 3.1, Table 1",
        kind="evidence",
        statistic=STATISTIC,
        rule=TRACKS,
        expected="undecided",
        why="not yet measured (full profile only): the GD record's quick outcome is assumed",
        controls=CONTROLS,
        false_targets=FALSE_TARGETS,
    ),
)
CLAIM_BY_TRAINER = {None: CLAIMS[0], 32: CLAIMS[1]}


@dataclass(frozen=True)
class Setup:
    """One profile's pre-registered grid, seeds and network."""

    clusters: tuple[int, ...]
    seed_reserve: tuple[int, ...]
    pilot_seeds: tuple[int, ...]
    minimum_seeds: int
    maximum_seeds: int
    random_label_clusters: tuple[int, ...]
    control_seeds: int
    """Random-label runs and digits networks per setting: the first claim seeds."""
    sgd_batch: int | None = None
    width: int = 30
    samples_per_cluster: int = 100

    def run(self, k: int, seed: int, device: str, **options) -> sp.Run:
        """The cache key of one trained network of this setup."""
        return sp.Run(
            num_clusters=k,
            width=self.width,
            seed=seed,
            samples_per_cluster=self.samples_per_cluster,
            device=device,
            **options,
        )

    @property
    def design(self) -> SequentialDesign:
        """The sequential design of the claim seeds."""
        return SequentialDesign(self.minimum_seeds, self.maximum_seeds)


SETUPS = {
    "quick": Setup(
        clusters=(2, 3, 5, 8, 10),
        seed_reserve=tuple(range(100, 110)),
        pilot_seeds=(50, 51),
        minimum_seeds=4,
        maximum_seeds=7,
        random_label_clusters=(2, 5, 10),
        control_seeds=4,
    ),
    "full": Setup(
        clusters=(2, 5, 10, 20, 50),
        seed_reserve=tuple(range(100, 125)),
        pilot_seeds=(50, 51, 52, 53, 54),
        minimum_seeds=5,
        maximum_seeds=21,
        random_label_clusters=(2, 10, 20),
        control_seeds=5,
        sgd_batch=32,
    ),
}


def test_outlier_count_tracks_clusters(setup, seed_offset, device, record_property, report_dir):
    record, sweep = _tracking(setup, seed_offset, device, batch_size=None)
    if report_dir is not None:
        _draw(sweep, report_dir)
    conclude(record_property, record, seed_offset=seed_offset)


def test_outlier_count_tracks_clusters_under_sgd(setup, seed_offset, device, record_property):
    """Table 1 of the paper also trains by SGD: the full profile repeats the claim so."""
    if setup.sgd_batch is None:
        pytest.skip("the quick profile trains by GD only; SGD (Table 1) is in the full profile")
    record, _ = _tracking(setup, seed_offset, device, batch_size=setup.sgd_batch)
    conclude(record_property, record, seed_offset=seed_offset)


def _tracking(setup: Setup, seed_offset: int, device: str, *, batch_size: int | None):
    """The claim's record (pilot and seed draw first) and its sweep of spectra."""
    trainer = {"batch_size": batch_size}
    power = _power_analysis(setup, fresh(setup.pilot_seeds, seed_offset), device, trainer)
    draw = setup.design.draw(fresh(setup.seed_reserve, seed_offset), power["seeds_needed"])
    sweep = _sweep(setup, draw.seeds, device, trainer)
    control_seeds = draw.seeds[: setup.control_seeds]
    random = _sweep(setup, control_seeds, device, {**trainer, "random_labels": True})
    random = {k: random[k] for k in setup.random_label_clusters}
    digit_counts = [_digits_count(seed) for seed in control_seeds]
    counts = sp.sweep_counts(sweep, DECIDING_RULE)
    claim = CLAIM_BY_TRAINER[batch_size]
    record = claim.record(
        _worst_share(counts, 0),
        controls={
            "random labels": _worst_share(sp.sweep_counts(random, DECIDING_RULE), 0),
            "digits W2, no gap": _worst_share({DIGITS_CLASSES: digit_counts}, 0),
        },
        false_targets={"k + 2": _worst_share(counts, 2), "k - 2": _worst_share(counts, -2)},
        data={
            "seeds": list(draw.seeds),
            "deciding_rule": DECIDING_RULE,
            "paper_table1_k20_by_rule": [
                reference.SAGUN2017_OUTLIER_COUNTS[(20, rule)].value for rule in (1, 2, 3)
            ],
            "power": power,
            "per_k": {f"{k}": _share(c, k, stats.CONFIDENCE).estimate for k, c in counts.items()},
            "counts": _every_rule(sweep),
            "runs": _summaries(sweep),
            "random_labels": {"counts": _every_rule(random), "runs": _summaries(random)},
            "digits_w2": {"seeds": list(control_seeds), "counts": digit_counts},
        },
        unpowered=draw.unpowered,
    )
    return record, sweep


def _sweep(setup: Setup, seeds, device: str, options: dict) -> dict[int, list]:
    runs = {k: [setup.run(k, s, device, **options) for s in seeds] for k in setup.clusters}
    return sp.top_sweep(runs, gauss_newton=True)


def _worst_share(counts: dict[int, list[int]], shift: int) -> Interval:
    """The smallest per-k share of runs counting ``k + shift - 1`` or ``k + shift``.

    Its interval runs from the smallest lower end to the smallest upper end of the per-k exact
    intervals, taken simultaneous by Bonferroni over the k settings: when every share lies
    in its interval, the smallest share lies in this one.
    """
    confidence = _simultaneous(len(counts))
    shares = [_share(row, k + shift, confidence) for k, row in counts.items()]
    return Interval(*(min(getattr(s, end) for s in shares) for end in ("estimate", "low", "high")))


def _share(row: list[int], target: int, confidence: float) -> Interval:
    """The share of ``row`` lying in {target - 1, target}, with its exact interval."""
    hits = sum(target - 1 <= n <= target for n in row)
    low, high = _exact(hits, len(row), confidence)
    return Interval(hits / len(row), low, high)


@functools.cache
def _exact(hits: int, runs: int, confidence: float) -> tuple[float, float]:
    interval = scipy_stats.binomtest(hits, runs).proportion_ci(confidence, "exact")
    return float(interval.low), float(interval.high)


def _simultaneous(settings: int) -> float:
    """The per-setting confidence of Bonferroni-simultaneous intervals."""
    return 1 - (1 - stats.CONFIDENCE) / settings


def _power_analysis(setup: Setup, pilot_seeds, device: str, trainer: dict) -> dict:
    """Claim seeds needed for the rule to decide (either way) with :data:`POWER`."""
    runs = {k: [setup.run(k, s, device, **trainer) for s in pilot_seeds] for k in setup.clusters}
    counts = sp.sweep_counts(sp.top_sweep(runs, gauss_newton=True), DECIDING_RULE)
    rates = [
        stats.pilot_hit_rate(sum(k - 1 <= n <= k for n in row), len(row))
        for k, row in counts.items()
    ]
    needed = next(
        (n for n in range(1, setup.maximum_seeds + 1) if _power(rates, n) >= POWER),
        setup.maximum_seeds + 1,
    )
    return {
        "pilot_seeds": list(pilot_seeds),
        "pilot_counts": {f"{k}": c for k, c in counts.items()},
        "pilot_hit_rates": dict(zip([f"{k}" for k in counts], rates, strict=True)),
        "power": POWER,
        "seeds_needed": needed,
        "power_at_cap": _power(rates, setup.maximum_seeds),
    }


def _power(rates: list[float], seeds: int) -> float:
    """P(the rule decides) with ``seeds`` runs per k, each k hitting at its ``rate``:
    every k's lower end above the level (holds) or some k's upper end below it (fails)."""
    confidence = _simultaneous(len(rates))
    ends = [_exact(hits, seeds, confidence) for hits in range(seeds + 1)]
    above = [hits for hits, (low, _) in enumerate(ends) if low > HIT_LEVEL]
    below = [hits for hits, (_, high) in enumerate(ends) if high < HIT_LEVEL]
    holds = np.prod([scipy_stats.binom.pmf(above, seeds, p).sum() for p in rates])
    stays = np.prod([1 - scipy_stats.binom.pmf(below, seeds, p).sum() for p in rates])
    return float(holds + 1 - stays)


@functools.cache
def _digits_count(seed: int) -> int:
    """The agreed count of the W2 digits MLP trained under ``seed`` (the benchmarks' way)."""
    model, _, _ = trained_digits_network("W2", seed=seed)  # trained on digits()' data
    problem = digits()
    _, counts, _ = sp.outlier_counts(
        model, problem, 3 * DIGITS_CLASSES + 10, seed=seed, gauss_newton=True
    )
    return counts[DECIDING_RULE].count


def _every_rule(sweep: dict[int, list]) -> dict[str, dict[str, list[int]]]:
    rules = next(iter(sweep.values()))[0].counts
    return {rule: {f"{v}": c for v, c in sp.sweep_counts(sweep, rule).items()} for rule in rules}


def _summaries(sweep: dict[int, list]) -> dict[str, list[dict]]:
    return {f"{v}": [s.summary() for s in rows] for v, rows in sweep.items()}


def _draw(sweep, report_dir) -> None:
    """Top spectra per k (first seed), the deciding count marked in red."""
    plt = pyplot()
    figure, axes = plt.subplots(1, len(sweep), figsize=(2.6 * len(sweep), 3.2))
    for ax, (k, rows) in zip(np.atleast_1d(axes), sweep.items(), strict=True):
        first = rows[0]
        top = first.eigenvalues / first.eigenvalues[0]
        rank = np.arange(1, top.size + 1)
        count = first.count(DECIDING_RULE)
        ax.scatter(rank, np.abs(top), c=np.where(rank <= count, "tab:red", "tab:gray"), s=10)
        ax.set_yscale("log")
        ax.set_title(f"k = {k}: agreed count {count}", fontsize=8)
        ax.set_xlabel("rank", fontsize=8)
    np.atleast_1d(axes)[0].set_ylabel("lambda / lambda_1", fontsize=8)
    figure.suptitle("sagun2017: Hessian outliers per number of clusters (100-30-30-k ReLU)")
    figure.tight_layout()
    save_figure(figure, report_dir, "sagun2017_outliers_cluster_spectra")
