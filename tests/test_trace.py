"""Hutchinson and Hutch++ trace estimates against exact traces (float64)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from hesskit.trace_estimation import TraceEstimate, rademacher, trace
from tests.matrices import CountingOperator, spectral_matrix

F64 = torch.float64


def _hutchinson_variance(a: torch.Tensor, num_matvecs: int) -> float:
    return float(2 * (a.square().sum() - a.diagonal().square().sum()) / num_matvecs)


def _estimates(a: torch.Tensor, num_matvecs: int, method: str, num_seeds: int) -> list:
    return [trace(a, num_matvecs, method=method, generator=s) for s in range(num_seeds)]


A = spectral_matrix(torch.linspace(-2.0, 5.0, 40, dtype=F64), 0)


def test_hutchinson_unbiased_with_analytic_variance_and_consistent_stderr() -> None:
    num_matvecs, num_seeds = 10, 400
    results = _estimates(A, num_matvecs, "hutchinson", num_seeds)
    estimates = torch.stack([r.estimate for r in results])
    variance = _hutchinson_variance(A, num_matvecs)
    assert abs(float(estimates.mean() - A.trace())) < 4 * math.sqrt(variance / num_seeds)
    assert 0.75 < float(estimates.var()) / variance < 1.33
    stderr = torch.stack([r.stderr for r in results]).square().mean().sqrt()
    assert 0.5 <= float(stderr / estimates.std()) <= 2


def test_hutchpp_unbiased_and_stderr_consistent() -> None:
    num_seeds = 200
    results = _estimates(A, 12, "hutch++", num_seeds)
    estimates = torch.stack([r.estimate for r in results])
    spread = float(estimates.std())
    assert abs(float(estimates.mean() - A.trace())) < 4 * spread / math.sqrt(num_seeds)
    stderr = torch.stack([r.stderr for r in results]).square().mean().sqrt()
    assert 0.5 <= float(stderr) / spread <= 2


def test_hutchpp_beats_hutchinson_on_low_rank_plus_noise() -> None:
    gen = torch.Generator().manual_seed(1)
    eigenvalues = torch.rand(300, dtype=F64, generator=gen) * 0.1
    eigenvalues[:10] = torch.linspace(10.0, 100.0, 10, dtype=F64)
    a = spectral_matrix(eigenvalues, 1)
    variances = {
        method: float(torch.stack([r.estimate for r in _estimates(a, 60, method, 50)]).var())
        for method in ("hutchinson", "hutch++")
    }
    assert variances["hutch++"] / variances["hutchinson"] < 0.5


# n >= 30: a sketch of k <= 8 Rademacher vectors is rank-deficient with probability about
# k^2 2^-n, and then Hutch++ is not exact (at n = 10, rank 6 it is a few percent, which the
# explore profile's 200 examples find: seed 18041327 draws a 10 x 6 sketch of rank 5).
@given(
    rank=st.integers(1, 8),
    extra=st.integers(0, 5),
    n=st.integers(30, 60),
    seed=st.integers(0, 2**31 - 1),
)
def test_hutchpp_exact_for_low_rank(rank: int, extra: int, n: int, seed: int) -> None:
    eigenvalues = torch.zeros(n, dtype=F64)
    eigenvalues[:rank] = torch.linspace(-3.0, 7.0, rank, dtype=F64) + 0.5
    num_matvecs = 3 * rank + extra
    result = trace(
        spectral_matrix(eigenvalues, seed), num_matvecs, method="hutch++", generator=seed
    )
    tolerance = 1e-9 * float(eigenvalues.abs().sum())
    assert abs(float(result.estimate - eigenvalues.sum())) < tolerance
    assert float(result.stderr) < tolerance or math.isnan(float(result.stderr))
    assert result.num_matvecs <= num_matvecs and result.method == "hutch++"


def test_diagonal_matrix_is_exact_for_rademacher() -> None:
    result = trace(torch.diag(torch.arange(1.0, 11.0, dtype=F64)), 7, generator=3)
    assert float(result.estimate) == 55.0 and float(result.stderr) == 0.0


def test_single_probe_has_nan_stderr_and_dtype_is_kept() -> None:
    result = trace(A.float(), 1)
    assert isinstance(result, TraceEstimate)
    assert result.estimate.dtype == torch.float32 and result.estimate.ndim == 0
    assert math.isnan(float(result.stderr))
    assert result.num_matvecs == 1 and result.method == "hutchinson"


def test_block_products_and_budget() -> None:
    op = CountingOperator(A)
    assert trace(op, 9).num_matvecs == 9 and op.widths == [9]
    op.widths.clear()
    assert trace(op, 10, method="hutch++").num_matvecs == 10
    assert op.widths == [3, 7]


def test_reproducible() -> None:
    first = trace(A, 9, method="hutch++", generator=5)
    second = trace(A, 9, method="hutch++", generator=torch.Generator().manual_seed(5))
    assert torch.equal(first.estimate, second.estimate)
    assert not torch.equal(first.estimate, trace(A, 9, method="hutch++", generator=6).estimate)


def test_rademacher_probes() -> None:
    block = rademacher(50, 4, dtype=F64, generator=1)
    assert block.shape == (50, 4) and block.dtype == F64
    assert set(block.unique().tolist()) == {-1.0, 1.0}
    assert torch.equal(block, rademacher(50, 4, dtype=F64, generator=1))


def test_errors() -> None:
    with pytest.raises(TypeError, match="op must be"):
        trace(np.eye(3), 3)
    with pytest.raises(ValueError, match="square"):
        trace(torch.zeros(2, 3), 3)
    with pytest.raises(ValueError, match="method must be one of"):
        trace(A, 3, method="girard")
    with pytest.raises(ValueError, match=r"num_matvecs must be >= 3 for method='hutch\+\+'"):
        trace(A, 2, method="hutch++")
    with pytest.raises(ValueError, match="num_matvecs must be >= 1"):
        trace(A, 0)
    with pytest.raises(TypeError, match="num_matvecs must be an int"):
        trace(A, 3.0)
    with pytest.raises(TypeError, match="generator must be"):
        trace(A, 3, generator="seed")
