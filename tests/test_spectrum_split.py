"""Bulk/outlier split on planted spectra: random-matrix bulks plus spikes, Hessian-like."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from hesskit.density import SpectralDensity, spectral_density
from hesskit.spectrum import SpectrumSplit, split
from tests.matrices import spectral_matrix

F64 = torch.float64


def _bulk(kind: str, n: int, seed: int) -> torch.Tensor:
    """Marchenko-Pastur (X^T X / m, X Gaussian m x n) or Wigner shifted to [1, 5]."""
    gen = torch.Generator().manual_seed(seed)
    if kind == "marchenko_pastur":
        x = torch.randn(2 * n, n, dtype=F64, generator=gen)
        return torch.linalg.eigvalsh(x.T @ x / (2 * n))
    g = torch.randn(n, n, dtype=F64, generator=gen)
    return torch.linalg.eigvalsh((g + g.T) / math.sqrt(2 * n)) + 3


def _hessian_like(seed: int, log_uniform_bulk: bool) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    zeros = torch.rand(1800, dtype=F64, generator=gen) * (1e-8 + 1e-6) - 1e-6
    unit = torch.rand(191, dtype=F64, generator=gen)
    bulk = 10 ** (unit * 2 - 4) if log_uniform_bulk else 1e-4 + unit * (1e-2 - 1e-4)
    outliers = 0.5 + torch.rand(9, dtype=F64, generator=gen) * 4.5
    values = torch.cat([zeros, bulk, outliers])
    return values[torch.randperm(2000, generator=gen)], outliers


def _assert_split(result: SpectrumSplit, bulk: torch.Tensor, spikes: torch.Tensor) -> None:
    assert result.num_outliers == spikes.numel() == result.outliers.numel()
    torch.testing.assert_close(result.outliers, spikes.sort(descending=True).values)
    torch.testing.assert_close(result.bulk, bulk.sort(descending=True).values)
    assert float(bulk.max()) <= result.edge
    if spikes.numel():
        assert result.edge < float(spikes.min())


@given(
    kind=st.sampled_from(["marchenko_pastur", "wigner"]),
    factors=st.lists(st.floats(5.0, 50.0), min_size=0, max_size=10),
    n=st.integers(100, 300),
    seed=st.integers(0, 2**31 - 1),
)
def test_planted_spikes_are_found_exactly(kind: str, factors: list, n: int, seed: int) -> None:
    bulk = _bulk(kind, n, seed)
    spikes = torch.tensor(factors, dtype=F64) * bulk.max()
    values = torch.cat([bulk, spikes])
    values = values[torch.randperm(values.numel(), generator=torch.Generator().manual_seed(seed))]
    _assert_split(split(values), bulk, spikes)


@given(seed=st.integers(0, 2**31 - 1), log_uniform_bulk=st.booleans())
def test_hessian_like_spectrum_has_nine_outliers(seed: int, log_uniform_bulk: bool) -> None:
    values, outliers = _hessian_like(seed, log_uniform_bulk)
    result = split(values)
    assert result.num_outliers == 9
    torch.testing.assert_close(result.outliers, outliers.sort(descending=True).values)
    assert 1e-2 < result.edge < float(outliers.min())
    assert result.bulk.numel() == 1991


def test_pure_bulk_has_no_outliers() -> None:
    for kind in ("marchenko_pastur", "wigner"):
        bulk = _bulk(kind, 200, 0)
        result = split(bulk)
        assert result.num_outliers == 0 and result.outliers.numel() == 0
        assert result.edge == float(bulk.max())
        torch.testing.assert_close(result.bulk, bulk.flip(0))


def test_spread_outliers_stay_together() -> None:
    bulk = _bulk("wigner", 200, 1)
    spikes = torch.tensor([5.0, 50.0], dtype=F64) * bulk.max()
    _assert_split(split(torch.cat([bulk, spikes])), bulk, spikes)


def test_keywords_change_the_decision() -> None:
    bulk = _bulk("marchenko_pastur", 200, 2)
    values = torch.cat([bulk, bulk.max() * torch.tensor([3.0, 40.0], dtype=F64)])
    assert split(values).num_outliers == 2
    assert split(values, min_gap=2.0).num_outliers == 1
    assert split(values, min_gap=5.0).num_outliers == 0
    assert split(values, max_outliers=1).num_outliers == 1


def test_non_positive_spectrum_and_single_value() -> None:
    assert split(-torch.rand(10, dtype=F64)).num_outliers == 0
    result = split(torch.tensor([2.0]))
    assert result.num_outliers == 0 and result.edge == 2.0


def test_spectral_density_input() -> None:
    bulk = _bulk("marchenko_pastur", 300, 3)
    spikes = torch.tensor([10.0, 15.0, 20.0, 30.0, 50.0], dtype=F64)
    density = spectral_density(spectral_matrix(torch.cat([bulk, spikes]), 3), generator=4)
    result = split(density)
    assert result.num_outliers == 5
    torch.testing.assert_close(result.outliers, spikes.flip(0), rtol=1e-8, atol=0)
    assert float(bulk.max()) <= result.edge < 10
    assert float(result.bulk.max()) <= result.edge


def test_spectral_density_of_hessian_like_spectrum() -> None:
    gen = torch.Generator().manual_seed(5)
    outliers = torch.tensor([0.7, 1.5, 2.0, 4.0], dtype=F64)
    values = torch.cat(
        [
            torch.rand(500, dtype=F64, generator=gen) * (1e-8 + 1e-6) - 1e-6,
            1e-4 + torch.rand(96, dtype=F64, generator=gen) * 1e-2,
            outliers,
        ]
    )
    result = split(spectral_density(spectral_matrix(values, 5), generator=5))
    assert result.num_outliers == 4
    torch.testing.assert_close(result.outliers, outliers.flip(0), rtol=1e-8, atol=0)


def test_errors() -> None:
    with pytest.raises(ValueError, match="non-empty 1-D"):
        split(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="non-empty 1-D"):
        split(torch.zeros(0))
    with pytest.raises(TypeError, match="eigenvalues must be a 1-D floating-point"):
        split([1.0, 2.0])
    with pytest.raises(TypeError, match="eigenvalues must be a 1-D floating-point"):
        split(torch.arange(4))
    values = torch.rand(10)
    with pytest.raises(ValueError, match="rule must be one of"):
        split(values, rule="largest_gap")
    with pytest.raises(ValueError, match="floor must be in"):
        split(values, floor=1.0)
    with pytest.raises(ValueError, match="min_gap must be a finite number > 0"):
        split(values, min_gap=0.0)
    with pytest.raises(ValueError, match="max_outliers must be >= 1"):
        split(values, max_outliers=0)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_non_finite_eigenvalues_are_rejected(bad: float, dtype: torch.dtype) -> None:
    values = torch.tensor([20.0, 8.0, 1.0, bad, 0.5], dtype=dtype)
    with pytest.raises(ValueError, match=r"eigenvalues must be finite, .*NaN or inf \(1 of 5"):
        split(values)


@pytest.mark.parametrize("part", ["nodes", "weights"])
def test_non_finite_spectral_density_is_rejected(part: str) -> None:
    density = spectral_density(torch.diag(torch.arange(1.0, 11.0, dtype=F64)), generator=0)
    broken = {"nodes": density.nodes.clone(), "weights": density.weights.clone()}
    broken[part][0, -1] = math.nan
    bad = SpectralDensity(broken["nodes"], broken["weights"], density.num_matvecs, density.n)
    with pytest.raises(ValueError, match="eigenvalues must be finite, but the SpectralDensity"):
        split(bad)
