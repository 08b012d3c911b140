"""Loss along segments (endpoints, convex case, exact barriers) and permuted copies of MLPs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hesskit.landscape import LinearPath, interpolate, permute_hidden_units
from hesskit.params import flatten_parameters
from hesskit.problems import gaussian_mixture, mean_squared_error, mlp

DOUBLE = torch.float64


@pytest.fixture(scope="module")
def mixture():
    return gaussian_mixture(3, input_dim=4, samples_per_cluster=10, hidden=(6,), seed=2)


def loss_of(problem, model) -> float:
    with torch.no_grad():
        return float(problem.loss_fn(model(problem.inputs), problem.targets))


def test_endpoints_are_the_losses_at_theta_a_and_theta_b(mixture):
    model_a, model_b = mixture.make_model(seed=0), mixture.make_model(seed=1)
    theta_a, theta_b = flatten_parameters(model_a), flatten_parameters(model_b)
    path = interpolate(model_a, mixture.loss_fn, mixture.data, theta_a, theta_b)
    assert isinstance(path, LinearPath) and path.t.shape == path.losses.shape == (21,)
    assert float(path.t[0]) == 0.0 and float(path.t[-1]) == 1.0
    assert float(path.losses[0]) == pytest.approx(loss_of(mixture, model_a), rel=1e-14)
    assert float(path.losses[-1]) == pytest.approx(loss_of(mixture, model_b), rel=1e-14)
    assert float(path.excess[0]) == 0.0 and float(path.excess[-1]) == 0.0
    assert path.barrier >= 0.0
    assert torch.equal(flatten_parameters(model_a), theta_a)  # the model is untouched


def test_batches_give_the_mean_over_all_samples(mixture):
    model = mixture.make_model()
    theta_a, theta_b = flatten_parameters(model), flatten_parameters(mixture.make_model(seed=3))
    X, Y = mixture.data
    batches = [(X[:7], Y[:7]), (X[7:], Y[7:])]  # unequal sizes: weighted by sample counts
    whole = interpolate(model, mixture.loss_fn, mixture.data, theta_a, theta_b, num_points=5)
    split = interpolate(model, mixture.loss_fn, batches, theta_a, theta_b, num_points=5)
    torch.testing.assert_close(split.losses, whole.losses)


def test_convex_problem_has_no_barrier():
    """Least squares is convex in the parameters: the loss lies below the chord."""
    gen = torch.Generator().manual_seed(0)
    X, Y = (
        torch.randn(30, 4, generator=gen, dtype=DOUBLE),
        torch.randn(30, 1, generator=gen, dtype=DOUBLE),
    )
    model = nn.Linear(4, 1, dtype=DOUBLE)
    theta_a, theta_b = torch.randn(2, 5, generator=gen, dtype=DOUBLE)
    path = interpolate(model, mean_squared_error, (X, Y), theta_a, theta_b, num_points=11)
    assert abs(path.barrier) <= 1e-12
    assert bool((path.excess[1:-1] < 0).all())
    assert path.argmax_t in (0.0, 1.0)


def test_double_well_barrier_by_hand():
    """L(w) = (w^2 - 1)^2 has minima at -1 and 1 and L(0) = 1: barrier 1 at t = 1/2."""
    model = nn.Linear(1, 1, bias=False, dtype=DOUBLE)
    data = (torch.ones(1, 1, dtype=DOUBLE), torch.ones(1, dtype=DOUBLE))

    def double_well(out, y):
        return ((out.squeeze(1) ** 2 - y) ** 2).mean()

    a, b = torch.tensor([-1.0], dtype=DOUBLE), torch.tensor([1.0], dtype=DOUBLE)
    path = interpolate(model, double_well, data, a, b, num_points=21)
    assert path.barrier == pytest.approx(1.0, abs=1e-15) and path.argmax_t == 0.5
    expected = ((1 - 2 * path.t) ** 2 - 1) ** 2  # w(t) = 2t - 1
    torch.testing.assert_close(path.losses, expected)


def symmetric_net() -> nn.Sequential:
    """f(x) = tanh(x) - tanh(-x) = 2 tanh(x): units (u, v) = (1, 1) and (-1, -1)."""
    net = mlp([1, 2, 1], seed=0)
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0], [-1.0]]))
        net[0].bias.zero_()
        net[2].weight.copy_(torch.tensor([[1.0, -1.0]]))
        net[2].bias.zero_()
    return net


def test_permuted_copy_computes_the_same_function_elsewhere():
    net = mlp([3, 5, 4, 2], seed=1)
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(0), dtype=DOUBLE)
    for layer, permutation in ((0, [4, 2, 0, 1, 3]), (1, torch.tensor([3, 2, 1, 0]))):
        copy_ = permute_hidden_units(net, layer, permutation)
        torch.testing.assert_close(copy_(x), net(x), rtol=1e-14, atol=1e-14)
        assert not torch.equal(flatten_parameters(copy_), flatten_parameters(net))
    identity = permute_hidden_units(net, 0, range(5))
    assert torch.equal(flatten_parameters(identity), flatten_parameters(net))


def test_permuted_copy_without_bias():
    net = nn.Sequential(nn.Linear(2, 3, bias=False), nn.ReLU(), nn.Linear(3, 1)).double()
    x = torch.randn(4, 2, dtype=DOUBLE, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(permute_hidden_units(net, 0, [1, 2, 0])(x), net(x))


def test_segment_to_a_permuted_copy_has_the_barrier_computed_by_hand():
    """Along the segment from the symmetric net to its swapped copy the units are
    s(1, -1) with s = 1 - 2t, so f_t(x) = 2 s tanh(s x): the function vanishes at t = 1/2
    and the loss against the targets 2 tanh(x) peaks there at mean(4 tanh(x)^2)."""
    net = symmetric_net()
    x = torch.linspace(-2, 2, 9, dtype=DOUBLE).unsqueeze(1)
    y = 2 * torch.tanh(x)
    swapped = permute_hidden_units(net, 0, [1, 0])
    torch.testing.assert_close(swapped(x), net(x))
    theta_a, theta_b = flatten_parameters(net), flatten_parameters(swapped)
    path = interpolate(net, mean_squared_error, (x, y), theta_a, theta_b)
    assert float(path.losses[0]) == pytest.approx(0.0, abs=1e-30)
    assert path.argmax_t == 0.5
    assert path.barrier == pytest.approx(float((4 * torch.tanh(x) ** 2).mean()), rel=1e-12)


def test_interpolate_a_subset_of_parameters(mixture):
    model = mixture.make_model()
    last = model[2]
    theta_a = flatten_parameters(model, params=[last])
    theta_b = theta_a + 0.5
    path = interpolate(
        model, mixture.loss_fn, mixture.data, theta_a, theta_b, params=[last], num_points=3
    )
    moved = mixture.make_model()
    with torch.no_grad():
        moved[2].weight.add_(0.5)
        moved[2].bias.add_(0.5)
    assert float(path.losses[-1]) == pytest.approx(loss_of(mixture, moved), rel=1e-13)


def test_interpolate_rejects_bad_arguments(mixture):
    model = mixture.make_model()
    theta = flatten_parameters(model)
    args = (model, mixture.loss_fn, mixture.data)
    with pytest.raises(ValueError, match=r"theta_a must have shape \(51,\)"):
        interpolate(*args, theta[:-1], theta)
    with pytest.raises(TypeError, match="theta_b must be a torch.Tensor"):
        interpolate(*args, theta, theta.tolist())
    with pytest.raises(TypeError, match="theta_b has dtype torch.float32"):
        interpolate(*args, theta, theta.float())
    with pytest.raises(ValueError, match="theta_a must be finite"):
        interpolate(*args, torch.full_like(theta, float("nan")), theta)
    with pytest.raises(ValueError, match="num_points must be >= 2"):
        interpolate(*args, theta, theta, num_points=1)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        interpolate("model", mixture.loss_fn, mixture.data, theta, theta)
    with pytest.raises(TypeError, match="loss_fn must be callable"):
        interpolate(model, None, mixture.data, theta, theta)


def test_permute_rejects_bad_arguments():
    net = mlp([2, 3, 1])
    with pytest.raises(TypeError, match="model must be an nn.Sequential"):
        permute_hidden_units(nn.Linear(2, 3), 0, [0, 1, 2])
    with pytest.raises(ValueError, match=r"layer_index must be in \[0, 0\]"):
        permute_hidden_units(net, 1, [0])
    with pytest.raises(ValueError, match=r"layer_index must be in \[0, 0\]"):
        permute_hidden_units(net, -1, [0, 1, 2])
    with pytest.raises(TypeError, match="layer_index must be an int"):
        permute_hidden_units(net, True, [0, 1, 2])
    with pytest.raises(ValueError, match=r"permutation must be a permutation of range\(3\)"):
        permute_hidden_units(net, 0, [0, 1, 1])
    with pytest.raises(ValueError, match=r"permutation must be a permutation of range\(3\)"):
        permute_hidden_units(net, 0, [0, 1])
    with pytest.raises(ValueError, match="permutation must be a 1-D sequence of ints"):
        permute_hidden_units(net, 0, [0.0, 1.0, 2.0])
    normed = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Linear(3, 1))
    with pytest.raises(ValueError, match=r"model\[1\] \(BatchNorm1d\) has parameters"):
        permute_hidden_units(normed, 0, [0, 1, 2])
