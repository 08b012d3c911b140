"""landscape.plane and landscape.profile against dense references."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hesskit.landscape import LossPlane, plane, plot_plane, profile
from hesskit.landscape.plane import filter_normalized_direction
from hesskit.objective import Objective


def _flat_loss(model: nn.Module, loss_fn, X, Y):
    """The loss as a function of one flat vector, for torch.autograd.functional."""
    names = [name for name, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]

    def loss(theta):
        pieces = torch.split(theta, [s.numel() for s in shapes])
        tensors = {n: t.reshape(s) for n, t, s in zip(names, pieces, shapes, strict=True)}
        return loss_fn(torch.func.functional_call(model, tensors, X), Y)

    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    return loss, flat


def _regression():
    """Linear least squares: a quadratic loss, so the second-order model is exact."""
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(30, 4, generator=gen, dtype=torch.float64)
    Y = torch.randn(30, 1, generator=gen, dtype=torch.float64)
    torch.manual_seed(0)
    return nn.Linear(4, 1).double(), nn.functional.mse_loss, X, Y  # one output: simple spectrum


def _mlp():
    gen = torch.Generator().manual_seed(1)
    X = torch.randn(40, 3, generator=gen, dtype=torch.float64)
    Y = torch.randint(0, 3, (40,), generator=gen)
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 3)).double()
    return model, nn.functional.cross_entropy, X, Y


def test_hessian_plane_of_a_quadratic_is_its_second_order_model():
    model, loss_fn, X, Y = _regression()
    loss, theta = _flat_loss(model, loss_fn, X, Y)
    values, vectors = torch.linalg.eigh(torch.autograd.functional.hessian(loss, theta))
    gradient = torch.autograd.functional.jacobian(loss, theta)
    result = plane(model, loss_fn, (X, Y), extent=0.5, num_points=5)
    assert isinstance(result, LossPlane) and result.kind == "hessian"
    assert torch.allclose(result.eigenvalues, values.flip(0)[:2], atol=1e-10)
    for column in range(2):  # the top eigenvectors, up to sign
        overlap = float(result.directions[:, column] @ vectors[:, -1 - column])
        assert abs(overlap) == pytest.approx(1.0, abs=1e-8)
    a, b = result.alpha[:, None], result.beta[None, :]
    g1, g2 = gradient @ result.directions[:, 0], gradient @ result.directions[:, 1]
    l1, l2 = result.eigenvalues
    expected = loss(theta) + a * g1 + b * g2 + (a**2 * l1 + b**2 * l2) / 2
    assert torch.allclose(result.losses, expected, rtol=0, atol=1e-12)


def test_profile_of_a_quadratic_is_its_second_order_model():
    model, loss_fn, X, Y = _regression()
    loss, theta = _flat_loss(model, loss_fn, X, Y)
    gradient = torch.autograd.functional.jacobian(loss, theta)
    line = profile(model, loss_fn, (X, Y), extent=2.0, num_points=9)
    d = line.direction
    expected = loss(theta) + line.t * (gradient @ d) + line.t**2 * line.eigenvalue / 2
    assert torch.allclose(line.losses, expected, rtol=0, atol=1e-12)


def test_every_grid_point_is_the_loss_there_and_the_model_is_untouched():
    model, loss_fn, X, Y = _mlp()
    loss, theta = _flat_loss(model, loss_fn, X, Y)
    before = {name: p.clone() for name, p in model.state_dict().items()}
    for directions in ("hessian", "random"):
        result = plane(model, loss_fn, (X, Y), directions=directions, num_points=3, generator=2)
        for i, a in enumerate(result.alpha):
            for j, b in enumerate(result.beta):
                point = theta + a * result.directions[:, 0] + b * result.directions[:, 1]
                assert float(result.losses[i, j]) == pytest.approx(float(loss(point)), rel=1e-12)
        assert float(result.losses[1, 1]) == pytest.approx(float(loss(theta)), rel=1e-12)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[name])


def test_batches_give_the_plane_of_the_whole_data_set():
    model, loss_fn, X, Y = _mlp()
    whole = plane(model, loss_fn, (X, Y), num_points=3)
    batches = [(X[:15], Y[:15]), (X[15:], Y[15:])]
    split = plane(model, loss_fn, batches, num_points=3)
    assert torch.allclose(split.losses, whole.losses, rtol=1e-12)


def test_random_directions_are_filter_normalised_and_seeded():
    model, loss_fn, X, Y = _mlp()
    objective = Objective(model, loss_fn, (X, Y))
    direction = filter_normalized_direction(objective, torch.Generator().manual_seed(0))
    parts = objective.layout.unflatten(direction)
    for name, weights in objective.theta.items():
        if weights.ndim == 1:  # biases: zero (Li et al.'s ignore='biasbn')
            assert torch.equal(parts[name], torch.zeros_like(weights))
        else:
            assert torch.allclose(parts[name].norm(dim=1), weights.norm(dim=1), rtol=1e-12)
    first = plane(model, loss_fn, (X, Y), directions="random", num_points=3, generator=5)
    again = plane(model, loss_fn, (X, Y), directions="random", num_points=3, generator=5)
    other = plane(model, loss_fn, (X, Y), directions="random", num_points=3, generator=6)
    assert torch.equal(first.directions, again.directions)
    assert torch.equal(first.losses, again.losses)
    assert not torch.equal(first.directions, other.directions)


def test_given_directions_are_used_as_they_are():
    model, loss_fn, X, Y = _mlp()
    n = sum(p.numel() for p in model.parameters())
    d = torch.zeros(n, 2, dtype=torch.float64)
    d[0, 0] = d[1, 1] = 1.0
    from_tensor = plane(model, loss_fn, (X, Y), directions=d, num_points=3)
    from_pair = plane(model, loss_fn, (X, Y), directions=(d[:, 0], d[:, 1]), num_points=3)
    assert from_tensor.kind == "given" and torch.equal(from_tensor.directions, d)
    assert torch.equal(from_tensor.losses, from_pair.losses)
    line = profile(model, loss_fn, (X, Y), direction=d[:, 0], num_points=3)
    assert torch.equal(line.losses, from_tensor.losses[:, 1])


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"directions": "eigen"}, ValueError, "directions must be one of"),
        ({"directions": (torch.zeros(3),)}, ValueError, "two flat vectors"),
        ({"directions": (torch.zeros(3), torch.zeros(3))}, ValueError, "directions"),
        ({"num_points": 1}, ValueError, "num_points must be >= 2"),
        ({"extent": 0.0}, ValueError, "extent must be a finite number > 0"),
        ({"progress": "yes"}, TypeError, "progress must be"),
    ],
)
def test_bad_arguments_name_themselves(options, error, match):
    model, loss_fn, X, Y = _mlp()
    with pytest.raises(error, match=match):
        plane(model, loss_fn, (X, Y), **options)


def test_progress_counts_every_loss_and_the_figure_draws(tmp_path):
    model, loss_fn, X, Y = _mlp()
    calls = []
    result = plane(model, loss_fn, (X, Y), num_points=3, progress=lambda *c: calls.append(c))
    assert calls == [(done, 9) for done in range(1, 10)]
    ax = plot_plane(result)
    assert ax.get_xlabel().startswith("eigenvector 1 (lambda = ")
    ax.figure.savefig(tmp_path / "plane.png")
    assert (tmp_path / "plane.png").read_bytes()[:4] == b"\x89PNG"
