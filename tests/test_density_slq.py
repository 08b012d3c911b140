"""Stochastic Lanczos quadrature against exact spectra of Q diag(lambda) Q^T (float64)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import wasserstein_distance

from hesskit.density import SpectralDensity, spectral_density
from hesskit.density.slq import memory_estimate
from hesskit.trace_estimation import rademacher
from tests.matrices import CountingOperator, spectral_matrix

F64 = torch.float64


def _spectrum(n: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, dtype=F64, generator=gen) * 4 - 1


def _bulk_plus_outliers(n: int = 500, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2 * n, n, dtype=F64, generator=gen)
    eigenvalues = torch.linalg.eigvalsh(x.T @ x / (2 * n))
    eigenvalues[-5:] = torch.tensor([10.0, 15.0, 20.0, 30.0, 50.0], dtype=F64)
    return eigenvalues


@given(
    n=st.integers(1, 40),
    num_probes=st.integers(1, 4),
    num_steps=st.integers(1, 50),
    seed=st.integers(0, 2**31 - 1),
)
def test_weights_sum_to_one_and_nodes_in_spectrum(
    n: int, num_probes: int, num_steps: int, seed: int
) -> None:
    eigenvalues = _spectrum(n, seed)
    result = spectral_density(
        spectral_matrix(eigenvalues, seed),
        num_probes=num_probes,
        num_steps=num_steps,
        generator=seed,
    )
    steps = min(n, num_steps)
    assert result.nodes.shape == result.weights.shape == (num_probes, steps)
    assert result.num_matvecs == num_probes * steps and result.n == n
    torch.testing.assert_close(
        result.weights.sum(dim=1), torch.ones(num_probes, dtype=F64), rtol=0, atol=1e-12
    )
    assert bool((result.weights >= 0).all())
    tol = 1e-10 * float(eigenvalues.abs().max())
    assert float(result.nodes.min()) >= float(eigenvalues.min()) - tol
    assert float(result.nodes.max()) <= float(eigenvalues.max()) + tol


@pytest.mark.parametrize(("n", "num_steps"), [(8, 8), (12, 4), (10, 1)])
def test_gauss_quadrature_exact_for_polynomials(n: int, num_steps: int) -> None:
    a = spectral_matrix(_spectrum(n, 3) / 2, 3)
    result = spectral_density(a, num_probes=3, num_steps=num_steps, generator=11)
    probes = rademacher(n, 3, dtype=F64, generator=11) / math.sqrt(n)
    power = probes.clone()
    for j in range(2 * num_steps):
        expected = n * (probes * power).sum(dim=0).mean()
        got = result.quadrature(lambda x, j=j: x**j)
        torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9)
        power = a @ power


def test_trace_estimate_is_unbiased() -> None:
    eigenvalues = _spectrum(30, 5)
    a = spectral_matrix(eigenvalues, 5)
    num_probes, num_seeds = 4, 300
    estimates = torch.stack(
        [
            spectral_density(a, num_probes=num_probes, num_steps=6, generator=s).trace_estimate()
            for s in range(num_seeds)
        ]
    )
    variance = 2 * (a.square().sum() - a.diagonal().square().sum()) / num_probes
    bound = 4 * math.sqrt(float(variance) / num_seeds)
    assert abs(float(estimates.mean() - eigenvalues.sum())) < bound


def test_trace_estimate_equals_hutchinson_with_the_same_probes() -> None:
    a = spectral_matrix(_spectrum(20, 1), 1)
    result = spectral_density(a, num_probes=5, num_steps=3, generator=7)
    probes = rademacher(20, 5, dtype=F64, generator=7)
    torch.testing.assert_close(result.trace_estimate(), (probes * (a @ probes)).sum(0).mean())


@given(n=st.integers(2, 60), seed=st.integers(0, 2**31 - 1), log=st.booleans())
def test_smoothed_density_integrates_to_one(n: int, seed: int, log: bool) -> None:
    result = spectral_density(
        spectral_matrix(_spectrum(n, seed), seed), num_probes=3, generator=seed
    )
    grid = result.grid(4000, log=log)
    values = result.log_density(grid) if log else result.density(grid)
    assert abs(float(torch.trapezoid(values, grid)) - 1) < 1e-3
    assert bool((values >= 0).all())


def test_explicit_sigma_and_grid_dtype() -> None:
    result = spectral_density(torch.diag(torch.arange(5.0, dtype=F64)), generator=0)
    grid = torch.linspace(-10, 15, 5001, dtype=torch.float32)
    values = result.density(grid, sigma=0.5)
    assert values.dtype == F64
    assert abs(float(torch.trapezoid(values, grid.double())) - 1) < 1e-3


def test_wasserstein_distance_to_exact_spectrum_with_default_budget() -> None:
    eigenvalues = _bulk_plus_outliers()
    result = spectral_density(spectral_matrix(eigenvalues, 2), generator=3)
    distance = wasserstein_distance(
        result.nodes.flatten().numpy(), eigenvalues.numpy(), u_weights=result.weights.flatten()
    )
    assert distance / float(eigenvalues.max() - eigenvalues.min()) <= 0.01


def test_same_seed_same_numbers_and_generator_object() -> None:
    a = spectral_matrix(_spectrum(25, 4), 4)
    first = spectral_density(a, num_probes=3, num_steps=7, generator=9)
    second = spectral_density(a, num_probes=3, num_steps=7, generator=9)
    third = spectral_density(
        a, num_probes=3, num_steps=7, generator=torch.Generator().manual_seed(9)
    )
    other = spectral_density(a, num_probes=3, num_steps=7, generator=10)
    assert torch.equal(first.nodes, second.nodes) and torch.equal(first.weights, second.weights)
    assert torch.equal(first.nodes, third.nodes)
    assert not torch.equal(first.weights, other.weights)


def test_breakdown_gives_exact_nodes() -> None:
    distinct = torch.tensor([-1.0, 0.5, 3.0], dtype=F64)
    eigenvalues = distinct.repeat_interleave(torch.tensor([10, 15, 5]))
    a = spectral_matrix(eigenvalues, 8)
    result = spectral_density(a, num_probes=4, num_steps=10, generator=2)
    torch.testing.assert_close(
        result.weights.sum(dim=1), torch.ones(4, dtype=F64), rtol=0, atol=1e-12
    )
    for nodes, weights in zip(result.nodes, result.weights, strict=True):
        torch.testing.assert_close(nodes[weights > 0], distinct, rtol=0, atol=1e-10)
        assert int((weights > 0).sum()) == 3
    assert float(result.nodes.min()) >= -1 - 1e-10 and float(result.nodes.max()) <= 3 + 1e-10
    probes = rademacher(30, 4, dtype=F64, generator=2)
    fourth = (probes * (torch.linalg.matrix_power(a, 4) @ probes)).sum(0).mean()
    torch.testing.assert_close(result.quadrature(lambda x: x**4), fourth, rtol=1e-9, atol=0)


def test_steps_capped_and_one_block_product_per_step() -> None:
    op = CountingOperator(spectral_matrix(_spectrum(6, 0), 0))
    result = spectral_density(op, num_probes=5, num_steps=90)
    assert result.nodes.shape == (5, 6) and result.num_matvecs == 30
    assert op.widths == [5] * 6


def test_float32_stays_float32() -> None:
    a = spectral_matrix(_spectrum(50, 6), 6).float()
    result = spectral_density(a, num_probes=2, num_steps=20)
    assert result.nodes.dtype == result.weights.dtype == torch.float32
    assert isinstance(result, SpectralDensity)
    torch.testing.assert_close(result.weights.sum(1), torch.ones(2), rtol=0, atol=1e-5)
    assert result.density(result.grid()).dtype == torch.float32


def test_log_density_of_hessian_like_spectrum_shows_outliers() -> None:
    gen = torch.Generator().manual_seed(0)
    eigenvalues = torch.cat(
        [
            torch.zeros(150, dtype=F64),
            torch.rand(45, dtype=F64, generator=gen) * 1e-2,
            torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0], dtype=F64),
        ]
    )
    result = spectral_density(spectral_matrix(eigenvalues, 0), generator=0)
    grid = result.grid(log=True)
    values = result.log_density(grid)
    assert float(values[grid > 0].max()) > 0
    assert float(grid.min()) < -8 < float(grid.max())


def test_errors() -> None:
    with pytest.raises(TypeError, match="op must be"):
        spectral_density(np.eye(3))
    with pytest.raises(ValueError, match="square"):
        spectral_density(torch.zeros(3, 4))
    a = torch.eye(3, dtype=F64)
    with pytest.raises(ValueError, match="num_probes must be >= 1"):
        spectral_density(a, num_probes=0)
    with pytest.raises(ValueError, match="num_steps must be >= 1"):
        spectral_density(a, num_steps=0)
    with pytest.raises(TypeError, match="num_steps must be an int"):
        spectral_density(a, num_steps=2.0)
    result = spectral_density(a)
    grid = result.grid()
    with pytest.raises(ValueError, match="sigma must be a finite number > 0"):
        result.density(grid, sigma=0.0)
    with pytest.raises(TypeError, match="sigma must be a positive number"):
        result.density(grid, sigma="wide")
    with pytest.raises(ValueError, match="eps must be a finite number > 0"):
        result.log_density(grid, eps=-1.0)
    with pytest.raises(TypeError, match="grid must be a 1-D"):
        result.density(grid[None])
    with pytest.raises(ValueError, match="num_points must be >= 2"):
        result.grid(1)


# ---------------------------------------------------------------- samplers and memory-bounded modes


@pytest.mark.parametrize("reorthogonalize", ["full", "none"])
@pytest.mark.parametrize("probes_per_group", [None, 3])
def test_memory_bounded_modes_match_the_dense_spectrum(reorthogonalize, probes_per_group):
    eigenvalues = _bulk_plus_outliers()
    matrix = spectral_matrix(eigenvalues)
    result = spectral_density(
        matrix, generator=0, reorthogonalize=reorthogonalize, probes_per_group=probes_per_group
    )
    spread = float(eigenvalues.max() - eigenvalues.min())
    distance = wasserstein_distance(
        result.nodes.reshape(-1).numpy(), eigenvalues.numpy(), u_weights=result.weights.reshape(-1)
    )
    assert distance / spread <= 5e-3  # measured 1.9e-3 with and without reorthogonalisation
    probes = rademacher(500, 8, dtype=F64, generator=0) / math.sqrt(500)
    hutchinson = 500 * torch.einsum("np,nm,mp->p", probes, matrix, probes).mean()
    torch.testing.assert_close(result.trace_estimate(), hutchinson)


def test_probe_groups_give_the_same_rules_to_round_off():
    matrix = spectral_matrix(_spectrum(60, 3))
    whole = spectral_density(matrix, num_probes=5, num_steps=20, generator=4)
    grouped = spectral_density(matrix, num_probes=5, num_steps=20, generator=4, probes_per_group=2)
    torch.testing.assert_close(grouped.nodes, whole.nodes, atol=1e-12, rtol=0)
    torch.testing.assert_close(grouped.weights, whole.weights, atol=1e-12, rtol=0)


def test_without_reorthogonalisation_the_weights_still_sum_to_one_despite_ghosts():
    # few distinct, well separated eigenvalues and many steps: ghost copies appear
    eigenvalues = torch.tensor([1.0] * 30 + [5.0] * 30 + [20.0] * 40, dtype=F64)
    result = spectral_density(
        spectral_matrix(eigenvalues),
        num_probes=3,
        num_steps=60,
        generator=0,
        reorthogonalize="none",
    )
    torch.testing.assert_close(result.weights.sum(1), torch.ones(3, dtype=F64), atol=1e-12, rtol=0)
    for value, share in ((1.0, 0.3), (5.0, 0.3), (20.0, 0.4)):
        near = (result.nodes - value).abs() < 1e-6
        assert abs(float((result.weights * near).sum(1).mean()) - share) < 0.2


@pytest.mark.parametrize("sampler", ["sphere", "gaussian"])
def test_samplers_weights(sampler):
    n, p = 50, 4
    result = spectral_density(
        spectral_matrix(_spectrum(n, 0)), num_probes=p, num_steps=10, generator=7, sampler=sampler
    )
    expected = torch.ones(p, dtype=F64)
    if sampler == "gaussian":  # the rule of z / ||z||, weighted by ||z||^2 / n
        z = torch.randn(n, p, generator=torch.Generator().manual_seed(7), dtype=F64)
        expected = torch.linalg.vector_norm(z, dim=0) ** 2 / n
    torch.testing.assert_close(result.weights.sum(1), expected, atol=1e-12, rtol=0)


def test_memory_estimate_counts_the_basis_or_three_vectors():
    full = memory_estimate(1000, num_probes=8, num_steps=90, dtype=F64)
    assert full == 8 * 1000 * (8 * 91 + 8)
    grouped = memory_estimate(1000, num_probes=8, num_steps=90, probes_per_group=2, dtype=F64)
    assert grouped == 8 * 1000 * (2 * 91 + 8)
    none = memory_estimate(1000, num_probes=8, num_steps=90, reorthogonalize="none", dtype=F64)
    assert none == 8 * 1000 * (8 * 4 + 8)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"sampler": "normal"}, ValueError, "sampler must be one of"),
        ({"reorthogonalize": "partial"}, ValueError, "reorthogonalize must be one of"),
        ({"probes_per_group": 0}, ValueError, "probes_per_group must be >= 1"),
    ],
)
def test_invalid_mode_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        spectral_density(torch.eye(3, dtype=F64), **kwargs)
