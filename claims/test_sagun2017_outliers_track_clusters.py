"""sagun2017: the number of Hessian outliers tracks the number of clusters in the data.

Conjecture:
    Fix the model and vary the number ``k`` of clusters (= classes) of the data: the
    number of outliers above the bulk of the Hessian's spectrum follows ``k``.

Paper:
    Sagun, Evci, Güney, Dauphin, Bottou (2017), *Empirical Analysis of the Hessian of
    Over-Parametrized Neural Networks*, arXiv:1706.04454, section 3.1 and Table 1: k
    Gaussian clusters in 100 dimensions, a 100-30-30-k network, k in {2, 5, 10, 20, 50};
    its three counting rules disagree (k = 20 gave 4, 21 and 21:
    :data:`claims.reference.SAGUN2017_OUTLIER_COUNTS`), so the paper supports
    a count within one of k. The instrument follows Papyan (2019), arXiv:1901.08244: the
    outliers are spanned by the class means of the per-sample gradients.

k or k - 1:
    The softmax's Hessian in the logits, ``diag(p) - p p^T``, has rank ``k - 1``, so the
    Gauss-Newton part's leading term gives ``k - 1`` outliers; the ``k`` class-mean
    gradients are not tied by the zero-sum constraint of the logits and can give ``k``.
    We expect **k - 1 or k** at every k.

Setup (:data:`SETUPS`; the paper's, see :mod:`claims.spectra`):
    ``k`` clusters of 100 samples in 100 dimensions (cluster std 1, means at norm 10,
    inputs standardised globally), the paper's ``100-30-30-k`` ReLU network (softmax
    cross-entropy, 4,022 parameters at k = 2, 4,270 at k = 10), full-batch GD with step
    0.05 to a matched training loss of 0.01 (every run must reach it), top Hessian
    eigenpairs by Lanczos in float64. Quick profile: k in {2, 3, 5, 8, 10}, 5 seeds (the
    paper's network and data at every k; only the k grid stops at 10 and the seeds are
    few, which keeps every run at 1-3 s). Full profile: the paper's k in {2, 5, 10, 20,
    50} (k = 50: 5,000 samples, 5,510 parameters), 7 seeds, and the same on SGD
    (batch 32) as in Table 1 -- not yet run (no GPU has been lent).

Counting rules (pre-registered before the claim seeds ran):
    Decides: ``class_mean_subspace`` (:func:`hesskit.spectrum.class_mean_subspace`, the
    fewest top Hessian eigenvectors holding 90% of the squared norm of the k class-mean
    per-sample loss gradients). Recorded for every run: ``largest_log_gap`` (no cap;
    fragile on a dominant outlier), ``lowest_log_gap`` (``hesskit.spectrum.split``'s
    rule) and ``cluster_mean_subspace`` (the same subspace rule with the gradients grouped
    by cluster rather than by class). Why the subspace rule: on the pilot seeds the
    largest log-gap put k = 10 at 3 and 9 (a gap of 1.03x at rank 10) where the subspace
    rule gave 10 and 10.

Statistic and decision rule (alpha = 0.05, 95% intervals):
    Per k, the median count over seeds; over all runs, Spearman's rank correlation
    ``rho`` of the count with k, with a bootstrap interval that resamples seeds within
    each k (:func:`claims.stats.spearman_interval`). **Holds** if every k's median lies
    in {k - 1, k} and the lower end of rho's interval is at least 0.9; **fails** if some
    k's median lies outside {k - 1, k} or the upper end of rho's interval is below 0.9;
    otherwise undecided.

Opposite-setting controls (the same statistic must report "no tracking"; fired if the
claim's per-setting rule fails there, i.e. some setting's median lies outside the set
that rule expects):
    1. Random labels: the labels of the k in {2, 5, 10} mixtures randomly permuted (class
       sizes kept), trained by the same protocol to the same loss. The class means of
       random labels are not a structure of the data: no k-dimensional outlier subspace.
    2. Classes are not clusters: 10 clusters labelled ``cluster mod m`` for m in {2, 5}.
       "Tracks the classes" predicts a median in {m - 1, m}; the statistic must reject
       it. The gap and cluster-grouped subspace counts of these runs are recorded: they
       show whether the outliers follow the clusters instead.

Power analysis (run first, on pilot seeds 0-4 shifted like every seed list, never the
claim seeds; the test fails if the design is underpowered; numbers in ``data["power"]``):
    each k's per-run hit rate ``P(count in {k-1, k})`` is estimated from the pilot
    (Jeffreys posterior mean, :func:`claims.stats.pilot_hit_rate`), and the number of
    seeds is the fewest odd n for which all five medians hit with probability >= 0.9
    (:func:`claims.stats.seeds_for_median_rule`). Minimal detectable effect at n = 7 and
    five k: a per-run hit rate of 0.83 (:func:`claims.stats.min_detectable_hit_rate`); a
    rate of 0.5 passes all five k with probability 0.03. History: the first design had 3
    pilot and 5 claim seeds; at offset 1 its pilot's one count of 11 at k = 10 (rate
    0.625) asked for 25 seeds, so the design went to 5 pilot and 7 claim seeds, which
    tolerates one pilot miss per k (the claim's rule did not change). The power treats
    the five k as independent; they are not quite: at one seed the k = 2 data's cluster
    means are the first two of the k = 5 data's (one generator draws the means first),
    and the initialisations share the seed.

Result (quick profile, offsets 0 / 1; about 320 s on one thread of a busy 2-core
machine): **holds at both**.
    Pilots: k on all 25 runs / k on 24, with 11 once at k = 10; 3 / 7 seeds needed, 7 run.
    Class-mean subspace counts at k = 2, 3, 5, 8, 10: k on every run but one 7 at k = 8
    (offset 0) / k on all 35 runs (offset 1): every median is k, rho = 0.998 [0.997, 1] /
    1 [1, 1]. That is k, not k - 1, as in the pilot of ``shared/claims.md``. The largest
    log-gap on the same spectra is exact up to k = 5 and breaks at k = 8 and 10 (1, 8, 1,
    8, 9, 8, 8 and 9, 9, 2, 2, 1, 9, 3 at offset 0: the dominant-outlier failure);
    ``split``'s lowest significant gap (min_gap 1) finds no gap from k = 5 on.
    Controls fired at both offsets. Random labels: medians 7 / 4, 16 / 16, 40 / 40
    (capped at the 40 eigenpairs computed) at k = 2, 5, 10: no k-dimensional outlier
    subspace. Classes made of clusters (10 clusters, labels cluster mod m): medians 6 / 7 at
    m = 2 and 6 / 6 at m = 5, not the number of classes (at m = 5 three runs of seven give
    5 at either offset: the control is clear at m = 2, marginal at m = 5). The same
    spectra grouped by *cluster* count 8-9 (cluster-mean subspace), and the largest
    log-gap gives 10 or 11 on 5-6 of 7 runs at m = 2: the outliers follow the clusters of
    the input more than the classes (a claim of its own, left for later).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from claims import reference, stats
from claims import spectra as sp
from claims.figures import pyplot, save_figure
from claims.report import ClaimRecord, Control, conclude, decide
from claims.seeds import fresh

PAPER = "Sagun, Evci, Güney, Dauphin, Bottou (2017), arXiv:1706.04454, section 3.1, Table 1"
DECIDING_RULE = "class_mean_subspace"
RHO_LEVEL = 0.9
"""Spearman's rho between k and the count that counts as tracking."""
BOOTSTRAP_SEED = 2017
"""The seed of rho's bootstrap (shifted by the seed offset like every seed)."""
POWER = 0.9
"""The probability with which the design must pass when every run hits as in the pilot."""


@dataclass(frozen=True)
class Setup:
    """One profile's pre-registered grid, seeds and network."""

    clusters: tuple[int, ...]
    seeds: tuple[int, ...]
    pilot_seeds: tuple[int, ...]
    random_label_clusters: tuple[int, ...]
    mod_clusters: int
    mods: tuple[int, ...]
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
    def num_eigenpairs(self) -> int:
        """Top eigenpairs computed per run: room for 3x the largest count expected."""
        return 3 * max((*self.clusters, self.mod_clusters)) + 10


SETUPS = {
    "quick": Setup(
        clusters=(2, 3, 5, 8, 10),
        seeds=(10, 11, 12, 13, 14, 15, 16),
        pilot_seeds=(0, 1, 2, 3, 4),
        random_label_clusters=(2, 5, 10),
        mod_clusters=10,
        mods=(2, 5),
    ),
    "full": Setup(
        clusters=(2, 5, 10, 20, 50),
        seeds=tuple(range(10, 19)),
        pilot_seeds=(0, 1, 2, 3, 4),
        random_label_clusters=(2, 10, 20),
        mod_clusters=20,
        mods=(2, 5, 10),
        sgd_batch=32,
    ),
}


def _counts(sweep: dict[int, list], rule: str = DECIDING_RULE) -> dict[int, list[int]]:
    return sp.sweep_counts(sweep, rule)


def _medians_hit(counts: dict[int, list[int]]) -> dict[int, bool]:
    """Per setting, whether the median count lies in {value - 1, value}."""
    return {v: v - 1 <= float(np.median(c)) <= v for v, c in counts.items()}


def _rho(counts: dict[int, list[int]], seed: int) -> stats.Interval:
    x = [v for v, c in counts.items() for _ in c]
    y = [n for c in counts.values() for n in c]
    return stats.spearman_interval(x, y, groups=x, seed=seed)


def _every_rule(sweep: dict[int, list]) -> dict[str, dict[str, list[int]]]:
    rules = next(iter(sweep.values()))[0].counts
    return {rule: {f"{v}": c for v, c in _counts(sweep, rule).items()} for rule in rules}


def _control(name: str, sweep: dict[int, list], expectation: str, seed: int) -> Control:
    counts = _counts(sweep)
    hits = _medians_hit(counts)
    rho = _rho(counts, seed)
    return Control(
        name=name,
        statistic=f"settings whose median count lies in {expectation} (of {len(hits)})",
        estimate=float(sum(hits.values())),
        low=None,
        high=None,
        p_value=None,
        rule=(
            f"fires if the claim's rule fails: some setting's median count lies outside "
            f"{expectation} (rho {rho})"
        ),
        fired=not all(hits.values()),
    )


def test_outlier_count_tracks_clusters(setup, seed_offset, device, record_property, report_dir):
    record, spectra = _tracking(setup, seed_offset, device, batch_size=None)
    if report_dir is not None:
        _draw(*spectra, setup, report_dir)
    conclude(record_property, record, expected="holds")


def test_outlier_count_tracks_clusters_under_sgd(setup, seed_offset, device, record_property):
    """Table 1 of the paper also trains by SGD: the full profile repeats the claim so."""
    if setup.sgd_batch is None:
        pytest.skip("the quick profile trains by GD only; SGD (Table 1) is in the full profile")
    record, _ = _tracking(setup, seed_offset, device, batch_size=setup.sgd_batch)
    conclude(record_property, record, expected="holds")


def _tracking(setup: Setup, seed_offset: int, device: str, *, batch_size: int | None):
    """The claim's record (power analysis first) and its spectra (claim, random labels)."""
    seeds = fresh(setup.seeds, seed_offset)
    eigenpairs = setup.num_eigenpairs
    trainer = {"batch_size": batch_size}
    power = _power_analysis(setup, fresh(setup.pilot_seeds, seed_offset), device, trainer)
    assert power["seeds_needed"] <= len(seeds), f"the design is underpowered: {power}"
    sweep = sp.top_sweep(
        {k: [setup.run(k, s, device, **trainer) for s in seeds] for k in setup.clusters},
        eigenpairs,
    )
    counts = _counts(sweep)
    hits = _medians_hit(counts)
    bootstrap_seed = fresh((BOOTSTRAP_SEED,), seed_offset)[0]
    rho = _rho(counts, bootstrap_seed)
    decision = decide(
        holds=all(hits.values()) and rho.low >= RHO_LEVEL,
        fails=not all(hits.values()) or rho.high < RHO_LEVEL,
    )
    random = sp.top_sweep(
        {
            k: [setup.run(k, s, device, random_labels=True, **trainer) for s in seeds]
            for k in setup.random_label_clusters
        },
        eigenpairs,
    )
    mods = sp.top_sweep(
        {
            m: [setup.run(setup.mod_clusters, s, device, label_mod=m, **trainer) for s in seeds]
            for m in setup.mods
        },
        eigenpairs,
    )
    controls = [
        _control("random labels", random, "{k - 1, k}", bootstrap_seed),
        _control(
            f"{setup.mod_clusters} clusters labelled cluster mod m",
            mods,
            "{m - 1, m}",
            bootstrap_seed,
        ),
    ]
    suffix = "" if batch_size is None else f"_sgd{batch_size}"
    trained_by = "full-batch GD" if batch_size is None else f"SGD, batch {batch_size}"
    record = ClaimRecord(
        id=f"sagun2017.clusters.count_tracks_k{suffix}",
        claim=f"the number of Hessian outliers tracks the number of clusters k ({trained_by})",
        paper=PAPER,
        statistic="Spearman rho of the class-mean subspace count with k",
        estimate=rho.estimate,
        low=rho.low,
        high=rho.high,
        p_value=rho.p_value,
        rule=(
            f"holds: every k's median count in {{k-1, k}} and rho's lower end >= {RHO_LEVEL}; "
            f"fails: a median outside or rho's upper end < {RHO_LEVEL}; else undecided"
        ),
        decision=decision,
        controls=controls,
        data={
            "seeds": list(seeds),
            "deciding_rule": DECIDING_RULE,
            "paper_table1_k20_by_rule": [
                reference.SAGUN2017_OUTLIER_COUNTS[(20, rule)].value for rule in (1, 2, 3)
            ],
            "power": power,
            "medians": {f"{k}": float(np.median(c)) for k, c in counts.items()},
            "median_in_k_minus_1_or_k": {f"{k}": h for k, h in hits.items()},
            "counts": _every_rule(sweep),
            "runs": _summaries(sweep),
            "random_labels": {"counts": _every_rule(random), "runs": _summaries(random)},
            "label_mod": {
                "clusters": setup.mod_clusters,
                "counts": _every_rule(mods),
                "runs": _summaries(mods),
            },
        },
    )
    return record, (sweep, random)


def _power_analysis(setup: Setup, pilot_seeds, device: str, trainer: dict) -> dict:
    """Seeds needed for the median rule to pass with :data:`POWER` at the pilot's hit rates."""
    runs = {k: [setup.run(k, s, device, **trainer) for s in pilot_seeds] for k in setup.clusters}
    counts = _counts(sp.top_sweep(runs, setup.num_eigenpairs))
    rates = {
        k: stats.pilot_hit_rate(sum(k - 1 <= n <= k for n in c), len(c)) for k, c in counts.items()
    }
    return {
        "pilot_seeds": list(pilot_seeds),
        "pilot_counts": {f"{k}": c for k, c in counts.items()},
        "hit_rates": {f"{k}": r for k, r in rates.items()},
        "power": POWER,
        "seeds_needed": stats.seeds_for_median_rule(list(rates.values()), power=POWER),
        "seeds_used": len(setup.seeds),
        "min_detectable_hit_rate": stats.min_detectable_hit_rate(
            len(setup.clusters), len(setup.seeds), power=POWER
        ),
    }


def _summaries(sweep: dict[int, list]) -> dict[str, list[dict]]:
    return {f"{v}": [s.summary() for s in rows] for v, rows in sweep.items()}


def _draw(sweep, random, setup: Setup, report_dir) -> None:
    """Top spectra per k (first seed) and the counts of every rule against k."""
    plt = pyplot()
    columns = len(sweep)
    figure, axes = plt.subplots(1, columns + 1, figsize=(2.6 * (columns + 1), 3.2))
    for ax, (k, rows) in zip(axes, sweep.items(), strict=False):
        first = rows[0]
        top = first.eigenvalues / first.eigenvalues[0]
        rank = np.arange(1, top.size + 1)
        count = first.count(DECIDING_RULE)
        colors = np.where(rank <= count, "tab:red", "tab:gray")
        ax.scatter(rank, np.abs(top), c=colors, s=10)
        ax.set_yscale("log")
        ax.set_title(f"k = {k}: {count} outliers", fontsize=8)
        ax.set_xlabel("rank", fontsize=8)
    axes[0].set_ylabel("lambda / lambda_1", fontsize=8)
    ax = axes[-1]
    rng = np.random.default_rng(0)
    for label, data, marker in (
        ("class-mean subspace", _counts(sweep), "o"),
        ("largest log-gap", _counts(sweep, "largest_log_gap"), "x"),
        ("random labels", _counts(random), "s"),
    ):
        x = [k + rng.uniform(-0.2, 0.2) for k, c in data.items() for _ in c]
        ax.scatter(x, [n for c in data.values() for n in c], marker=marker, s=14, label=label)
    line = np.array([min(setup.clusters), max(setup.clusters)])
    ax.plot(line, line, "k--", lw=1, label="count = k")
    ax.set_ylim(0, setup.num_eigenpairs + 2)
    ax.set_xlabel("k", fontsize=8)
    ax.set_title("outlier count against k", fontsize=8)
    ax.legend(fontsize=6)
    figure.suptitle("sagun2017: Hessian outliers per number of clusters (100-30-30-k ReLU)")
    figure.tight_layout()
    save_figure(figure, report_dir, "sagun2017_outliers_cluster_spectra")
