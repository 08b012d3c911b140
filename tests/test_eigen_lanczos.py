"""Thick-restart Lanczos (hesskit.eigen.eigsh) against dense float64 ground truth."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hesskit.eigen import EigenResult, eigsh
from hesskit.eigen.lanczos import LanczosState, _lanczos_step, _ritz_pairs, _thick_restart
from hesskit.eigen.result import default_tol, wanted_order
from tests.matrices import CountingOperator, spectral_matrix
from tests.rounding import krylov_error, orthogonality_error

F64 = torch.float64


def expected_order(eigenvalues: torch.Tensor, which: str) -> torch.Tensor:
    """Eigenvalues sorted the way eigsh returns them for ``which``."""
    return eigenvalues[torch.as_tensor(wanted_order(eigenvalues.cpu().numpy(), which))]


def assert_matches(matrix: torch.Tensor, result: EigenResult, which: str) -> None:
    """Residual-derived eigenvalue bounds, ordering, orthonormality, honest residuals.

    The slacks are rounding bounds (:mod:`tests.rounding`) for a basis of at most n
    vectors; a reported residual may not sit below the true one by more than that, nor
    below the rounding of the pair itself (``eps * max|lambda|``).
    """
    k, n = result.eigenvalues.numel(), matrix.shape[0]
    truth = torch.linalg.eigvalsh(matrix.double())
    slack = krylov_error(matrix, basis_size=n)
    values, vectors = result.eigenvalues.double(), result.eigenvectors.double()
    residuals = torch.linalg.vector_norm(matrix.double() @ vectors - vectors * values, dim=0)
    torch.testing.assert_close(result.residuals.double(), residuals, rtol=0.1, atol=slack)
    floor = torch.finfo(matrix.dtype).eps * float(values.abs().max())
    assert bool((result.residuals >= floor).all()), (result.residuals, floor)
    eye = torch.eye(k, dtype=F64)
    orthogonality = orthogonality_error(n, n, matrix.dtype)
    torch.testing.assert_close(vectors.T @ vectors, eye, rtol=0, atol=orthogonality)
    expected = expected_order(truth, which)[:k]
    gaps = (truth[None, :] - expected[:, None]).abs().sort(dim=1).values[:, 1]
    bound = torch.where(gaps > residuals, residuals**2 / (gaps - residuals), residuals)
    error = (values - expected).abs()
    assert bool((error <= torch.minimum(bound, residuals) + slack).all()), (error, bound)
    assert np.array_equal(wanted_order(values.numpy(), which), np.arange(k))


@st.composite
def problems(draw: st.DrawFn) -> tuple[torch.Tensor, int, str]:
    """Spectra with k wanted eigenvalues (spread or clustered) beyond a gap, the rest in
    [-1, 1] (spread or heavily repeated), and ``which``."""
    n = draw(st.integers(12, 80))
    k = draw(st.integers(1, min(6, n - 2)))
    which = draw(st.sampled_from(["LA", "SA", "LM"]))
    gap = draw(st.sampled_from([0.05, 0.3, 1.0]))
    spacing = draw(st.sampled_from([1e-3, 0.2]))
    repeated = draw(st.booleans())
    seed = draw(st.integers(0, 2**16))
    gen = torch.Generator().manual_seed(seed)
    rest = torch.rand(n - k, generator=gen, dtype=F64) * 2 - 1
    if repeated:
        rest = torch.tensor([-0.6, 0.1, 0.8], dtype=F64)[torch.arange(n - k) % 3]
    wanted = 1 + gap + spacing * torch.arange(k, dtype=F64)
    if which == "SA":
        wanted = -wanted
    if which == "LM":
        wanted = wanted * torch.where(torch.rand(k, generator=gen) < 0.5, -1.0, 1.0).double()
    spectrum = torch.cat([wanted, rest])[torch.randperm(n, generator=gen)]
    return spectral_matrix(spectrum, seed), k, which


@given(problems())
@settings(deadline=None)
def test_eigsh_matches_dense_eigvalsh(problem: tuple[torch.Tensor, int, str]) -> None:
    matrix, k, which = problem
    result = eigsh(matrix, k, which=which)
    assert result.converged
    assert result.tol == default_tol(F64)
    assert_matches(matrix, result, which)


@pytest.mark.parametrize("chunk", [2**16, 7])
def test_lanczos_relation_holds_before_and_after_a_thick_restart(chunk, monkeypatch) -> None:
    """Also with the restart's columns rewritten in chunks of 7 (the last one partial)."""
    monkeypatch.setattr("hesskit.eigen.lanczos._RESTART_CHUNK", chunk)
    n, m = 60, 20
    matrix = spectral_matrix(torch.linspace(-1, 3, n, dtype=F64))
    gen = torch.Generator().manual_seed(1)
    rows, proj = torch.zeros(m + 1, n, dtype=F64), np.zeros((m + 1, m + 1))
    rows[0] = torch.nn.functional.normalize(torch.randn(n, generator=gen, dtype=F64), dim=0)

    state = LanczosState(rows, proj, np.zeros(m + 1))

    def extend(start: int) -> None:
        state.begin = start
        for j in range(start, m):
            assert _lanczos_step(CountingOperator(matrix), state, j, gen)

    def assert_relation() -> None:
        v, t, beta, f = rows[:m].T, torch.as_tensor(proj[:m, :m]), proj[m, m - 1], rows[m]
        remainder = matrix @ v - v @ t - beta * torch.outer(f, torch.eye(m, dtype=F64)[m - 1])
        assert torch.linalg.matrix_norm(remainder) <= 1e-12
        torch.testing.assert_close(rows @ rows.T, torch.eye(m + 1, dtype=F64), atol=1e-13, rtol=0)
        assert np.array_equal(proj, proj.T)

    extend(0)
    assert_relation()
    pairs = _ritz_pairs(proj, m, "LA", state.defect)
    theta = np.linalg.eigvalsh(proj[:m, :m])
    np.testing.assert_allclose(pairs.values, theta[::-1], atol=1e-13, rtol=0)
    # the Lanczos residual norms are the true ones of the Ritz pairs V s_i
    vectors = rows[:m].T @ torch.as_tensor(pairs.vectors)
    values = torch.as_tensor(pairs.values)
    true = torch.linalg.vector_norm(matrix @ vectors - vectors * values, dim=0)
    np.testing.assert_allclose(pairs.residuals, true.numpy(), rtol=1e-6, atol=1e-13)
    assert pairs.beta == abs(proj[m, m - 1])
    start = _thick_restart(rows, proj, pairs, 8, state.defect)
    assert start == 8
    extend(start)
    assert_relation()


def test_invariant_subspace_restarts_with_a_fresh_vector() -> None:
    spectrum = torch.arange(1.0, 31.0, dtype=F64)
    v0 = torch.zeros(30, dtype=F64)
    v0[-1] = 1.0  # an eigenvector: the Krylov space is invariant after one step
    result = eigsh(torch.diag(spectrum), 4, v0=v0)
    assert result.converged
    torch.testing.assert_close(result.eigenvalues, spectrum.flip(0)[:4], atol=1e-10, rtol=0)


def test_low_rank_operator_breaks_down_every_step_and_still_converges() -> None:
    spectrum = torch.zeros(40, dtype=F64)
    spectrum[:2] = torch.tensor([2.0, -1.0], dtype=F64)
    matrix = spectral_matrix(spectrum)
    result = eigsh(matrix, 4)
    assert result.converged
    assert_matches(matrix, result, "LA")


@pytest.mark.parametrize("seed", range(6))
def test_a_breakdown_reports_the_rounding_it_dropped_not_zero(seed: int) -> None:
    """Three distinct eigenvalues besides the wanted one: the Krylov space is invariant
    after four steps, beta is set to 0 there, and the residuals of the relation alone
    were exactly 0 where the products give the rounding level (3.2e-14, seen on an AMD
    EPYC). Also a rank-one matrix, like a Hessian of a last layer with one output."""
    rest = torch.tensor([-0.6, 0.1, 0.8], dtype=F64)[torch.arange(47) % 3]
    for spectrum in (torch.cat([torch.tensor([1.3], dtype=F64), rest]), _rank_one(48)):
        matrix = spectral_matrix(spectrum, seed)
        result = eigsh(matrix, 1)
        assert result.converged
        assert bool((result.residuals > 0).all())
        assert_matches(matrix, result, "LA")


def _rank_one(n: int) -> torch.Tensor:
    spectrum = torch.zeros(n, dtype=F64)
    spectrum[0] = 2.0
    return spectrum


@pytest.mark.parametrize("which", ["LA", "SA", "LM"])
def test_exact_when_ncv_equals_n_even_with_repeated_eigenvalues(which: str) -> None:
    spectrum = torch.tensor([3.0, 3.0, 3.0, -2.0, -2.0, 1.0, 0.5, 0.5, 0, 0, 0, -1.0], dtype=F64)
    matrix = CountingOperator(spectral_matrix(spectrum))
    result = eigsh(matrix, 5, which=which, ncv=12)
    expected = expected_order(spectrum, which)[:5]
    torch.testing.assert_close(result.eigenvalues, expected, atol=1e-13, rtol=0)
    assert result.converged
    assert result.num_matvecs == matrix.columns == 12


def test_repeated_wanted_eigenvalue_is_seen_once_but_pairs_stay_true() -> None:
    spectrum = torch.cat([torch.tensor([3.0, 3.0, 2.0]), torch.linspace(-1, 1, 57)]).double()
    matrix = spectral_matrix(spectrum)
    result = eigsh(matrix, 2)
    assert result.converged
    distance = (result.eigenvalues[:, None] - spectrum[None, :]).abs().min(dim=1).values
    assert bool((distance <= result.residuals + 1e-13).all())


def test_float32_converges_with_its_default_tol() -> None:
    spectrum = torch.cat([torch.tensor([5.0, 4.0, 3.5]), torch.linspace(-1, 1, 97)])
    matrix = spectral_matrix(spectrum.double()).float()
    result = eigsh(matrix, 3, generator=3)
    assert result.converged
    assert result.tol == pytest.approx(2.42e-5, rel=0.01)
    assert result.eigenvalues.dtype == result.eigenvectors.dtype == torch.float32
    assert_matches(matrix, result, "LA")


def test_same_seed_is_bitwise_reproducible_and_seeds_agree() -> None:
    matrix = spectral_matrix(1 / torch.arange(1, 101, dtype=F64))
    first, again = eigsh(matrix, 4, generator=7), eigsh(matrix, 4, generator=7)
    from_generator = eigsh(matrix, 4, generator=torch.Generator().manual_seed(7))
    other = eigsh(matrix, 4, generator=8)
    for result in (again, from_generator):
        assert torch.equal(result.eigenvalues, first.eigenvalues)
        assert torch.equal(result.eigenvectors, first.eigenvectors)
        assert torch.equal(result.residuals, first.residuals)
        assert result.num_matvecs == first.num_matvecs
    torch.testing.assert_close(other.eigenvalues, first.eigenvalues, atol=1e-12, rtol=0)


def test_several_thick_restarts_still_converge() -> None:
    matrix = CountingOperator(spectral_matrix(torch.linspace(1, 0, 200, dtype=F64)))
    result = eigsh(matrix, 6, ncv=14)
    assert result.converged
    assert result.num_matvecs == matrix.columns > 10 * 14
    assert_matches(matrix.matrix, result, "LA")


@pytest.mark.parametrize("exact_residuals", [False, True])
def test_num_matvecs_counts_every_column(exact_residuals: bool) -> None:
    matrix = CountingOperator(spectral_matrix(1 / torch.arange(1, 201, dtype=F64)))
    result = eigsh(matrix, 5, which="LM", exact_residuals=exact_residuals)
    assert result.num_matvecs == matrix.columns


def test_exact_residuals_cost_k_products_and_agree_with_the_lanczos_ones() -> None:
    matrix = CountingOperator(spectral_matrix(1 / torch.arange(1, 201, dtype=F64)))
    relation = eigsh(matrix, 5, tol=1e-8)
    exact = eigsh(matrix, 5, tol=1e-8, exact_residuals=True)
    assert exact.num_matvecs == relation.num_matvecs + 5
    assert torch.equal(exact.eigenvalues, relation.eigenvalues)
    truth = torch.linalg.vector_norm(
        matrix.matrix @ relation.eigenvectors - relation.eigenvectors * relation.eigenvalues, dim=0
    )
    torch.testing.assert_close(exact.residuals, truth, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(relation.residuals, truth, rtol=1e-3, atol=1e-14)
    assert relation.converged and exact.converged


def test_exact_residuals_expose_a_product_that_is_not_linear() -> None:
    """An operator whose products carry noise of relative size 1e-6: the Lanczos relation
    cannot see it, the exact residuals can, and convergence to tol = 1e-8 is then refused."""
    matrix = spectral_matrix(1 / torch.arange(1, 201, dtype=F64))
    gen = torch.Generator().manual_seed(0)

    class Noisy(CountingOperator):
        def _matmat(self, block: torch.Tensor) -> torch.Tensor:
            out = super()._matmat(block)
            return out + 1e-6 * out.norm() * torch.randn(out.shape, generator=gen, dtype=F64)

    relation = eigsh(Noisy(matrix), 3, tol=1e-8, max_matvecs=400)
    exact = eigsh(Noisy(matrix), 3, tol=1e-8, max_matvecs=400, exact_residuals=True)
    assert bool((relation.residuals < 1e-8).all())
    assert bool((exact.residuals > 1e-7).all()) and not exact.converged


@pytest.mark.parametrize(("k", "max_matvecs"), [(1, 1), (3, 5), (4, 30)])
def test_small_budget_returns_unconverged(k: int, max_matvecs: int) -> None:
    matrix = CountingOperator(spectral_matrix(torch.linspace(1, 0, 200, dtype=F64)))
    result = eigsh(matrix, k, max_matvecs=max_matvecs)
    assert not result.converged
    assert result.num_matvecs == matrix.columns <= max(max_matvecs, 2 * k)
    assert result.eigenvalues.shape == result.residuals.shape == (k,)


def test_v0_is_used_and_a_tensor_op_stays_on_its_dtype() -> None:
    spectrum = torch.arange(1.0, 41.0, dtype=F64)
    v0 = torch.ones(40, dtype=F64)
    result = eigsh(torch.diag(spectrum), 3, which="SA", v0=v0)
    torch.testing.assert_close(result.eigenvalues, spectrum[:3], atol=1e-10, rtol=0)
    assert result.eigenvectors.shape == (40, 3)


MATRIX = torch.eye(10, dtype=F64)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"op": torch.ones(3, 4)}, ValueError, "square"),
        ({"op": [[1.0]]}, TypeError, "LinearOperator or a square torch.Tensor"),
        ({"k": 0}, ValueError, "k must be >= 1"),
        ({"k": 10}, ValueError, "k must be < n"),
        ({"k": 2.0}, TypeError, "k must be an int"),
        ({"which": "XX"}, ValueError, "which must be one of"),
        ({"tol": 0.0}, ValueError, "tol must be a finite number > 0"),
        ({"tol": -1e-3}, ValueError, "tol must be a finite number > 0"),
        ({"tol": "small"}, TypeError, "tol must be a positive number"),
        ({"tol": 1e-300}, ValueError, r"tol must be at least .*float64: 2.2e-16"),
        ({"op": MATRIX.float(), "tol": 1e-8}, ValueError, r"tol .* \(torch.float32: 1.2e-07\)"),
        ({"ncv": 2}, ValueError, "ncv must be >= 3 and <= 10"),
        ({"ncv": 11}, ValueError, "ncv must be >= 3 and <= 10"),
        ({"max_matvecs": 0}, ValueError, "max_matvecs must be >= 1"),
        ({"max_matvecs": 1.5}, TypeError, "max_matvecs must be an int"),
        ({"v0": torch.ones(9, dtype=F64)}, ValueError, r"v0 must have shape \(10,\)"),
        ({"v0": torch.zeros(10, dtype=F64)}, ValueError, "v0 must be finite and nonzero"),
        ({"v0": torch.ones(10)}, TypeError, "v0 has dtype torch.float32"),
        ({"v0": [1.0] * 10}, TypeError, "v0 must be a torch.Tensor"),
        ({"generator": "seed"}, TypeError, "generator must be a torch.Generator"),
        ({"exact_residuals": 1}, TypeError, "exact_residuals must be True or False"),
    ],
)
def test_invalid_arguments_raise(kwargs: dict, error: type[Exception], match: str) -> None:
    # (tol below eps: the Lanczos estimate of a residual underflows below the true one,
    # so eigsh(H, 1, tol=1e-300) used to report converged with a residual of 0)
    arguments = {"op": MATRIX, "k": 2} | kwargs
    with pytest.raises(error, match=match):
        eigsh(arguments.pop("op"), arguments.pop("k"), **arguments)
