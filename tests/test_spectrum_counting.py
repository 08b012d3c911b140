"""Outlier-counting rules on planted spectra: clear, dominant, spread and soft-edged."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from hesskit.spectrum import (
    COUNTING_RULES,
    OutlierCount,
    agreed_count,
    class_mean_subspace,
    count_outliers,
    edge_gap,
    largest_log_gap,
    lowest_log_gap,
    near_zero_fraction,
)

F64 = torch.float64
LOG_RULES = (largest_log_gap, lowest_log_gap)


def _bulk(kind: str, n: int, seed: int) -> torch.Tensor:
    """A bulk with a soft edge: Marchenko-Pastur (ratio 1/2) or a linearly decaying tail."""
    if kind == "marchenko_pastur":
        x = torch.randn(2 * n, n, dtype=F64, generator=torch.Generator().manual_seed(seed))
        return torch.linalg.eigvalsh(x.T @ x / (2 * n))
    return torch.linspace(1.0, 0.0, n, dtype=F64)


def _orthogonal(n: int, seed: int) -> torch.Tensor:
    """A random ``(n, n)`` orthogonal matrix (QR of a seeded Gaussian)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.linalg.qr(torch.randn(n, n, dtype=F64, generator=gen))[0]


def _equal_energy_means(basis: torch.Tensor, k: int, c: int, seed: int) -> torch.Tensor:
    """``c`` class means in the span of ``basis[:, :k]``, each direction carrying 1/k."""
    coefficients = _orthogonal(c, seed)[:k]  # (k, c), orthonormal rows: unit energy each
    return basis[:, :k] @ coefficients


def _shuffled(values: torch.Tensor, seed: int) -> torch.Tensor:
    return values[torch.randperm(values.numel(), generator=torch.Generator().manual_seed(seed))]


# ---------------------------------------------------------------------------------------
# planted spectra


@pytest.mark.parametrize("k", [1, 2, 3, 4, 6])
def test_clear_outliers_are_counted_by_every_log_rule(k: int) -> None:
    bulk = _bulk("marchenko_pastur", 200, k)
    spikes = bulk.max() * torch.logspace(math.log10(5), math.log10(20), k, dtype=F64)
    values = _shuffled(torch.cat([bulk, spikes]), k)
    for rule in LOG_RULES:
        result = rule(values)
        assert (result.count, result.capped) == (k, False), result
        assert float(bulk.max()) < result.edge < float(spikes.min())
        gap = math.log(float(spikes.min() / bulk.max()))
        assert result.score == pytest.approx(gap, rel=1e-12)


def test_dominant_outlier_fools_only_the_largest_gap() -> None:
    gen = torch.Generator().manual_seed(0)
    bulk = 0.5 + 0.5 * torch.rand(100, dtype=F64, generator=gen)
    top = torch.tensor([100.0, 10.0, 9.0, 8.0, 7.0], dtype=F64)
    values = torch.cat([top, bulk])
    basis = _orthogonal(len(values), 1)  # column i is the eigenvector of values[i]
    means = _equal_energy_means(basis, 5, 6, 2)
    counts = count_outliers(values, eigenvectors=basis, class_means=means)
    assert tuple(counts) == COUNTING_RULES
    # documented failure: l_1 / l_2 = 10 > l_5 / max(bulk) ~ 7
    assert counts["largest_log_gap"].count == 1
    assert counts["largest_log_gap"].score == pytest.approx(math.log(10), rel=1e-12)
    assert counts["lowest_log_gap"].count == 5
    assert counts["class_mean_subspace"].count == 5
    assert counts["class_mean_subspace"].score == pytest.approx(1.0, abs=1e-12)
    assert not any(result.capped for result in counts.values())


def test_spread_outliers_stay_together_only_for_the_lowest_gap() -> None:
    bulk = _bulk("marchenko_pastur", 200, 1)
    spikes = torch.tensor([5.0, 50.0], dtype=F64) * bulk.max()
    values = torch.cat([bulk, spikes])
    assert lowest_log_gap(values).count == 2
    # log(50 / 5) > log(5): the largest gap lies between the two outliers
    assert largest_log_gap(values).count == 1


@pytest.mark.parametrize("kind", ["marchenko_pastur", "linear"])
@pytest.mark.parametrize("k", [2, 5])
def test_soft_bulk_edge_with_outliers(kind: str, k: int) -> None:
    bulk = _bulk(kind, 200, k)
    spikes = float(bulk.max()) * torch.linspace(6.0, 10.0, k, dtype=F64)
    values = _shuffled(torch.cat([bulk, spikes]), k)
    for rule in LOG_RULES:
        result = rule(values)
        assert (result.count, result.capped) == (k, False), result
        assert float(bulk.max()) < result.edge < float(spikes.min())


def test_pure_bulk() -> None:
    bulk = _bulk("marchenko_pastur", 200, 3)
    result = lowest_log_gap(bulk)
    assert result.count == 0 and result.edge == float(bulk.max())
    assert 0 < result.score < 1  # the largest gap examined, below min_gap
    assert largest_log_gap(bulk).count >= 1  # no threshold: a non-flat spectrum splits


def test_values_at_or_below_the_floor_are_one_level() -> None:
    values = torch.tensor([10.0, 1e-6, 1e-9, 0.0, -1e-7], dtype=F64)
    for rule in LOG_RULES:
        result = rule(values)
        assert result.count == 1
        assert result.edge == pytest.approx(math.sqrt(10 * 1e-2), rel=1e-12)
    # the last gap considered is the one down to the floor: a bulk under the floor
    result = largest_log_gap(torch.tensor([1.0, 0.5, 1e-9, 0.0], dtype=F64))
    assert result.count == 2
    assert result.score == pytest.approx(math.log(0.5 / 1e-3), rel=1e-12)


def test_largest_log_gap_has_no_silent_cap() -> None:
    gen = torch.Generator().manual_seed(4)
    outliers = 50 + 50 * torch.rand(150, dtype=F64, generator=gen)
    values = torch.cat([outliers, 0.5 + 0.5 * torch.rand(100, dtype=F64, generator=gen)])
    result = largest_log_gap(values)
    assert (result.count, result.capped) == (150, False)


def test_max_outliers_limits_and_caps() -> None:
    values = torch.tensor([64.0, 32.0, 4.0, *[1.0] * 10], dtype=F64)  # gaps log 2, 8, 4
    assert largest_log_gap(values) == largest_log_gap(values, max_outliers=3)
    assert largest_log_gap(values).count == 2 and not largest_log_gap(values).capped
    capped = largest_log_gap(values, max_outliers=2)
    assert (capped.count, capped.capped) == (2, True)
    one = largest_log_gap(values, max_outliers=1)
    assert (one.count, one.capped) == (1, True)
    assert not largest_log_gap(values, max_outliers=1000).capped
    spikes = torch.tensor([40.0, 30.0, 20.0, 10.0, *[1.0] * 10], dtype=F64)
    assert lowest_log_gap(spikes, max_outliers=4) == OutlierCount(
        "lowest_log_gap", 4, math.log(10.0), math.sqrt(10.0), True
    )
    assert not lowest_log_gap(spikes, max_outliers=5).capped
    assert lowest_log_gap(spikes, max_outliers=3).count == 0


def test_degenerate_spectra() -> None:
    for rule in LOG_RULES:
        assert rule([-1.0, -2.0, 0.0]) == OutlierCount(rule.__name__, 0, 0.0, 0.0, False)
        assert rule([3.0]) == OutlierCount(rule.__name__, 0, 0.0, 3.0, False)
        assert rule([2.0, 2.0, 2.0, 2.0]).count == 0


def test_inputs_of_every_accepted_kind_agree() -> None:
    values = [20.0, 8.0, 1.0, 0.9, 0.8, 0.7, 0.6]
    expected = lowest_log_gap(torch.tensor(values, dtype=F64))
    assert expected.count == 2
    for form in (values, tuple(values), np.array(values), torch.tensor(values)):
        assert lowest_log_gap(form).count == expected.count
    assert lowest_log_gap(torch.tensor([20, 8, 1, 1, 1, 1])).count == 2


@given(
    values=st.lists(st.floats(1e-2, 1e2), min_size=2, max_size=30),
    scale=st.floats(1e-6, 1e6),
)
def test_largest_log_gap_is_invariant_to_positive_scaling(values: list, scale: float) -> None:
    spectrum = torch.tensor(values, dtype=F64)
    logs = torch.log(spectrum.sort(descending=True).values)
    gaps = (logs[:-1] - logs[1:]).sort(descending=True).values
    assume(len(gaps) < 2 or float(gaps[0] - gaps[1]) > 1e-9)  # no near-tie for the argmax
    assume(float(spectrum.min()) > 1.001e-3 * float(spectrum.max()))  # clear of the floor
    plain, scaled = largest_log_gap(spectrum), largest_log_gap(scale * spectrum)
    assert plain.count == scaled.count
    assert scaled.score == pytest.approx(plain.score, rel=1e-9, abs=1e-12)
    assert scaled.edge == pytest.approx(scale * plain.edge, rel=1e-9)


# ---------------------------------------------------------------------------------------
# the class-mean subspace rule


@pytest.mark.parametrize("k", [1, 3, 7])
def test_means_in_the_span_of_the_top_k_eigenvectors(k: int) -> None:
    basis = _orthogonal(30, k)
    coefficients = torch.randn(k, 10, dtype=F64, generator=torch.Generator().manual_seed(k))
    result = class_mean_subspace(basis, basis[:, :k] @ coefficients, fraction=1.0)
    assert (result.count, result.edge, result.capped) == (k, None, False)
    assert result.score == pytest.approx(1.0, abs=1e-12)
    equal = class_mean_subspace(basis[:, :12], _equal_energy_means(basis, k, 10, 0))
    assert (equal.count, equal.capped) == (k, False)


def test_means_spread_over_every_direction_are_capped() -> None:
    basis = _orthogonal(30, 5)[:, :10]
    means = torch.randn(30, 4, dtype=F64, generator=torch.Generator().manual_seed(5))
    result = class_mean_subspace(basis, means)
    assert (result.count, result.capped) == (10, True)
    captured = (basis.T @ means).square().sum() / means.square().sum()
    assert result.score == pytest.approx(float(captured), rel=1e-12) and result.score < 0.9


def test_fraction_edge_cases() -> None:
    basis = torch.eye(4, dtype=F64)
    means = torch.tensor([[2.0], [1.0], [1.0], [0.0]], dtype=F64)  # energy 4, 1, 1, 0
    assert class_mean_subspace(basis, means, fraction=1e-12).count == 1
    assert class_mean_subspace(basis, means, fraction=4 / 6).count == 1  # reached exactly
    assert class_mean_subspace(basis, means, fraction=0.7).count == 2
    full = class_mean_subspace(basis, means, fraction=1.0)
    assert (full.count, full.score, full.capped) == (3, 1.0, False)
    assert class_mean_subspace(basis[:, 1:], means, fraction=1.0).capped


def test_the_rule_accepts_float32_and_numpy() -> None:
    basis = _orthogonal(20, 6)
    means = _equal_energy_means(basis, 3, 5, 6)
    expected = class_mean_subspace(basis, means, fraction=1.0).count
    assert expected == 3
    assert class_mean_subspace(basis.float(), means.float(), fraction=1.0).count == 3
    assert class_mean_subspace(basis.numpy(), means.numpy().tolist(), fraction=1.0).count == 3
    float32 = class_mean_subspace(basis.numpy().astype(np.float32), means.numpy(), fraction=1.0)
    assert float32.count == 3


@given(
    seed=st.integers(0, 2**31 - 1),
    fractions=st.lists(st.floats(1e-6, 1.0), min_size=2, max_size=2).map(sorted),
    scale=st.floats(1e-3, 1e3),
)
def test_subspace_count_is_monotone_in_fraction_and_scale_free(
    seed: int, fractions: list, scale: float
) -> None:
    gen = torch.Generator().manual_seed(seed)
    basis = _orthogonal(12, seed)[:, :8]
    means = torch.randn(12, 3, dtype=F64, generator=gen)
    low, high = (class_mean_subspace(basis, means, fraction=f) for f in fractions)
    assert low.count <= high.count and low.score <= high.score
    captured = (basis.T @ means).square().sum(1).cumsum(0) / means.square().sum()
    assume(float((captured - fractions[0]).abs().min()) > 1e-9)  # no tie at the threshold
    scaled = class_mean_subspace(basis, scale * means, fraction=fractions[0])
    assert scaled.count == low.count
    assert scaled.score == pytest.approx(low.score, rel=1e-12)


def test_count_outliers_sorts_eigenpairs_together() -> None:
    values = torch.cat([torch.tensor([40.0, 20.0, 10.0], dtype=F64), torch.rand(27, dtype=F64)])
    basis = _orthogonal(30, 7)
    means = _equal_energy_means(basis, 3, 4, 7)
    ascending = torch.argsort(values)
    counts = count_outliers(values[ascending], eigenvectors=basis[:, ascending], class_means=means)
    assert {rule: result.count for rule, result in counts.items()} == dict.fromkeys(
        COUNTING_RULES, 3
    )
    only_logs = count_outliers(values.numpy())
    assert tuple(only_logs) == COUNTING_RULES[:2]
    assert only_logs["lowest_log_gap"] == counts["lowest_log_gap"]


def test_count_outliers_passes_keywords_on() -> None:
    values = torch.tensor([100.0, 10.0, 9.0, 8.0, 7.0, *[1.0] * 20], dtype=F64)
    assert count_outliers(values, min_gap=2.0)["lowest_log_gap"].count == 1
    floored = count_outliers(values, floor=0.5)["lowest_log_gap"]  # all but 100 at 50
    assert (floored.count, floored.score) == (0, pytest.approx(math.log(2.0)))
    basis = torch.eye(25, dtype=F64)
    means = basis[:, :2] @ torch.tensor([[3.0], [1.0]], dtype=F64)
    subspace = count_outliers(values, eigenvectors=basis, class_means=means, fraction=0.95)
    assert subspace["class_mean_subspace"].count == 2


# ---------------------------------------------------------------------------------------
# near zero


def test_near_zero_fraction() -> None:
    assert near_zero_fraction([-10.0, 0.001, 5.0]) == pytest.approx(1 / 3)
    assert near_zero_fraction([1.0, 1e-3, 1.1e-3, 0.0]) == 0.5  # the threshold is inclusive
    assert near_zero_fraction(np.zeros(4)) == 1.0
    assert near_zero_fraction([1.0, 0.2, 0.01], relative=0.1) == pytest.approx(1 / 3)
    values = torch.randn(50, dtype=F64, generator=torch.Generator().manual_seed(8))
    assert near_zero_fraction(values) == near_zero_fraction(1024.0 * values)


# ---------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize(
    "function", [largest_log_gap, lowest_log_gap, near_zero_fraction, count_outliers]
)
def test_eigenvalue_errors(function) -> None:
    with pytest.raises(TypeError, match="eigenvalues must be a torch.Tensor, a numpy array"):
        function({"a": 1.0})
    with pytest.raises(TypeError, match="eigenvalues must be a torch.Tensor, a numpy array"):
        function("1.0")
    with pytest.raises(TypeError, match="eigenvalues must hold real numbers"):
        function(["a", "b"])
    with pytest.raises(TypeError, match="eigenvalues must hold real numbers"):
        function(torch.ones(3, dtype=torch.bool))
    with pytest.raises(TypeError, match="eigenvalues must hold real numbers"):
        function(torch.ones(3, dtype=torch.complex128))
    with pytest.raises(ValueError, match=r"eigenvalues must be a non-empty 1-D array \(n,\)"):
        function(torch.zeros(2, 2))
    with pytest.raises(ValueError, match="eigenvalues must be a non-empty 1-D"):
        function([])
    with pytest.raises(ValueError, match="eigenvalues must be finite"):
        function([1.0, math.nan])
    for bad in (math.inf, -math.inf):
        with pytest.raises(ValueError, match="eigenvalues must be finite, but it holds NaN or inf"):
            function(torch.tensor([3.0, bad, 1.0]))


def test_keyword_errors() -> None:
    values = [3.0, 2.0, 1.0]
    for rule in LOG_RULES:
        with pytest.raises(ValueError, match=r"floor must be in \(0, 1\)"):
            rule(values, floor=1.0)
        with pytest.raises(ValueError, match="floor must be a finite number > 0"):
            rule(values, floor=0.0)
        with pytest.raises(TypeError, match="floor must be a positive number"):
            rule(values, floor="small")
        with pytest.raises(ValueError, match="max_outliers must be >= 1"):
            rule(values, max_outliers=0)
        with pytest.raises(TypeError, match="max_outliers must be an int"):
            rule(values, max_outliers=2.0)
    with pytest.raises(ValueError, match="min_gap must be a finite number > 0"):
        lowest_log_gap(values, min_gap=-1.0)
    with pytest.raises(ValueError, match=r"relative must be in \(0, 1\)"):
        near_zero_fraction(values, relative=1.0)
    with pytest.raises(ValueError, match="relative must be a finite number > 0"):
        near_zero_fraction(values, relative=0.0)


def test_subspace_errors() -> None:
    basis, means = torch.eye(4, dtype=F64), torch.ones(4, 2, dtype=F64)
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\]"):
        class_mean_subspace(basis, means, fraction=1.5)
    with pytest.raises(ValueError, match="fraction must be a finite number > 0"):
        class_mean_subspace(basis, means, fraction=0.0)
    with pytest.raises(TypeError, match="fraction must be a positive number"):
        class_mean_subspace(basis, means, fraction=None)
    with pytest.raises(ValueError, match=r"eigenvectors must be a non-empty 2-D array \(n, m\)"):
        class_mean_subspace(torch.ones(4), means)
    with pytest.raises(ValueError, match="class_means must be a non-empty 2-D"):
        class_mean_subspace(basis, torch.ones(4))
    with pytest.raises(TypeError, match="class_means must be a torch.Tensor, a numpy array"):
        class_mean_subspace(basis, None)
    with pytest.raises(ValueError, match="must have the same number of rows"):
        class_mean_subspace(basis, torch.ones(3, 2))
    with pytest.raises(ValueError, match="eigenvectors must have orthonormal columns"):
        class_mean_subspace(2 * basis, means)
    with pytest.raises(ValueError, match=r"more columns \(5\) than rows \(4\)"):
        class_mean_subspace(torch.ones(4, 5), means)
    with pytest.raises(ValueError, match="class_means is all zeros"):
        class_mean_subspace(basis, torch.zeros(4, 2))
    with pytest.raises(ValueError, match="class_means must be finite"):
        class_mean_subspace(basis, torch.full((4, 2), math.inf))


def test_count_outliers_errors() -> None:
    values, basis, means = torch.arange(4.0, 0, -1), torch.eye(4), torch.ones(4, 2)
    with pytest.raises(ValueError, match="eigenvectors and class_means go together"):
        count_outliers(values, eigenvectors=basis)
    with pytest.raises(ValueError, match="eigenvectors and class_means go together"):
        count_outliers(values, class_means=means)
    with pytest.raises(ValueError, match="eigenvectors has 3 columns but there are 4"):
        count_outliers(values, eigenvectors=basis[:, :3], class_means=means)
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\]"):
        count_outliers(values, eigenvectors=basis, class_means=means, fraction=2.0)


# ---------------------------------------------------------------------------------------
# the edge gap and the agreed count: calibrated up to the paper's k = 50

BULK_SIZE = 300


def _planted(
    k: int, *, bulk: str = "linear", ratio: float = 1.3, dominant: float = 1.0, seed: int = 0
) -> torch.Tensor:
    """Descending top spectrum: ``k`` outliers spread over a factor 3, the lowest ``ratio``
    times the bulk's edge (1.3: the paper's gap at k = 20), the top one ``dominant`` times
    higher, above a bulk of :data:`BULK_SIZE` values."""
    below = _bulk(bulk, BULK_SIZE, seed).sort(descending=True).values
    spikes = float(below[0]) * ratio * torch.logspace(math.log10(3), 0, k, dtype=F64)
    spikes[0] *= dominant
    return torch.cat([spikes, below])


def _agreed(values: torch.Tensor, k: int, *, seed: int = 0, **keywords):
    """:func:`agreed_count` with ``k`` class means spread evenly over the top ``k``
    eigenvectors, and a Gauss-Newton spectrum of the same shape (outliers 0.9x, bulk 0.5x)."""
    basis = _orthogonal(len(values), seed)
    means = _equal_energy_means(basis, k, k, seed)
    gauss_newton = torch.cat([0.9 * values[:k], 0.5 * values[k:]])
    return agreed_count(
        values, eigenvectors=basis, class_means=means, gauss_newton=gauss_newton, **keywords
    )


def _no_gap(seed: int, n: int = BULK_SIZE) -> torch.Tensor:
    """A spectrum that thins out smoothly: consecutive ratios 1.03-1.16, as on digits."""
    gen = torch.Generator().manual_seed(seed)
    steps = 0.03 + 0.12 * torch.rand(n - 1, dtype=F64, generator=gen)
    return torch.exp(-torch.cat([torch.zeros(1, dtype=F64), steps.cumsum(0)]))


@pytest.mark.parametrize("k", [2, 3, 5, 10, 20, 35, 50])
@pytest.mark.parametrize("bulk", ["linear", "marchenko_pastur"])
def test_spread_outliers_are_counted_up_to_k_50(k: int, bulk: str) -> None:
    values = _planted(k, bulk=bulk, ratio=1.3 if bulk == "linear" else 2.0)
    gap = edge_gap(values)
    assert (gap.count, gap.capped) == (k, False), gap
    assert float(values[k]) < gap.edge < float(values[k - 1])
    assert _agreed(values, k).count == k
    # the fixed 90% subspace rule stops at ceil(0.9 k) when the energy is spread evenly
    basis = _orthogonal(len(values), 0)
    fixed = class_mean_subspace(basis, _equal_energy_means(basis, k, k, 0), fraction=0.9)
    assert fixed.count == math.ceil(0.9 * k - 1e-9)


@pytest.mark.parametrize("k", [2, 5, 20, 50])
def test_a_dominant_outlier_does_not_move_the_agreed_count(k: int) -> None:
    values = _planted(k, dominant=20.0)
    assert _agreed(values, k).count == k
    if k == 50:  # documented failure of the edge gap alone: 20x over packed outliers
        assert edge_gap(values).count == 1


@pytest.mark.parametrize("k", [3, 10, 50])
def test_a_second_group_of_outliers_below_the_class_means_is_not_counted(k: int) -> None:
    values = _planted(k)
    below = torch.cat([values[:k] * 30, values])  # k class outliers over a lower group
    # (sorted: the k scaled outliers, then the original k, then the bulk)
    if k < 50:  # the edge gap alone takes the lower group's gap
        assert edge_gap(below).count == 2 * k
    assert _agreed(below, k).count == k


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("k", [5, 10, 50])
def test_a_spectrum_without_a_gap_does_not_count_k(seed: int, k: int) -> None:
    values = _no_gap(seed)
    assert edge_gap(values).count == 0
    result = _agreed(values, k, seed=seed)
    assert result.count == 0 and result.edge == float(values[0])
    # the class means align with the top k eigenvectors: the subspace rule counts them
    basis = _orthogonal(len(values), seed)
    assert class_mean_subspace(basis, _equal_energy_means(basis, k, k, seed)).count >= 0.9 * k


def test_means_that_do_not_point_at_the_gap_count_nothing() -> None:
    values = _planted(5)
    basis = _orthogonal(len(values), 0)
    means = basis[:, 100:110]  # deep in the bulk
    assert agreed_count(values, eigenvectors=basis, class_means=means).count == 0
    flat_gn = _no_gap(1, len(values))  # the Gauss-Newton has no gap: no agreement
    aligned = _equal_energy_means(basis, 5, 5, 0)
    result = agreed_count(values, eigenvectors=basis, class_means=aligned, gauss_newton=flat_gn)
    assert result.count == 0


def test_edge_gap_keywords_and_limits() -> None:
    values = _planted(5)
    limited = edge_gap(values, max_outliers=3)  # the gap at 5 is out of reach
    assert limited.count < 5 and limited.capped == (limited.count == 3)
    assert edge_gap(values, max_outliers=5).capped
    assert not edge_gap(values).capped
    assert edge_gap(values, min_contrast=1e6).count == 0
    flat = torch.cat([torch.tensor([5.0, 4.0], dtype=F64), torch.ones(20, dtype=F64)])
    result = edge_gap(flat)  # a gap over a flat bulk is infinitely many spacings
    assert result.count == 2 and result.score == math.inf
    at_floor = torch.cat([torch.tensor([5.0, 4.0], dtype=F64), torch.zeros(20, dtype=F64)])
    assert edge_gap(at_floor).count == 0  # no bulk spacing to measure the gap against
    assert edge_gap(values[torch.randperm(len(values))]) == edge_gap(values)


@given(
    k=st.integers(min_value=1, max_value=50),
    scale=st.floats(min_value=1e-6, max_value=1e6),
    ratio=st.floats(min_value=1.3, max_value=100.0),
)
def test_edge_gap_counts_planted_outliers_at_any_scale(k: int, scale: float, ratio: float) -> None:
    values = _planted(k, ratio=ratio)
    assert edge_gap(values).count == k
    assert edge_gap(scale * values).count == k


@given(seed=st.integers(min_value=0, max_value=2**31 - 1))
def test_edge_gap_finds_no_gap_in_a_smoothly_thinning_spectrum(seed: int) -> None:
    assert edge_gap(_no_gap(seed)).count == 0


def test_edge_gap_errors() -> None:
    values = _planted(3)
    with pytest.raises(ValueError, match="window must be >= 2"):
        edge_gap(values, window=1)
    with pytest.raises(TypeError, match="window must be an int"):
        edge_gap(values, window=2.5)
    with pytest.raises(ValueError, match=r"min_contrast must be > 1"):
        edge_gap(values, min_contrast=1.0)
    with pytest.raises(ValueError, match="min_contrast must be a finite number > 0"):
        edge_gap(values, min_contrast=-2.0)
    with pytest.raises(ValueError, match=r"floor must be in \(0, 1\)"):
        edge_gap(values, floor=2.0)
    with pytest.raises(ValueError, match="max_outliers must be >= 1"):
        edge_gap(values, max_outliers=0)
    with pytest.raises(ValueError, match="needs at least window \\+ 2 = 12 eigenvalues, got 11"):
        edge_gap(values[:11])
    with pytest.raises(ValueError, match="largest eigenvalue must be positive"):
        edge_gap(-values)
    with pytest.raises(ValueError, match="eigenvalues must be finite"):
        edge_gap(torch.cat([values, torch.tensor([math.nan], dtype=F64)]))
    with pytest.raises(TypeError, match="eigenvalues must hold real numbers"):
        edge_gap(["a"] * 20)


def test_agreed_count_errors() -> None:
    values = _planted(3)
    basis = _orthogonal(len(values), 0)
    means = _equal_energy_means(basis, 3, 3, 0)
    with pytest.raises(ValueError, match="eigenvectors has 20 columns but there are"):
        agreed_count(values, eigenvectors=basis[:, :20], class_means=means)
    with pytest.raises(ValueError, match="class_means is all zeros"):
        agreed_count(values, eigenvectors=basis, class_means=torch.zeros_like(means))
    with pytest.raises(ValueError, match="eigenvectors must have orthonormal columns"):
        agreed_count(values, eigenvectors=2 * basis, class_means=means)
    with pytest.raises(ValueError, match="needs at least window \\+ 2"):
        agreed_count(values, eigenvectors=basis, class_means=means, gauss_newton=values[:5])
    with pytest.raises(ValueError, match="gauss_newton must be finite"):
        agreed_count(values, eigenvectors=basis, class_means=means, gauss_newton=values * math.inf)
    with pytest.raises(ValueError, match=r"min_contrast must be > 1"):
        agreed_count(values, eigenvectors=basis, class_means=means, min_contrast=0.5)
