"""bf16 and fp16 operators: products in their dtype, Krylov state and reductions in float32.

The reference is the float64 Hessian of the same (bf16-rounded) weights and inputs, so
the only differences are the products' rounding. A bf16 product rounds its input block
(the cast), its intermediate results and its output at bf16's ``eps = 2**-7``; for the
two-layer network here that is a few roundings per entry, so the products are within
``PRODUCT_EPS_FACTOR * eps * ||A||`` of the float64 ones (measured: the dense bf16 Hessian
is within ``0.3 eps ||A||`` of the float64 one). A Ritz value with residual ``r`` of the
bf16 operator is then within ``r`` plus that of an eigenvalue of the float64 Hessian
(Weyl; the residual bound of a symmetric matrix).
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import hesskit
from hesskit.density.slq import spectral_density
from hesskit.eigen import eigsh, power_iteration
from hesskit.eigen.result import default_tol
from hesskit.operators.base import WorkPrecision, in_work_dtype
from hesskit.trace_estimation import trace
from tests.cases import dense_loss_hessian

BF16_EPS = torch.finfo(torch.bfloat16).eps
PRODUCT_EPS_FACTOR = 4  # a few roundings per entry (see the module docstring)


def _bf16_mlp() -> tuple[hesskit.LinearOperator, torch.Tensor]:
    """The Hessian of a bf16 MLP and the float64 Hessian of the same weights and inputs.

    Returns:
        ``(operator, dense_float64)``.
    """
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 10), nn.Tanh(), nn.Linear(10, 3)).to(torch.bfloat16)
    inputs = torch.randn(40, 6).to(torch.bfloat16)
    targets = torch.randint(0, 3, (40,))
    loss = nn.functional.cross_entropy
    reference = copy.deepcopy(model).double()
    truth = dense_loss_hessian(reference, loss, inputs.double(), targets)
    return hesskit.hessian(model, loss, (inputs, targets)), truth


def _exact_relative_residuals(truth: torch.Tensor, result) -> torch.Tensor:
    vectors = result.eigenvectors.double()
    values = result.eigenvalues.double()
    residuals = torch.linalg.vector_norm(truth @ vectors - vectors * values, dim=0)
    return residuals / values.abs().max()


def test_bf16_mlp_top_eigenvalues_match_the_float64_hessian() -> None:
    op, truth = _bf16_mlp()
    assert op.dtype == torch.bfloat16
    spectrum = torch.linalg.eigvalsh(truth)
    norm = float(spectrum.abs().max())
    result = eigsh(op, 3)
    assert result.eigenvalues.dtype == torch.float32
    assert result.converged
    assert result.tol == default_tol(torch.bfloat16)
    # never below the products' rounding (the bug: a residual of exactly 0)
    assert bool((result.residuals >= BF16_EPS * norm * (1 - 1e-3)).all())
    product_error = PRODUCT_EPS_FACTOR * BF16_EPS * norm
    bound = result.residuals.double() + product_error
    # each Ritz value is near an eigenvalue (not necessarily the k-th: at bf16's tol a
    # close eigenvalue can be missed, as the eigsh docstring says), the top one the top
    error = (result.eigenvalues.double()[:, None] - spectrum).abs().min(dim=1).values
    assert bool((error <= bound).all()), (error, bound)
    assert abs(float(result.eigenvalues[0]) - float(spectrum[-1])) <= float(bound[0])
    # the reported convergence holds for the float64 Hessian, up to the products' rounding
    assert bool((_exact_relative_residuals(truth, result) <= result.tol + product_error).all())


@pytest.mark.parametrize("block_size", [1, 2])
def test_a_bf16_matrix_is_an_operator_with_float32_krylov_state(block_size: int) -> None:
    torch.manual_seed(1)
    q, _ = torch.linalg.qr(torch.randn(40, 40, dtype=torch.float64))
    spectrum = torch.cat([torch.tensor([8.0, 4.0], dtype=torch.float64), torch.rand(38) - 0.5])
    matrix = ((q * spectrum) @ q.T).to(torch.bfloat16)
    matrix = (matrix + matrix.T) / 2
    truth = matrix.double()
    expected = torch.linalg.eigvalsh(truth).flip(0)[:2]
    result = eigsh(matrix, 2, block_size=block_size)
    assert result.eigenvalues.dtype == torch.float32
    assert result.converged
    # a dense bf16 product rounds its input and its output once: 2 eps ||A|| at most
    bound = result.residuals.double() + 2 * BF16_EPS * float(expected[0])
    assert bool(((result.eigenvalues.double() - expected).abs() <= bound).all())


def test_power_iteration_on_bf16_reports_no_residual_below_the_products() -> None:
    op, truth = _bf16_mlp()
    expected = float(torch.linalg.eigvalsh(truth)[-1])
    result = power_iteration(op, 1)
    assert result.eigenvalues.dtype == torch.float32
    value = float(result.eigenvalues[0])
    assert float(result.residuals[0]) >= BF16_EPS * abs(value) * (1 - 1e-3)
    assert abs(value - expected) <= float(result.residuals[0]) + PRODUCT_EPS_FACTOR * BF16_EPS * (
        abs(expected)
    )


@pytest.mark.parametrize("solver", [eigsh, power_iteration])
def test_a_tol_below_what_bf16_products_certify_is_refused(solver) -> None:
    op, _ = _bf16_mlp()
    with pytest.raises(ValueError, match=r"rounding unit of the operator's products"):
        solver(op, 1, tol=1e-4)


def test_tol_at_bf16_eps_is_never_a_silent_converged() -> None:
    op, truth = _bf16_mlp()
    result = eigsh(op, 2, tol=BF16_EPS, max_matvecs=60)
    if result.converged:  # then the products confirm it, up to their own rounding
        product_error = PRODUCT_EPS_FACTOR * BF16_EPS
        assert bool((_exact_relative_residuals(truth, result) <= BF16_EPS + product_error).all())
    # whether or not, every residual is at least the products' rounding
    floor = BF16_EPS * float(result.eigenvalues.abs().max()) * (1 - 1e-3)
    assert bool((result.residuals >= floor).all())


def test_float32_work_state_decides_convergence_on_exact_residuals() -> None:
    op, _ = _bf16_mlp()
    result = eigsh(op, 1, exact_residuals=False)
    plain = eigsh(op, 1, exact_residuals=True)
    # exact residuals are implied: the k extra columns of the residual product are spent
    assert result.num_matvecs == plain.num_matvecs
    torch.testing.assert_close(result.residuals, plain.residuals)


def test_trace_and_density_reduce_in_float32() -> None:
    # a diagonal bf16 operator: Rademacher products are exact, so only the reductions round
    values = (torch.arange(1, 301, dtype=torch.float64) / 7).to(torch.bfloat16)
    matrix = torch.diag(values)
    exact = float(values.double().sum())
    estimate = trace(matrix, 4, generator=0)
    assert estimate.estimate.dtype == torch.float32
    assert abs(float(estimate.estimate) - exact) <= 1e-5 * exact  # bf16 sums: 1e-2 off
    density = spectral_density(matrix, num_probes=2, num_steps=10, generator=0)
    assert density.nodes.dtype == torch.float32
    # the unit probes' entries 1/sqrt(n) round once when cast to bf16, and so does each
    # product entry: a relative error of at most eps (2 u), the same for every entry
    assert abs(float(density.trace_estimate()) - exact) <= BF16_EPS * exact


def test_work_dtype_float64_and_defaults() -> None:
    matrix = torch.eye(3, dtype=torch.float16)
    assert isinstance(in_work_dtype(hesskit.as_operator(matrix)), WorkPrecision)
    assert in_work_dtype(hesskit.as_operator(matrix)).dtype == torch.float32
    view = in_work_dtype(hesskit.as_operator(matrix), torch.float64)
    assert (view.dtype, view.product_dtype) == (torch.float64, torch.float16)
    single = hesskit.as_operator(torch.eye(3))
    assert in_work_dtype(single) is single


@pytest.mark.parametrize(
    ("dtype", "work_dtype", "error", "match"),
    [
        (torch.float64, torch.float32, ValueError, "less precise than the operator's"),
        (torch.bfloat16, torch.bfloat16, TypeError, "work_dtype must be torch.float32"),
        (torch.float32, "float64", TypeError, "work_dtype must be torch.float32"),
    ],
)
def test_bad_work_dtype_is_refused(dtype, work_dtype, error, match) -> None:
    matrix = torch.diag(torch.arange(1.0, 5.0)).to(dtype)
    for call in (
        lambda: eigsh(matrix, 1, work_dtype=work_dtype),
        lambda: power_iteration(matrix, 1, work_dtype=work_dtype),
        lambda: trace(matrix, 3, work_dtype=work_dtype),
        lambda: spectral_density(matrix, num_steps=2, work_dtype=work_dtype),
    ):
        with pytest.raises(error, match=match):
            call()
