"""Ready-made problems: shapes, labels, seeds, the separation knob, digits subsets."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

import hesskit
from hesskit.problems import (
    Problem,
    digits,
    gaussian_mixture,
    mean_squared_error,
    mlp,
    teacher_student,
)


def nearest_mean_accuracy(problem: Problem) -> float:
    """Training accuracy of the nearest-class-mean classifier (a linear classifier)."""
    inputs, labels = problem.data
    means = torch.stack([inputs[labels == c].mean(0) for c in range(problem.num_classes)])
    return float((torch.cdist(inputs, means).argmin(1) == labels).double().mean())


# ---------------------------------------------------------------- gaussian mixture


def test_mixture_shapes_labels_and_default_model():
    problem = gaussian_mixture(4, input_dim=7, samples_per_cluster=6)
    X, Y = problem.data
    assert X.shape == (24, 7) and X.dtype == torch.float64
    assert Y.dtype == torch.int64 and Y.bincount().tolist() == [6, 6, 6, 6]
    assert problem.num_classes == 4 and problem.num_samples == 24
    assert problem.layer_sizes == (7, 30, 30, 4)  # the paper's input-30-30-k network
    model = problem.make_model()
    assert model(X).shape == (24, 4)
    assert torch.isfinite(problem.loss_fn(model(X), Y))


def test_mixture_defaults_follow_the_paper():
    problem = gaussian_mixture(2, samples_per_cluster=2)
    assert problem.layer_sizes == (100, 30, 30, 2)  # 100-30-30-k, Sagun et al. 2017, 3.1


def test_mixture_means_lie_on_the_separation_sphere():
    problem = gaussian_mixture(3, input_dim=4, samples_per_cluster=4000, separation=2.0)
    inputs, labels = problem.data
    clusters = [inputs[labels == c] for c in range(3)]
    norms = torch.stack([cluster.mean(0).norm() for cluster in clusters])
    # sample mean = mean + noise of covariance I/4000: |error| ~ sqrt(4/4000) = 0.03
    torch.testing.assert_close(norms, torch.full((3,), 2.0, dtype=torch.float64), atol=0.15, rtol=0)
    centred = torch.cat([cluster - cluster.mean(0) for cluster in clusters])
    assert abs(float(centred.var(0).mean()) - 1.0) < 0.05  # unit-variance noise


def test_mixture_seed_reproducible_and_distinct():
    a, b = gaussian_mixture(3, input_dim=5, seed=4), gaussian_mixture(3, input_dim=5, seed=4)
    c = gaussian_mixture(3, input_dim=5, seed=5)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    assert not torch.equal(a.inputs, c.inputs)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mixture_separation_knob_makes_classes_easier(seed):
    def accuracy(separation):
        problem = gaussian_mixture(
            5, input_dim=10, samples_per_cluster=60, separation=separation, seed=seed
        )
        return nearest_mean_accuracy(problem)

    low, high = accuracy(0.5), accuracy(4.0)
    assert high > low + 0.3
    assert high > 0.9


def test_mixture_dtype_and_zero_separation():
    problem = gaussian_mixture(2, input_dim=3, separation=0.0, dtype=torch.float32)
    assert problem.inputs.dtype == torch.float32
    assert next(problem.make_model().parameters()).dtype == torch.float32


def test_mixture_hidden_and_relu():
    problem = gaussian_mixture(3, input_dim=4, hidden=(5,), activation="relu")
    model = problem.make_model()
    assert isinstance(model[1], nn.ReLU) and model[0].out_features == 5


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_clusters": 1}, ValueError, "num_clusters must be >= 2"),
        ({"num_clusters": 2.0}, TypeError, "num_clusters must be an int"),
        ({"input_dim": 0}, ValueError, "input_dim must be >= 1"),
        ({"samples_per_cluster": 0}, ValueError, "samples_per_cluster must be >= 1"),
        ({"separation": -1.0}, ValueError, "separation must be >= 0"),
        ({"separation": float("nan")}, ValueError, "separation must be finite"),
        ({"separation": "far"}, TypeError, "separation must be a finite number"),
        ({"hidden": 30}, TypeError, "hidden must be a sequence"),
        ({"hidden": (30, 0)}, ValueError, r"hidden\[1\] must be >= 1"),
        ({"activation": "gelu"}, ValueError, "activation must be one of"),
        ({"seed": -1}, ValueError, "seed must be >= 0"),
    ],
)
def test_mixture_rejects_bad_arguments(kwargs, error, match):
    arguments = {"num_clusters": 3, "input_dim": 4, "samples_per_cluster": 2, **kwargs}
    with pytest.raises(error, match=match):
        gaussian_mixture(arguments.pop("num_clusters"), **arguments)


# ---------------------------------------------------------------- Problem and mlp


def test_make_model_width_seed_and_global_rng_untouched():
    problem = gaussian_mixture(3, input_dim=4, samples_per_cluster=2)
    state = torch.random.get_rng_state()
    wide = problem.make_model(9, seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert [m.out_features for m in wide if isinstance(m, nn.Linear)] == [9, 9, 3]
    same = hesskit.params.flatten_parameters(problem.make_model(9, seed=1))
    other = hesskit.params.flatten_parameters(problem.make_model(9, seed=2))
    assert torch.equal(hesskit.params.flatten_parameters(wide), same)
    assert not torch.equal(same, other)


def test_make_model_same_init_in_every_dtype():
    problem = gaussian_mixture(2, input_dim=3, samples_per_cluster=2)
    single = problem.make_model(dtype=torch.float32)
    double = problem.make_model()
    flat32 = hesskit.params.flatten_parameters(single)
    assert torch.equal(flat32, hesskit.params.flatten_parameters(double).float())


def test_make_model_rejects_bad_width():
    problem = gaussian_mixture(2, input_dim=3, samples_per_cluster=2)
    with pytest.raises(ValueError, match="width must be >= 1"):
        problem.make_model(0)
    linear = gaussian_mixture(2, input_dim=3, samples_per_cluster=2, hidden=())
    with pytest.raises(ValueError, match="width has no effect"):
        linear.make_model(5)
    assert linear.make_model()(linear.inputs).shape == (4, 2)


def test_problem_to_casts_floats_only():
    problem = teacher_student(input_dim=2, teacher_width=3, num_samples=5)
    single = problem.to(torch.float32)
    assert single.inputs.dtype == single.targets.dtype == torch.float32
    assert next(single.teacher.parameters()).dtype == torch.float32
    assert problem.inputs.dtype == torch.float64  # the original is unchanged
    labels = gaussian_mixture(2, input_dim=3).to(torch.float32).targets
    assert labels.dtype == torch.int64


def test_mlp_rejects_bad_arguments():
    with pytest.raises(ValueError, match="sizes must list at least two"):
        mlp([3])
    with pytest.raises(ValueError, match="sizes must list at least two"):
        mlp("34")
    with pytest.raises(ValueError, match=r"sizes\[1\] must be >= 1"):
        mlp([3, 0, 2])
    with pytest.raises(ValueError, match="activation must be one of"):
        mlp([3, 2], activation="sigmoid")
    with pytest.raises(TypeError, match="seed must be an int"):
        mlp([3, 2], seed=0.5)


def test_mean_squared_error_matches_definition_and_forward_mode():
    out = torch.tensor([[1.0], [2.0]], dtype=torch.float64)
    y = torch.tensor([[0.0], [4.0]], dtype=torch.float64)
    assert float(mean_squared_error(out, y)) == 2.5
    tangent = torch.ones_like(out)
    _, derivative = torch.func.jvp(lambda o: mean_squared_error(o, y), (out,), (tangent,))
    assert float(derivative) == pytest.approx((2 * (out - y)).mean().item())


# ---------------------------------------------------------------- teacher-student


def test_teacher_student_targets_are_the_teachers_outputs():
    problem = teacher_student(input_dim=6, teacher_width=5, num_samples=40, seed=3)
    X, Y = problem.data
    assert X.shape == (40, 6) and Y.shape == (40, 1) and problem.num_classes is None
    assert torch.equal(problem.teacher(X), Y)
    assert 0.1 < float(Y.std()) < 3.0  # weights N(0, 1/fan_in): outputs of order one
    student = problem.make_model()
    assert [m.out_features for m in student if isinstance(m, nn.Linear)] == [5, 1]
    assert problem.make_model(11)[0].out_features == 11
    assert problem.loss_fn is mean_squared_error


def test_teacher_student_seeds_and_student_width():
    a = teacher_student(input_dim=3, teacher_width=4, num_samples=8, seed=1)
    b = teacher_student(input_dim=3, teacher_width=4, num_samples=8, seed=1)
    c = teacher_student(input_dim=3, teacher_width=4, num_samples=8, seed=2)
    assert torch.equal(a.targets, b.targets) and not torch.equal(a.targets, c.targets)
    wide = teacher_student(input_dim=3, teacher_width=4, num_samples=8, student_width=9)
    assert wide.layer_sizes == (3, 9, 1)


def test_teacher_student_hessian_works_in_forward_mode():
    problem = teacher_student(input_dim=2, teacher_width=2, num_samples=6)
    model = problem.make_model()
    dense = hesskit.dense(hesskit.hessian(model, problem.loss_fn, problem.data))
    assert dense.shape == (9, 9)
    torch.testing.assert_close(dense, dense.T)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"input_dim": 0}, ValueError, "input_dim must be >= 1"),
        ({"teacher_width": 0}, ValueError, "teacher_width must be >= 1"),
        ({"num_samples": 0}, ValueError, "num_samples must be >= 1"),
        ({"student_width": 0}, ValueError, "student_width must be >= 1"),
        ({"activation": "elu"}, ValueError, "activation must be one of"),
    ],
)
def test_teacher_student_rejects_bad_arguments(kwargs, error, match):
    arguments = {"input_dim": 2, "teacher_width": 2, "num_samples": 3, **kwargs}
    with pytest.raises(error, match=match):
        teacher_student(**arguments)


# ---------------------------------------------------------------- digits


def test_digits_full_set():
    problem = digits()
    X = problem.inputs
    assert X.shape == (1797, 64) and problem.num_classes == 10
    assert problem.layer_sizes == (64, 32, 10)
    torch.testing.assert_close(X.mean(0), torch.zeros(64, dtype=torch.float64), atol=1e-12, rtol=0)
    varying = X.std(0) > 0
    torch.testing.assert_close(X.std(0)[varying], torch.ones(int(varying.sum()), dtype=X.dtype))


def test_digits_subset_reindexes_in_the_given_order():
    from sklearn.datasets import load_digits

    raw = load_digits()
    problem = digits(classes=(7, 3), standardize=False)
    assert problem.num_classes == 2 and problem.targets.unique().tolist() == [0, 1]
    sevens = torch.tensor(raw.data[raw.target == 7], dtype=torch.float64)
    torch.testing.assert_close(problem.inputs[problem.targets == 0], sevens)
    assert int((problem.targets == 1).sum()) == int((raw.target == 3).sum())


def test_digits_samples_per_class_is_seeded():
    a = digits(classes=(0, 1, 2), samples_per_class=20, seed=0)
    b = digits(classes=(0, 1, 2), samples_per_class=20, seed=0)
    c = digits(classes=(0, 1, 2), samples_per_class=20, seed=1)
    assert a.targets.bincount().tolist() == [20, 20, 20]
    assert torch.equal(a.inputs, b.inputs) and not torch.equal(a.inputs, c.inputs)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"classes": (3,)}, ValueError, "at least two distinct digits"),
        ({"classes": (3, 3)}, ValueError, "at least two distinct digits"),
        ({"classes": (3, 10)}, ValueError, r"classes\[1\] must be >= 0 and <= 9"),
        ({"classes": "37"}, TypeError, "classes must be a sequence of digits"),
        ({"samples_per_class": 0}, ValueError, "samples_per_class must be >= 1"),
        ({"samples_per_class": 500}, ValueError, "digit 0 has only"),
    ],
)
def test_digits_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        digits(**kwargs)


def test_digits_without_scikit_learn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match="digits\\(\\) needs scikit-learn"):
        digits()


def test_gaussian_mixture_standardize_centres_and_scales_each_coordinate():
    raw = gaussian_mixture(3, input_dim=6, samples_per_cluster=50, seed=2)
    problem = gaussian_mixture(3, input_dim=6, samples_per_cluster=50, seed=2, standardize=True)
    torch.testing.assert_close(problem.inputs.mean(dim=0), torch.zeros(6, dtype=torch.float64))
    torch.testing.assert_close(problem.inputs.std(dim=0), torch.ones(6, dtype=torch.float64))
    expected = (raw.inputs - raw.inputs.mean(dim=0)) / raw.inputs.std(dim=0)
    torch.testing.assert_close(problem.inputs, expected)
    assert torch.equal(problem.targets, raw.targets)
