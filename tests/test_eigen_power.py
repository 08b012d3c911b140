"""Power iteration with deflation (the baseline), and how it compares with Lanczos."""

from __future__ import annotations

import pytest
import torch

from hesskit.eigen import eigsh, power_iteration
from hesskit.eigen.result import default_tol
from tests.matrices import CountingOperator, spectral_matrix
from tests.rounding import orthogonality_error, product_error

F64 = torch.float64


GAPPED = torch.cat([torch.tensor([10.0, -8.0, 6.0]), torch.linspace(-1, 1, 47)]).double()


@pytest.mark.parametrize("tol", [None, 1e-6])
def test_finds_top_magnitude_pairs_on_a_gapped_spectrum(tol: float | None) -> None:
    matrix = CountingOperator(spectral_matrix(GAPPED))
    result = power_iteration(matrix, 3, tol=tol)
    values, vectors, tol = result.eigenvalues, result.eigenvectors, result.tol
    residuals = torch.linalg.vector_norm(matrix.matrix @ vectors - vectors * values, dim=0)
    # the two products of one vector may run different kernels (gemv, gemm)
    slack = 2 * product_error(matrix.matrix)
    torch.testing.assert_close(result.residuals, residuals, rtol=1e-6, atol=slack)
    assert bool(((values - GAPPED[:3]).abs() <= residuals + slack).all())
    orthogonality = orthogonality_error(50, 3, F64)
    torch.testing.assert_close(
        vectors.T @ vectors, torch.eye(3, dtype=F64), atol=orthogonality, rtol=0
    )
    assert result.num_matvecs == matrix.columns < 1000 * 3
    # later pairs inherit the earlier pairs' residuals through the deflation
    assert bool((residuals <= 2 * tol * values.abs().max()).all())
    assert result.converged == bool((residuals <= tol * values.abs()).all())


def test_single_pair_converges_on_the_true_residual() -> None:
    matrix = spectral_matrix(GAPPED).float()
    result = power_iteration(matrix, 1, generator=4)
    assert result.converged
    assert result.tol == default_tol(torch.float32)
    assert result.eigenvalues.dtype == torch.float32
    assert float(result.residuals[0]) <= result.tol * 10.0
    assert abs(float(result.eigenvalues[0]) - 10.0) <= float(result.residuals[0]) + 1e-5


def test_an_exact_eigenvector_reports_the_rounding_of_the_pair_not_zero() -> None:
    """``v0 = e_1`` of a diagonal matrix: the product cancels exactly, and a residual of 0
    would claim more than a pair stored in floating point can (``eps * |lambda|``)."""
    v0 = torch.zeros(6, dtype=F64)
    v0[0] = 1.0
    result = power_iteration(torch.diag(torch.arange(6.0, 0.0, -1.0, dtype=F64)), 1, v0=v0)
    assert result.converged and result.num_matvecs == 1
    assert float(result.residuals[0]) == torch.finfo(F64).eps * 6.0


def test_v0_starts_the_first_pair() -> None:
    spectrum = torch.tensor([1.0, 5.0, 2.0, 3.0], dtype=F64)
    v0 = torch.tensor([0.0, 2.0, 0.0, 0.0], dtype=F64)
    result = power_iteration(torch.diag(spectrum), 1, v0=v0)
    assert result.converged
    assert result.num_matvecs == 1
    torch.testing.assert_close(result.eigenvectors[:, 0], v0 / 2)


def test_same_seed_is_bitwise_reproducible() -> None:
    matrix = spectral_matrix(GAPPED)
    first, again = power_iteration(matrix, 2, generator=5), power_iteration(matrix, 2, generator=5)
    assert torch.equal(first.eigenvectors, again.eigenvectors)
    assert torch.equal(first.eigenvalues, again.eigenvalues)
    assert first.num_matvecs == again.num_matvecs


@pytest.mark.parametrize(("k", "max_matvecs"), [(1, 1), (3, 2), (3, 20)])
def test_small_budget_returns_unconverged(k: int, max_matvecs: int) -> None:
    matrix = CountingOperator(spectral_matrix(1 / torch.arange(1, 101, dtype=F64)))
    result = power_iteration(matrix, k, max_matvecs=max_matvecs)
    assert not result.converged
    assert result.num_matvecs == matrix.columns <= max(max_matvecs, k)


def test_lanczos_needs_far_fewer_matvecs_than_power_iteration() -> None:
    spectrum = 1 / torch.arange(1, 401, dtype=F64)
    matrix = spectral_matrix(spectrum)
    power = power_iteration(matrix, 10)
    assert power.num_matvecs < 1000 * 10  # every pair stopped on its test, none on budget
    # eigsh's tol is relative to max|lambda|: scale it so each pair meets power's test
    lanczos = eigsh(matrix, 10, tol=power.tol * float(spectrum[9] / spectrum[0]))
    assert lanczos.converged
    assert bool((lanczos.residuals <= power.tol * lanczos.eigenvalues.abs()).all())
    assert lanczos.num_matvecs <= power.num_matvecs / 5
    torch.testing.assert_close(lanczos.eigenvalues, spectrum[:10], atol=1e-12, rtol=0)


MATRIX = torch.eye(10, dtype=F64)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"op": torch.ones(3, 4)}, ValueError, "square"),
        ({"op": "matrix"}, TypeError, "LinearOperator or a square torch.Tensor"),
        ({"k": 0}, ValueError, "k must be >= 1"),
        ({"k": 10}, ValueError, "k must be < n"),
        ({"k": None}, TypeError, "k must be an int"),
        ({"tol": 0}, ValueError, "tol must be a finite number > 0"),
        ({"tol": float("nan")}, ValueError, "tol must be a finite number > 0"),
        ({"max_matvecs": 0}, ValueError, "max_matvecs must be >= 1"),
        ({"v0": torch.ones(10, 1, dtype=F64)}, ValueError, r"v0 must have shape \(10,\)"),
        ({"v0": torch.zeros(10, dtype=F64)}, ValueError, "v0 must be finite and nonzero"),
        ({"v0": torch.ones(10, dtype=torch.float32)}, TypeError, "v0 has dtype"),
        ({"generator": 1.5}, TypeError, "generator must be a torch.Generator"),
    ],
)
def test_invalid_arguments_raise(kwargs: dict, error: type[Exception], match: str) -> None:
    arguments = {"op": MATRIX, "k": 2} | kwargs
    with pytest.raises(error, match=match):
        power_iteration(arguments.pop("op"), arguments.pop("k"), **arguments)
