"""The generalized Gauss-Newton operator: dense truth, PSD, equality with the Hessian."""

import pytest
import torch
from torch import nn
from torch.func import functional_call, hessian, jacrev

import hesskit
from tests.cases import CASES, dense_loss_hessian

TOL = 1e-10


def dense_ggn(model, loss_fn, X, Y):
    """J^T H_out J built from the explicit Jacobian and output Hessian."""
    params = {k: v.detach() for k, v in model.named_parameters()}
    names, shapes = list(params), [p.shape for p in params.values()]
    theta = torch.cat([p.reshape(-1) for p in params.values()])

    def outputs(flat):
        parts = torch.split(flat, [s.numel() for s in shapes])
        named = {n: p.reshape(s) for n, p, s in zip(names, parts, shapes, strict=True)}
        return functional_call(model, named, (X,)).reshape(-1)

    out = outputs(theta)
    J = jacrev(outputs)(theta)
    H_out = hessian(lambda o: loss_fn(o.reshape(len(X), -1), Y))(out)
    return J.T @ H_out @ J


@pytest.mark.parametrize("case", ["mlp-tanh", "mlp-mse"])
def test_ggn_equals_dense_truth(case):
    model, X, Y = CASES[case].build()
    G = hesskit.dense(hesskit.ggn(model, CASES[case].loss_fn, (X, Y)))
    torch.testing.assert_close(G, dense_ggn(model, CASES[case].loss_fn, X, Y), atol=TOL, rtol=0)


@pytest.mark.parametrize("case", ["mlp-tanh", "mlp-mse", "cnn"])
def test_ggn_is_positive_semidefinite(case):
    model, X, Y = CASES[case].build()
    G = hesskit.dense(hesskit.ggn(model, CASES[case].loss_fn, (X, Y)))
    eigenvalues = torch.linalg.eigvalsh(G)
    assert eigenvalues.min() >= -1e-12 * eigenvalues.max()


def test_ggn_equals_hessian_for_linear_model_with_squared_loss():
    model, X, Y = CASES["mlp-mse"].build()
    linear = nn.Linear(4, 2).double()
    loss = nn.functional.mse_loss
    G = hesskit.dense(hesskit.ggn(linear, loss, (X, Y)))
    torch.testing.assert_close(G, dense_loss_hessian(linear, loss, X, Y), atol=TOL, rtol=0)
    del model


def test_ggn_uneven_batches():
    model, X, Y = CASES["mlp-tanh"].build()
    loss = CASES["mlp-tanh"].loss_fn
    one = hesskit.dense(hesskit.ggn(model, loss, (X, Y)))
    split = hesskit.dense(hesskit.ggn(model, loss, [(X[:3], Y[:3]), (X[3:], Y[3:])]))
    torch.testing.assert_close(split, one, atol=TOL, rtol=0)
