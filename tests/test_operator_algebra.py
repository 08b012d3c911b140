"""The operator base: its constructor's checks and the lazy algebra, against dense float64."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import hesskit
from tests.cases import CASES, dense_loss_hessian
from tests.matrices import spectral_matrix

F64 = torch.float64
coefficients = st.floats(-3.0, 3.0, allow_nan=False)


def _pair(n=6):
    A = spectral_matrix(torch.linspace(-1, 2, n, dtype=F64), seed=0)
    B = spectral_matrix(torch.linspace(0, 5, n, dtype=F64), seed=1)
    return A, B


@given(a=coefficients, b=coefficients, sigma=coefficients)
def test_combinations_equal_the_dense_combination(a, b, sigma):
    A, B = _pair()
    opA, opB = hesskit.as_operator(A), hesskit.as_operator(B)
    combined = (a * opA - opB * b).shift(sigma) + opB
    expected = a * A - b * B - sigma * torch.eye(6, dtype=F64) + B
    torch.testing.assert_close(hesskit.dense(combined), expected)


def test_nested_combinations_are_flattened_to_one_product_per_term():
    A, B = _pair()
    combined = -(hesskit.as_operator(A) + B) - hesskit.as_operator(A)
    assert len(combined.terms) == 3
    torch.testing.assert_close(hesskit.dense(combined), -2 * A - B)
    assert "-1 * DenseOperator(n=6" in repr(combined)


def test_shift_moves_the_eigenvalues_and_keeps_the_eigenvectors():
    eigenvalues = torch.linspace(1, 4, 8, dtype=F64)
    A = hesskit.as_operator(spectral_matrix(eigenvalues))
    shifted = hesskit.eigsh(A.shift(2.5), 2, which="LA", tol=1e-12, generator=0)
    torch.testing.assert_close(shifted.eigenvalues, eigenvalues.flip(0)[:2] - 2.5)


def test_hessian_minus_gauss_newton_is_the_residual_term():
    model, X, Y = CASES["mlp-mse"].build(F64)
    loss = CASES["mlp-mse"].loss_fn
    H, G = hesskit.hessian(model, loss, (X, Y)), hesskit.ggn(model, loss, (X, Y))
    residual = hesskit.dense(H - G)
    torch.testing.assert_close(residual, dense_loss_hessian(model, loss, X, Y) - hesskit.dense(G))


def test_centred_covariance_is_the_second_moment_minus_the_mean_gradients_outer_product():
    model, X, Y = CASES["mlp-tanh"].build(F64)
    loss = CASES["mlp-tanh"].loss_fn
    C = hesskit.gradient_covariance(model, loss, (X, Y), centered=True)
    assert isinstance(C, hesskit.LinearCombination)
    second, outer = (op for _, op in C.terms)
    assert isinstance(second, hesskit.GradientCovariance)
    assert isinstance(outer, hesskit.MeanGradientOuterProduct)
    g = hesskit.Objective(model, loss, (X, Y)).gradient()
    torch.testing.assert_close(hesskit.dense(outer), torch.outer(g, g))


def test_mean_gradient_is_recomputed_after_an_in_place_update():
    model, X, Y = CASES["mlp-tanh"].build(F64)
    loss = CASES["mlp-tanh"].loss_fn
    outer = hesskit.MeanGradientOuterProduct(hesskit.Objective(model, loss, (X, Y)))
    before = hesskit.dense(outer)
    with torch.no_grad():
        model[0].bias.add_(1.0)
    g = hesskit.Objective(model, loss, (X, Y)).gradient()
    after = hesskit.dense(outer)
    assert not torch.allclose(after, before)
    torch.testing.assert_close(after, torch.outer(g, g))


def test_subclass_through_the_constructor():
    class Diagonal(hesskit.LinearOperator):
        def __init__(self, d):
            super().__init__((len(d), len(d)), dtype=d.dtype, device="cpu")
            self.d = d

        def _matmat(self, block):
            return self.d[:, None] * block

    op = Diagonal(torch.tensor([1.0, 2.0]))
    assert op.device == torch.device("cpu")
    torch.testing.assert_close(
        hesskit.dense(op.shift(1.0) * 2), torch.diag(torch.tensor([0.0, 2.0]))
    )


class TestErrors:
    @pytest.mark.parametrize(
        ("kwargs", "error", "match"),
        [
            ({"shape": [2, 2]}, TypeError, r"shape must be a tuple \(n, n\) of two ints"),
            ({"shape": (2, 3)}, ValueError, r"shape must be \(n, n\) with n >= 1"),
            ({"shape": (0, 0)}, ValueError, r"shape must be \(n, n\) with n >= 1"),
            ({"dtype": torch.long}, TypeError, "dtype must be a floating torch.dtype"),
            ({"dtype": "float32"}, TypeError, "dtype must be a floating torch.dtype"),
            ({"device": 3.5}, TypeError, "device must be a torch.device or a device string"),
        ],
    )
    def test_constructor(self, kwargs, error, match):
        arguments = {"shape": (2, 2), "dtype": F64, "device": "cpu", **kwargs}
        with pytest.raises(error, match=match):
            hesskit.LinearOperator(arguments.pop("shape"), **arguments)

    def test_different_shapes(self):
        A, _ = _pair()
        with pytest.raises(ValueError, match=r"different shapes cannot be combined: \(6, 6\)"):
            hesskit.as_operator(A) + torch.eye(3, dtype=F64)

    def test_different_dtypes(self):
        A, B = _pair()
        with pytest.raises(TypeError, match="different dtypes cannot be combined"):
            hesskit.as_operator(A) - B.float()

    def test_different_devices(self):
        A, _ = _pair()
        with pytest.raises(ValueError, match="different devices cannot be combined"):
            hesskit.as_operator(A) + torch.eye(6, dtype=F64, device="meta")

    def test_adding_a_number(self):
        A, _ = _pair()
        with pytest.raises(TypeError, match=r"A \+ c\*I use A.shift\(-c\)"):
            hesskit.as_operator(A) + 1.0

    @pytest.mark.parametrize("scalar", [torch.ones(6), True, "2"])
    def test_scaling_by_a_non_number(self, scalar):
        A, _ = _pair()
        with pytest.raises(TypeError, match="scaled only by a real number"):
            scalar * hesskit.as_operator(A)

    def test_scaling_by_inf(self):
        A, _ = _pair()
        with pytest.raises(ValueError, match="scalar must be finite"):
            hesskit.as_operator(A) * float("inf")

    def test_shift_not_a_number(self):
        A, _ = _pair()
        with pytest.raises(TypeError, match="sigma must be a finite number"):
            hesskit.as_operator(A).shift("1")

    def test_empty_combination(self):
        with pytest.raises(ValueError, match="at least one operator"):
            hesskit.LinearCombination([])

    def test_model_operators_of_different_models(self):
        model, X, Y = CASES["mlp-tanh"].build(F64)
        other = nn.Linear(5, 3).double()
        with pytest.raises(ValueError, match="different shapes cannot be combined"):
            hesskit.hessian(model, CASES["mlp-tanh"].loss_fn, (X, Y)) + hesskit.hessian(
                other, CASES["mlp-tanh"].loss_fn, (X, Y)
            )
