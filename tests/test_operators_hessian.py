"""The Hessian operator against ``torch.func.hessian`` of the flat loss, in float64."""

import pytest
import torch
from torch import nn

import hesskit
from hesskit.operators.hessian import METHODS
from tests.cases import CASES, dense_loss_hessian

TOL = 1e-10  # float64, products of a few hundred terms: round-off is ~1e-15 relative


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", ["mlp-tanh", "cnn", "mlp-batchnorm"])
def test_hessian_equals_dense_truth(case, method):
    model, X, Y = CASES[case].build()
    expected = dense_loss_hessian(model, CASES[case].loss_fn, X, Y)
    H = hesskit.hessian(model, CASES[case].loss_fn, (X, Y), method=method)
    torch.testing.assert_close(hesskit.dense(H), expected, atol=TOL, rtol=0)


def test_loss_without_forward_mode_falls_back_to_double_backward():
    model, X, Y = CASES["mlp-mse"].build()
    expected = dense_loss_hessian(model, CASES["mlp-mse"].loss_fn, X, Y)
    H = hesskit.hessian(model, CASES["mlp-mse"].loss_fn, (X, Y), method="forward_over_reverse")
    with pytest.warns(RuntimeWarning, match="method='double_backward'"):
        result = hesskit.dense(H)
    assert H.method == "double_backward"
    torch.testing.assert_close(result, expected, atol=TOL, rtol=0)


@pytest.mark.parametrize("method", METHODS)
def test_uneven_batches_equal_one_batch(method):
    model, X, Y = CASES["mlp-tanh"].build()
    batches = [(X[:5], Y[:5]), (X[5:6], Y[5:6]), (X[6:], Y[6:])]
    one = hesskit.dense(hesskit.hessian(model, CASES["mlp-tanh"].loss_fn, (X, Y)))
    split = hesskit.hessian(model, CASES["mlp-tanh"].loss_fn, batches, method=method)
    torch.testing.assert_close(hesskit.dense(split), one, atol=TOL, rtol=0)
    torch.testing.assert_close(hesskit.dense(split), one, atol=TOL, rtol=0)  # cache reused


@pytest.mark.parametrize("method", METHODS)
def test_in_place_parameter_update_is_seen_by_every_method(method):
    model, X, Y = CASES["mlp-tanh"].build()
    loss_fn = CASES["mlp-tanh"].loss_fn
    H = hesskit.hessian(model, loss_fn, [(X[:6], Y[:6]), (X[6:], Y[6:])], method=method)
    before = hesskit.dense(H)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(1.5)
    after = hesskit.dense(H)
    torch.testing.assert_close(after, dense_loss_hessian(model, loss_fn, X, Y), atol=TOL, rtol=0)
    assert not torch.allclose(after, before, atol=1e-3)


def test_dataloader_and_generator_data():
    model, X, Y = CASES["mlp-tanh"].build()
    loss_fn = CASES["mlp-tanh"].loss_fn
    expected = hesskit.dense(hesskit.hessian(model, loss_fn, (X, Y)))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, Y), batch_size=7)
    from_loader = hesskit.dense(hesskit.hessian(model, loss_fn, loader))
    generator = ((X[i : i + 10], Y[i : i + 10]) for i in range(0, len(X), 10))
    from_generator = hesskit.dense(hesskit.hessian(model, loss_fn, generator))
    torch.testing.assert_close(from_loader, expected, atol=TOL, rtol=0)
    torch.testing.assert_close(from_generator, expected, atol=TOL, rtol=0)


@pytest.mark.parametrize("selection", ["names", "module"])
def test_parameter_subset_is_the_dense_block(selection):
    model, X, Y = CASES["mlp-tanh"].build()
    names = ["2.weight", "2.bias"]
    params = names if selection == "names" else model[2]
    H = hesskit.hessian(model, CASES["mlp-tanh"].loss_fn, (X, Y), params=params)
    expected = dense_loss_hessian(model, CASES["mlp-tanh"].loss_fn, X, Y, names=names)
    assert H.shape == (21, 21)
    torch.testing.assert_close(hesskit.dense(H), expected, atol=TOL, rtol=0)


def test_frozen_parameters_are_excluded_by_default():
    model, X, Y = CASES["mlp-tanh"].build()
    model[0].weight.requires_grad_(False)
    H = hesskit.hessian(model, CASES["mlp-tanh"].loss_fn, (X, Y))
    assert H.shape[0] == sum(p.numel() for p in model.parameters()) - 30


def test_function_form_matches_torch_func():
    gen = torch.Generator().manual_seed(1)
    A = torch.randn(6, 6, generator=gen, dtype=torch.float64)
    theta = torch.randn(6, generator=gen, dtype=torch.float64)

    def f(x):
        return torch.tanh(A @ x).pow(2).sum() + x.pow(4).sum()

    H = hesskit.hessian(f, theta)
    torch.testing.assert_close(hesskit.dense(H), torch.func.hessian(f)(theta), atol=TOL, rtol=0)


def test_products_are_symmetric_and_linear():
    model, X, Y = CASES["mlp-tanh"].build()
    H = hesskit.hessian(model, CASES["mlp-tanh"].loss_fn, (X, Y))
    gen = torch.Generator().manual_seed(2)
    u, v = torch.randn(2, H.shape[0], generator=gen, dtype=torch.float64)
    torch.testing.assert_close(u @ (H @ v), v @ (H @ u), atol=TOL, rtol=0)
    torch.testing.assert_close(H @ (2 * u - v), 2 * (H @ u) - H @ v, atol=TOL, rtol=0)
    block = torch.stack([u, v], dim=1)
    torch.testing.assert_close(H @ block, torch.stack([H @ u, H @ v], dim=1), atol=TOL, rtol=0)


def test_model_is_not_mutated():
    model, X, Y = CASES["mlp-batchnorm"].build()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    hesskit.dense(hesskit.hessian(model, CASES["mlp-batchnorm"].loss_fn, (X, Y)))
    assert not model.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert all(p.grad is None for p in model.parameters())


def test_to_scipy_matches_matmat():
    model, X, Y = CASES["mlp-tanh"].build()
    H = hesskit.hessian(model, CASES["mlp-tanh"].loss_fn, (X, Y))
    v = torch.randn(H.shape[0], dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    scipy_op = H.to_scipy()
    assert scipy_op.dtype == "float64"
    torch.testing.assert_close(torch.from_numpy(scipy_op @ v.numpy()), H @ v, atol=TOL, rtol=0)


class TestErrors:
    def test_train_mode_batchnorm_is_rejected(self):
        model, X, Y = CASES["mlp-batchnorm"].build()
        model.train()
        with pytest.raises(ValueError, match=r"train mode .*1.*model.eval\(\)"):
            hesskit.hessian(model, CASES["mlp-batchnorm"].loss_fn, (X, Y))

    def test_train_mode_dropout_is_rejected(self):
        model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
        with pytest.raises(ValueError, match="dropout|Dropout|batch-dependent"):
            hesskit.hessian(model, nn.functional.mse_loss, (torch.ones(3, 2), torch.ones(3, 2)))

    def test_not_a_module_or_function(self):
        with pytest.raises(TypeError, match="f must be a callable"):
            hesskit.hessian(3, torch.ones(2))

    def test_missing_data(self):
        with pytest.raises(ValueError, match="data is required"):
            hesskit.hessian(nn.Linear(2, 1), nn.functional.mse_loss)

    def test_data_with_function_form(self):
        with pytest.raises(ValueError, match="data, params and group are for the model form"):
            hesskit.hessian(lambda x: x.sum(), torch.ones(2), data=(1, 2))

    def test_group_with_function_form(self):
        with pytest.raises(ValueError, match="data, params and group are for the model form"):
            hesskit.hessian(lambda x: x.sum(), torch.ones(2), group=object())

    def test_theta_not_flat(self):
        with pytest.raises(ValueError, match="theta must be a non-empty 1-D tensor"):
            hesskit.hessian(lambda x: x.sum(), torch.ones(2, 2))

    def test_theta_not_float(self):
        with pytest.raises(TypeError, match="theta must be floating point"):
            hesskit.hessian(lambda x: x.sum(), torch.ones(2, dtype=torch.long))

    def test_loss_not_callable(self):
        with pytest.raises(TypeError, match="loss_fn must be callable"):
            hesskit.hessian(nn.Linear(2, 1), "mse", (torch.ones(3, 2), torch.ones(3, 1)))

    def test_unknown_method(self):
        with pytest.raises(ValueError, match="method must be one of"):
            hesskit.hessian(
                nn.Linear(2, 1),
                nn.functional.mse_loss,
                (torch.ones(3, 2), torch.ones(3, 1)),
                method="finite_differences",
            )

    def test_non_finite_batch_is_named(self):
        X = torch.ones(4, 2)
        X[3, 0] = float("nan")
        batches = [(X[:2], torch.ones(2, 1)), (X[2:], torch.ones(2, 1))]
        H = hesskit.hessian(nn.Linear(2, 1), nn.functional.l1_loss, batches)
        with pytest.raises(ValueError, match="not finite on data batch 1"):
            H @ torch.ones(3)

    def test_non_finite_function(self):
        H = hesskit.hessian(lambda x: torch.sqrt(x).sum(), torch.tensor([-1.0, 1.0]))
        with pytest.raises(ValueError, match="Hessian product of f is not finite"):
            H @ torch.ones(2)
