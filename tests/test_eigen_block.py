"""Block thick-restart Lanczos (``eigsh(..., block_size=b)``) against dense float64 truth."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import hesskit
from hesskit.eigen import eigsh
from tests.cases import CASES, dense_loss_hessian
from tests.matrices import CountingOperator, spectral_matrix
from tests.rounding import krylov_error, orthogonality_error

F64 = torch.float64


def _top_with_copies(top: list[float], n: int, seed: int = 0) -> torch.Tensor:
    """``top`` followed by ``n - len(top)`` values spread below ``min(top) - 1``."""
    low = min(top) - 1.0
    rest = torch.rand(n - len(top), generator=torch.Generator().manual_seed(seed), dtype=F64)
    return torch.cat([torch.tensor(top, dtype=F64), low * rest])


def _expected(spectrum: torch.Tensor, which: str, k: int) -> torch.Tensor:
    if which == "LA":
        return spectrum.sort(descending=True).values[:k]
    if which == "SA":
        return spectrum.sort().values[:k]
    return spectrum[spectrum.abs().argsort(descending=True, stable=True)][:k]


def test_a_triple_top_eigenvalue_comes_back_three_times():
    # the case: a rotated diagonal with 10, 10, 10, 9, 8, ...; single-vector
    # Lanczos returns 10, 10, 9, 8 with converged=True, even with ncv = n
    spectrum = _top_with_copies([10.0, 10.0, 10.0, 9.0, 8.0], 60)
    matrix = spectral_matrix(spectrum)
    single = eigsh(matrix, 4, generator=0, ncv=60)
    assert single.converged  # what the single-vector docstring warns about:
    assert int(((single.eigenvalues - 10).abs() < 1e-9).sum()) < 3  # a copy is missing
    for b in (3, 4):
        result = eigsh(matrix, 4, generator=0, block_size=b)
        assert result.converged
        expected = torch.tensor([10.0, 10.0, 10.0, 9.0], dtype=F64)
        torch.testing.assert_close(result.eigenvalues, expected, atol=1e-9, rtol=0)


@given(
    multiplicity=st.integers(2, 4),
    extra=st.integers(0, 2),
    n=st.integers(30, 70),
    which=st.sampled_from(["LA", "SA", "LM"]),
    seed=st.integers(0, 2**16),
)
def test_every_copy_of_a_repeated_wanted_eigenvalue_is_found(multiplicity, extra, n, which, seed):
    values = [3.0] * multiplicity + [2.5] * 2
    spectrum = _top_with_copies(values, n, seed)
    if which == "SA":
        spectrum = -spectrum
    matrix = spectral_matrix(spectrum, seed=seed)
    k = multiplicity + 1
    result = eigsh(matrix, k, which=which, generator=seed, block_size=multiplicity + extra)
    assert result.converged
    torch.testing.assert_close(result.eigenvalues, _expected(spectrum, which, k), atol=1e-8, rtol=0)


def test_residuals_are_the_true_ones_and_the_vectors_orthonormal():
    spectrum = _top_with_copies([4.0, 4.0, 3.0], 50)
    matrix = spectral_matrix(spectrum)
    result = eigsh(matrix, 3, generator=1, block_size=2, tol=1e-6)
    true = torch.linalg.vector_norm(
        matrix @ result.eigenvectors - result.eigenvectors * result.eigenvalues, dim=0
    )
    n = matrix.shape[0]
    torch.testing.assert_close(result.residuals, true, atol=krylov_error(matrix, n), rtol=1e-6)
    gram = result.eigenvectors.T @ result.eigenvectors
    eye = torch.eye(3, dtype=F64)
    torch.testing.assert_close(gram, eye, atol=orthogonality_error(n, n, F64), rtol=0)


def test_thick_restarts_and_the_product_count():
    spectrum = _top_with_copies([6.0, 6.0, 5.9, 5.8], 200)
    op = CountingOperator(spectral_matrix(spectrum))
    result = eigsh(op, 4, generator=0, block_size=2, ncv=12)  # a restart every few blocks
    assert result.converged
    assert result.num_matvecs == op.columns
    assert max(op.widths) == 2
    torch.testing.assert_close(result.eigenvalues, spectrum[:4], atol=1e-8, rtol=0)


def test_a_low_rank_operator_whose_blocks_lose_rank():
    spectrum = torch.zeros(40, dtype=F64)
    spectrum[:2] = torch.tensor([2.0, 2.0], dtype=F64)
    result = eigsh(spectral_matrix(spectrum), 4, generator=0, block_size=3)
    assert result.converged
    expected = torch.tensor([2.0, 2.0, 0.0, 0.0], dtype=F64)
    torch.testing.assert_close(result.eigenvalues, expected, atol=1e-10, rtol=0)


def test_a_small_budget_returns_unconverged_within_it():
    spectrum = _top_with_copies([6.0, 6.0, 5.99], 300)
    op = CountingOperator(spectral_matrix(spectrum))
    result = eigsh(op, 3, generator=0, block_size=3, max_matvecs=10)
    assert not result.converged
    assert result.num_matvecs == op.columns <= 10


def test_same_seed_same_bits_and_v0_is_the_first_column():
    matrix = spectral_matrix(_top_with_copies([3.0, 3.0, 2.0], 40))
    a = eigsh(matrix, 3, generator=5, block_size=2)
    b = eigsh(matrix, 3, generator=5, block_size=2)
    assert torch.equal(a.eigenvalues, b.eigenvalues)
    assert torch.equal(a.eigenvectors, b.eigenvectors)
    op = CountingOperator(matrix)
    v0 = torch.ones(40, dtype=F64)
    eigsh(op, 3, block_size=2, v0=v0)
    assert op.widths[0] == 2


def test_block_solver_on_a_model_hessian():
    model, X, Y = CASES["mlp-tanh"].build(F64)
    H = hesskit.hessian(model, nn.functional.cross_entropy, (X, Y))
    result = eigsh(H, 3, generator=0, block_size=3)
    dense = torch.linalg.eigvalsh(dense_loss_hessian(model, nn.functional.cross_entropy, X, Y))
    assert result.converged
    torch.testing.assert_close(result.eigenvalues, dense.flip(0)[:3], atol=1e-9, rtol=0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"block_size": 0}, ValueError, "block_size must be >= 1 and <= 37"),
        ({"block_size": 38}, ValueError, "block_size must be >= 1 and <= 37"),
        ({"block_size": 2.0}, TypeError, "block_size must be an int"),
        ({"block_size": 3, "ncv": 5}, ValueError, "ncv must be >= 6 and <= 40"),
    ],
)
def test_invalid_block_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        eigsh(spectral_matrix(torch.arange(40, dtype=F64)), 3, **kwargs)
