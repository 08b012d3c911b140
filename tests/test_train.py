"""Trainers: stop rule at a target loss, copies, seeds; spherical gradient descent."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from hesskit.params import flatten_parameters
from hesskit.problems import SphericalSpinGlass, gaussian_mixture, reference, teacher_student
from hesskit.train import adam, gradient_descent, sgd, spherical_gradient_descent


@pytest.fixture(scope="module")
def mixture():
    return gaussian_mixture(3, input_dim=8, samples_per_cluster=20, hidden=(8, 8), seed=1)


def full_loss(problem, model) -> float:
    with torch.no_grad():
        return float(problem.loss_fn(model(problem.inputs), problem.targets))


# ---------------------------------------------------------------- networks


def test_gradient_descent_stops_at_the_target_loss(mixture):
    model = mixture.make_model()
    before = flatten_parameters(model)
    run = gradient_descent(
        model, mixture.loss_fn, mixture.data, lr=0.5, max_steps=2000, target_loss=0.1
    )
    assert run.reached_target and run.final_loss <= 0.1
    assert all(loss > 0.1 for loss in run.losses[:-1])  # stopped at the first hit
    assert run.steps == list(range(run.num_steps + 1)) and 0 < run.num_steps < 2000
    assert run.losses[0] == pytest.approx(full_loss(mixture, model), rel=1e-14)
    assert run.final_loss == pytest.approx(full_loss(mixture, run.model), rel=1e-14)
    assert torch.equal(flatten_parameters(model), before)  # the user's model is untouched
    assert not torch.equal(flatten_parameters(run.model), before)


def test_gradient_descent_is_deterministic_and_runs_max_steps_without_target(mixture):
    runs = [
        gradient_descent(
            mixture.make_model(), mixture.loss_fn, mixture.data, lr=0.3, max_steps=25, eval_every=10
        )
        for _ in range(2)
    ]
    assert torch.equal(flatten_parameters(runs[0].model), flatten_parameters(runs[1].model))
    assert runs[0].steps == [0, 10, 20, 25] and runs[0].num_steps == 25
    assert not runs[0].reached_target
    assert runs[0].losses[-1] < runs[0].losses[0]


def test_zero_steps_only_evaluates(mixture):
    model = mixture.make_model()
    run = gradient_descent(
        model, mixture.loss_fn, mixture.data, lr=0.1, max_steps=0, target_loss=10.0
    )
    assert run.steps == [0] and run.num_steps == 0 and run.reached_target
    assert torch.equal(flatten_parameters(run.model), flatten_parameters(model))


def test_sgd_is_reproducible_for_a_seed(mixture):
    def train(seed):
        run = sgd(
            mixture.make_model(),
            mixture.loss_fn,
            mixture.data,
            lr=0.2,
            batch_size=8,
            max_steps=30,
            seed=seed,
            momentum=0.5,
        )
        return run, flatten_parameters(run.model)

    (run_a, a), (run_b, b), (_, c) = train(0), train(0), train(1)
    assert torch.equal(a, b) and run_a.losses == run_b.losses
    assert not torch.equal(a, c)


def test_sgd_reaches_the_target_and_checks_it_on_the_full_data(mixture):
    run = sgd(
        mixture.make_model(),
        mixture.loss_fn,
        mixture.data,
        lr=0.2,
        batch_size=10,
        max_steps=3000,
        target_loss=0.1,
        seed=3,
    )
    assert run.reached_target
    assert run.final_loss == pytest.approx(full_loss(mixture, run.model), rel=1e-14)
    assert run.final_loss <= 0.1 < min(run.losses[:-1])


def test_sgd_with_the_whole_data_per_step_is_gradient_descent(mixture):
    model = mixture.make_model()
    n = mixture.num_samples
    stochastic = sgd(model, mixture.loss_fn, mixture.data, lr=0.3, batch_size=n, max_steps=20)
    full = gradient_descent(model, mixture.loss_fn, mixture.data, lr=0.3, max_steps=20)
    torch.testing.assert_close(torch.tensor(stochastic.losses), torch.tensor(full.losses))


def test_adam_full_batch_and_minibatch(mixture):
    model = mixture.make_model()
    full = adam(model, mixture.loss_fn, mixture.data, lr=0.02, max_steps=1000, target_loss=0.1)
    assert full.reached_target and full.final_loss <= 0.1
    mini = [
        adam(model, mixture.loss_fn, mixture.data, lr=0.02, max_steps=15, batch_size=6, seed=2)
        for _ in range(2)
    ]
    assert torch.equal(flatten_parameters(mini[0].model), flatten_parameters(mini[1].model))
    assert mini[0].losses[-1] < mini[0].losses[0]


def test_divergence_raises():
    problem = teacher_student(input_dim=3, teacher_width=3, num_samples=10)
    with pytest.raises(ValueError, match="training diverged"):
        gradient_descent(problem.make_model(), problem.loss_fn, problem.data, lr=1e6, max_steps=50)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"model": "net"}, TypeError, "model must be a torch.nn.Module"),
        ({"loss_fn": 3}, TypeError, "loss_fn must be callable"),
        ({"data": torch.zeros(3)}, TypeError, "data must be an"),
        ({"data": (torch.zeros(3, 8), torch.zeros(4))}, ValueError, "same number of samples"),
        ({"data": (torch.zeros(0, 8), torch.zeros(0))}, ValueError, "data is empty"),
        (
            {"data": (torch.zeros(3, 8), torch.zeros(3))},
            TypeError,
            "data batch 0 has dtype torch.float32",
        ),
        ({"lr": 0.0}, ValueError, "lr must be a finite number > 0"),
        ({"max_steps": -1}, ValueError, "max_steps must be >= 0"),
        ({"eval_every": 0}, ValueError, "eval_every must be >= 1"),
        ({"target_loss": math.nan}, ValueError, "target_loss must be finite"),
        ({"batch_size": 0}, ValueError, "batch_size must be >= 1"),
        ({"batch_size": 61}, ValueError, "batch_size must be >= 1 and <= 60"),
        ({"seed": -2}, ValueError, "seed must be >= 0"),
        ({"momentum": 1.0}, ValueError, r"momentum must be in \[0, 1\)"),
    ],
)
def test_sgd_rejects_bad_arguments(mixture, kwargs, error, match):
    arguments = {
        "model": mixture.make_model(),
        "loss_fn": mixture.loss_fn,
        "data": mixture.data,
        "lr": 0.1,
        "batch_size": 5,
        "max_steps": 2,
        **kwargs,
    }
    with pytest.raises(error, match=match):
        sgd(arguments.pop("model"), arguments.pop("loss_fn"), arguments.pop("data"), **arguments)


def test_model_without_trainable_parameters_is_rejected(mixture):
    frozen = mixture.make_model().requires_grad_(False)
    with pytest.raises(ValueError, match="model has no trainable parameters"):
        adam(frozen, mixture.loss_fn, mixture.data, lr=0.1, max_steps=1)
    with pytest.raises(ValueError, match="model has no trainable parameters"):
        gradient_descent(nn.Tanh(), mixture.loss_fn, mixture.data, lr=0.1, max_steps=1)


# ---------------------------------------------------------------- spherical gradient descent


def test_spherical_descent_stays_on_the_sphere_and_descends():
    glass = SphericalSpinGlass(30, 3, seed=0)
    run = spherical_gradient_descent(glass, glass.random_point(0), lr=0.02, max_steps=300)
    assert abs(float(run.point @ run.point) - 30) < 1e-10
    assert run.energies.shape == (301,) and run.num_steps.ndim == 0
    assert bool((run.energies.diff() <= 1e-12).all())  # monotone for a small step
    torch.testing.assert_close(run.final_energy, glass.energy_per_spin(run.point))


def test_spherical_descent_ends_between_the_ground_state_and_zero():
    glass = SphericalSpinGlass(50, 3, seed=1)
    run = spherical_gradient_descent(glass, glass.random_point(1), lr=0.1, max_steps=3000, tol=1e-6)
    assert bool(run.converged) and float(run.gradient_norm) < 1e-6
    assert int(run.num_steps) == run.energies.shape[0] - 1
    final = float(run.final_energy)
    assert reference.GROUND_STATE_ENERGY[3].value < final < 0
    riemannian = glass.riemannian_gradient(run.point)
    assert float(riemannian.norm()) / math.sqrt(50) < 1e-6


def test_spherical_descent_batch_equals_separate_runs():
    glass = SphericalSpinGlass(12, 3, seed=2)
    starts = glass.random_point(3, num_points=3)
    batch = spherical_gradient_descent(glass, starts, lr=0.1, max_steps=400, tol=1e-4)
    assert batch.point.shape == (3, 12) and batch.energies.shape[1] == 3
    for row, start in enumerate(starts):
        single = spherical_gradient_descent(glass, start, lr=0.1, max_steps=400, tol=1e-4)
        torch.testing.assert_close(batch.point[row], single.point)
        assert int(batch.num_steps[row]) == int(single.num_steps)
        assert bool(batch.converged[row]) == bool(single.converged)
    assert bool(batch.converged.all())
    # a converged run is frozen: its energy stays constant after it stops
    first = int(batch.num_steps.argmin())
    tail = batch.energies[int(batch.num_steps[first]) :, first]
    assert bool((tail == tail[0]).all())


def test_spherical_descent_projects_the_start_and_zero_steps():
    glass = SphericalSpinGlass(5, 4, seed=0)
    start = 3 * glass.random_point(0)
    run = spherical_gradient_descent(glass, start, lr=0.1, max_steps=0)
    torch.testing.assert_close(run.point, start / 3)
    assert int(run.num_steps) == 0 and run.energies.shape == (1,)


def test_spherical_descent_rejects_bad_arguments():
    glass = SphericalSpinGlass(4, seed=0)
    w = glass.random_point(0)
    with pytest.raises(TypeError, match="glass must be a SphericalSpinGlass"):
        spherical_gradient_descent("glass", w, lr=0.1, max_steps=1)
    with pytest.raises(ValueError, match=r"w0 must have shape \(N,\) or \(R, N\)"):
        spherical_gradient_descent(glass, w.reshape(1, 1, 4), lr=0.1, max_steps=1)
    with pytest.raises(ValueError, match=r"w must have shape \(4,\)"):
        spherical_gradient_descent(glass, w[:3], lr=0.1, max_steps=1)
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        spherical_gradient_descent(glass, w, lr=-0.1, max_steps=1)
    with pytest.raises(ValueError, match="max_steps must be >= 0"):
        spherical_gradient_descent(glass, w, lr=0.1, max_steps=-1)
    with pytest.raises(ValueError, match="tol must be a finite number > 0"):
        spherical_gradient_descent(glass, w, lr=0.1, max_steps=1, tol=0.0)
