"""The per-sample gradient second moment and covariance against explicit gradients."""

import pytest
import torch

import hesskit
from tests.cases import CASES

TOL = 1e-10


def explicit_gradients(model, loss_fn, X, Y):
    rows = []
    for x, y in zip(X, Y, strict=True):
        loss = loss_fn(model(x.unsqueeze(0)), y.unsqueeze(0))
        grads = torch.autograd.grad(loss, list(model.parameters()))
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows)


@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("case", ["mlp-tanh", "mlp-mse"])
def test_gradient_covariance_equals_explicit(case, centered):
    model, X, Y = CASES[case].build()
    loss = CASES[case].loss_fn
    G = explicit_gradients(model, loss, X, Y)
    expected = G.T @ G / len(X)
    if centered:
        mean = G.mean(0)
        expected = expected - torch.outer(mean, mean)
    batches = [(X[:10], Y[:10]), (X[10:], Y[10:])]
    C = hesskit.gradient_covariance(model, loss, batches, centered=centered)
    torch.testing.assert_close(hesskit.dense(C), expected, atol=TOL, rtol=0)


def test_centered_must_be_bool():
    model, X, Y = CASES["mlp-tanh"].build()
    with pytest.raises(TypeError, match="centered must be True or False"):
        hesskit.gradient_covariance(model, CASES["mlp-tanh"].loss_fn, (X, Y), centered="yes")
