"""End to end on a real model and data set: the trained digits MLP (2,410 parameters)."""

import pytest
import torch
from torch import nn

import hesskit
from tests.digits import trained_digits_mlp

LOSS = nn.functional.cross_entropy


@pytest.fixture(scope="module")
def digits_hessian():
    model, X, Y = trained_digits_mlp()
    H = hesskit.hessian(model, LOSS, (X, Y))
    return H, torch.linalg.eigvalsh(hesskit.dense(H))


def test_model_is_trained():
    model, X, Y = trained_digits_mlp()
    assert (model(X).argmax(1) == Y).float().mean() > 0.99


def test_eigsh_top10_matches_dense_spectrum(digits_hessian):
    H, exact = digits_hessian
    result = hesskit.eigsh(H, 10, tol=1e-12)
    top = exact.flip(0)[:10]
    assert result.converged
    relative_error = ((result.eigenvalues - top).abs() / top.abs()).max()
    assert relative_error < 1e-8, f"relative error {relative_error:.2e}"


def test_eigsh_needs_a_fifth_of_power_iterations_products(digits_hessian):
    H, exact = digits_hessian
    tol = 1e-6
    lanczos = hesskit.eigsh(H, 10, tol=tol)
    # One standard for both: every true residual <= tol * lambda_max (eigsh's rule). Power
    # iteration with deflation accumulates the earlier pairs' errors, so its stopping
    # tolerance is tightened until its true residuals meet that standard too.
    power = hesskit.power_iteration(H, 10, tol=tol / 4, max_matvecs=20_000)
    bound = tol * exact.abs().max()
    assert (lanczos.residuals <= bound).all() and (power.residuals <= bound).all()
    ratio = lanczos.num_matvecs / power.num_matvecs
    assert ratio <= 0.2, f"eigsh {lanczos.num_matvecs} vs power {power.num_matvecs} products"
