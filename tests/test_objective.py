"""The objective layer: the mean loss and its gradient against direct float64 computation."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import hesskit
from hesskit.params import flatten_parameters
from tests.cases import CASES, dense_loss_hessian

F = nn.functional
F64 = torch.float64


def _batches(X, Y, sizes):
    starts = torch.tensor([0, *sizes]).cumsum(0).tolist()
    return [(X[a:b], Y[a:b]) for a, b in itertools.pairwise(starts)]


def _direct_loss_and_gradient(model, loss_fn, X, Y):
    model.zero_grad()
    loss = loss_fn(model(X), Y)
    loss.backward()
    gradient = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    model.zero_grad()
    return loss.detach(), gradient


@pytest.mark.parametrize("name", ["mlp-tanh", "mlp-mse", "cnn", "mlp-batchnorm"])
def test_loss_and_gradient_equal_the_direct_ones_over_uneven_batches(name):
    case = CASES[name]
    model, X, Y = case.build(F64)
    sizes = [5, 3, len(X) - 8]
    objective = hesskit.Objective(model, case.loss_fn, _batches(X, Y, sizes))
    loss, gradient = _direct_loss_and_gradient(model, case.loss_fn, X, Y)
    torch.testing.assert_close(objective.loss(), loss)
    torch.testing.assert_close(objective.gradient(), gradient)
    assert objective.num_samples == len(X)
    assert objective.num_parameters == gradient.numel()


@given(scale=st.floats(-2.0, 2.0))
def test_loss_at_another_point_equals_the_loss_of_the_moved_model(scale):
    model, X, Y = CASES["mlp-tanh"].build(F64)
    objective = hesskit.Objective(model, F.cross_entropy, (X, Y))
    theta = flatten_parameters(model)
    moved = theta * scale
    torch.nn.utils.vector_to_parameters(moved, model.parameters())
    expected = F.cross_entropy(model(X), Y).detach()
    torch.nn.utils.vector_to_parameters(theta, model.parameters())
    torch.testing.assert_close(objective.loss(moved), expected)


def test_parameter_subset_and_current_values():
    model, X, Y = CASES["mlp-tanh"].build(F64)
    objective = hesskit.Objective(model, F.cross_entropy, (X, Y), params=[model[2]])
    assert objective.num_parameters == 6 * 3 + 3
    current = objective.parameters()
    torch.testing.assert_close(current, flatten_parameters(model, [model[2]]))
    current.zero_()  # a copy: the model is untouched
    assert model[2].weight.abs().sum() > 0


def test_follows_in_place_updates_and_reports_them_in_its_versions():
    model, X, Y = CASES["mlp-tanh"].build(F64)
    objective = hesskit.Objective(model, F.cross_entropy, (X, Y))
    before, versions = objective.loss(), objective.versions()
    with torch.no_grad():
        model[0].weight.mul_(2.0)
    assert objective.versions() != versions
    assert not torch.allclose(objective.loss(), before)


def test_loss_and_gradient_leave_the_model_and_the_global_state_alone():
    model, X, Y = CASES["mlp-batchnorm"].build(F64)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    objective = hesskit.Objective(model, F.cross_entropy, (X, Y))
    objective.gradient(objective.parameters() + 0.1)
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert all(p.grad is None for p in model.parameters())


class TestErrors:
    def test_theta_of_the_wrong_length(self):
        model, X, Y = CASES["mlp-tanh"].build(F64)
        objective = hesskit.Objective(model, F.cross_entropy, (X, Y))
        with pytest.raises(ValueError, match=r"theta must have shape \(57,\)"):
            objective.loss(torch.zeros(3, dtype=F64))

    def test_theta_not_finite(self):
        model, X, Y = CASES["mlp-tanh"].build(F64)
        objective = hesskit.Objective(model, F.cross_entropy, (X, Y))
        with pytest.raises(ValueError, match="theta must be finite"):
            objective.gradient(torch.full((57,), torch.nan, dtype=F64))

    def test_non_finite_gradient_names_the_batch(self):
        model, X, Y = CASES["mlp-tanh"].build(F64)
        X = X.clone()
        X[20, 1] = torch.inf
        objective = hesskit.Objective(model, F.cross_entropy, _batches(X, Y, [12, 12]))
        with pytest.raises(ValueError, match="loss gradient is not finite on data batch 1"):
            objective.gradient()

    def test_model_not_callable_on_the_inputs(self):
        model, X, Y = CASES["mlp-tanh"].build(F64)
        with pytest.raises(TypeError, match="the model cannot be called on the first batch"):
            hesskit.Objective(model, F.cross_entropy, ((X, X), Y))

    def test_integer_parameters(self):
        model = nn.Linear(2, 1)
        model.weight = nn.Parameter(torch.ones(1, 2, dtype=torch.long), requires_grad=False)
        with pytest.raises(TypeError, match="parameters must be floating point"):
            hesskit.Objective(
                model, F.l1_loss, (torch.ones(3, 2), torch.ones(3, 1)), params=["weight"]
            )

    def test_loss_neither_mean_nor_sum(self):
        model, X, Y = CASES["mlp-tanh"].build(F64)

        def squared_mean(outputs, targets):
            return F.cross_entropy(outputs, targets) ** 2

        with pytest.raises(ValueError, match="neither the mean nor the sum over the batch"):
            hesskit.Objective(model, squared_mean, _batches(X, Y, [12, 12]))

    def test_loss_not_a_tensor(self):
        model, X, Y = CASES["mlp-tanh"].build(F64)
        with pytest.raises(
            ValueError, match=r"loss_fn must return a scalar \(0-d\) tensor, got <class 'float'>"
        ):
            hesskit.Objective(model, lambda o, t: 1.0, (X, Y))

    def test_data_of_one_sample_skips_the_mean_check(self):
        model, X, Y = CASES["mlp-tanh"].build(F64)

        def summed(outputs, targets):
            return F.cross_entropy(outputs, targets, reduction="sum")

        objective = hesskit.Objective(model, summed, (X[:1], Y[:1]))  # sum == mean here
        torch.testing.assert_close(objective.loss(), F.cross_entropy(model(X[:1]), Y[:1]))


@pytest.mark.parametrize("method", ["cached_graph", "double_backward", "forward_over_reverse"])
def test_operators_follow_vector_to_parameters_and_new_parameters(method):
    case = CASES["mlp-tanh"]
    model, X, Y = case.build(F64)
    H = hesskit.hessian(model, case.loss_fn, (X, Y), method=method)
    v = torch.randn(H.shape[0], dtype=F64, generator=torch.Generator().manual_seed(0))
    H @ v  # a cached graph, where the method keeps one
    torch.nn.utils.vector_to_parameters(flatten_parameters(model) * 1.5, model.parameters())
    torch.testing.assert_close(H @ v, dense_loss_hessian(model, case.loss_fn, X, Y) @ v)
    model[2].weight = nn.Parameter(torch.zeros_like(model[2].weight))  # a new Parameter
    torch.testing.assert_close(H @ v, dense_loss_hessian(model, case.loss_fn, X, Y) @ v)


def test_a_parameter_replaced_by_another_shape_is_named():
    model, X, Y = CASES["mlp-tanh"].build(F64)
    objective = hesskit.Objective(model, F.cross_entropy, (X, Y))
    model[2].weight = nn.Parameter(torch.zeros(4, 6, dtype=F64))
    with pytest.raises(ValueError, match=r"parameter '2.weight' now has shape \(4, 6\)"):
        objective.loss()
