"""Class-mean gradients against a brute-force loop over samples with torch.autograd."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import hesskit
from hesskit.spectrum import ClassMeanGradients, class_mean_gradients

F64 = torch.float64
F = nn.functional
ATOL = 1e-12  # float64: sums of ~20 gradients of O(1) entries, round-off ~1e-15


def _problem(seed: int = 0, samples: int = 20):
    """A tiny float64 tanh MLP (4 -> 5 -> 3), inputs and labels covering all 3 classes."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3)).to(F64).eval()
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(samples, 4, dtype=F64, generator=gen)
    Y = torch.arange(samples) % 3
    return model, X, Y[torch.randperm(samples, generator=gen)]


def _trainable(model: nn.Module) -> list[torch.Tensor]:
    return [p for p in model.parameters() if p.requires_grad]


def _brute_force(model, loss_fn, X, Y, labels):
    """Per-group means of per-sample loss gradients and output Jacobians, sample by sample."""
    params = _trainable(model)
    classes = sorted(set(labels.tolist()))
    loss_means, logit_means = [], []
    for c in classes:
        rows = [i for i in range(len(X)) if int(labels[i]) == c]
        loss_sum, jacobian_sum = 0, 0
        for i in rows:
            outputs = model(X[i : i + 1])
            grads = torch.autograd.grad(loss_fn(outputs, Y[i : i + 1]), params, retain_graph=True)
            loss_sum = loss_sum + torch.cat([g.reshape(-1) for g in grads])
            rows_of_jacobian = []
            for o in range(outputs.shape[1]):
                grads = torch.autograd.grad(outputs[0, o], params, retain_graph=True)
                rows_of_jacobian.append(torch.cat([g.reshape(-1) for g in grads]))
            jacobian_sum = jacobian_sum + torch.stack(rows_of_jacobian, dim=1)  # (n, k_out)
        loss_means.append(loss_sum / len(rows))
        logit_means.append(jacobian_sum / len(rows))
    return classes, torch.stack(loss_means, dim=1), torch.stack(logit_means, dim=1)


def test_matches_brute_force_with_logits() -> None:
    model, X, Y = _problem()
    result = class_mean_gradients(model, F.cross_entropy, (X, Y), include_logits=True)
    classes, loss_means, logit_means = _brute_force(model, F.cross_entropy, X, Y, Y)
    assert isinstance(result, ClassMeanGradients)
    assert result.classes.tolist() == classes == [0, 1, 2]
    assert result.counts.tolist() == [int(Y.eq(c).sum()) for c in classes]
    n = sum(p.numel() for p in model.parameters())
    assert result.loss_means.shape == (n, 3) and result.logit_means.shape == (n, 3, 3)
    assert result.loss_means.dtype == F64
    torch.testing.assert_close(result.loss_means, loss_means, atol=ATOL, rtol=0)
    torch.testing.assert_close(result.logit_means, logit_means, atol=ATOL, rtol=0)


def test_groups_other_than_the_targets() -> None:
    model, X, Y = _problem(1)
    groups = torch.tensor([7, 0, 5] * 6 + [0, 7])
    result = class_mean_gradients(model, F.cross_entropy, (X, Y), groups=groups)
    classes, loss_means, _ = _brute_force(model, F.cross_entropy, X, Y, groups)
    assert result.classes.tolist() == classes == [0, 5, 7]
    assert result.counts.tolist() == [7, 6, 7]
    assert result.logit_means is None
    torch.testing.assert_close(result.loss_means, loss_means, atol=ATOL, rtol=0)


def test_regression_targets_with_groups() -> None:
    model, X, _ = _problem(2)
    targets = torch.randn(20, 3, dtype=F64, generator=torch.Generator().manual_seed(2))
    groups = torch.arange(20) % 4
    result = class_mean_gradients(model, F.mse_loss, (X, targets), groups=groups)
    _, loss_means, _ = _brute_force(model, F.mse_loss, X, targets, groups)
    torch.testing.assert_close(result.loss_means, loss_means, atol=ATOL, rtol=0)


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 20])
def test_chunk_size_does_not_change_the_result(chunk_size: int) -> None:
    model, X, Y = _problem(3)
    reference = class_mean_gradients(model, F.cross_entropy, (X, Y), include_logits=True)
    result = class_mean_gradients(
        model, F.cross_entropy, (X, Y), include_logits=True, chunk_size=chunk_size
    )
    torch.testing.assert_close(result.loss_means, reference.loss_means, atol=ATOL, rtol=0)
    torch.testing.assert_close(result.logit_means, reference.logit_means, atol=ATOL, rtol=0)


def test_weighted_class_means_are_the_full_batch_gradient() -> None:
    model, X, Y = _problem(4)
    result = class_mean_gradients(model, F.cross_entropy, (X, Y), chunk_size=6)
    weighted = result.loss_means @ result.counts.to(F64) / len(X)
    grads = torch.autograd.grad(F.cross_entropy(model(X), Y), list(model.parameters()))
    full = torch.cat([g.reshape(-1) for g in grads])
    torch.testing.assert_close(weighted, full, atol=ATOL, rtol=0)


def test_layout_matches_the_hessian_and_skips_frozen_parameters() -> None:
    model, X, Y = _problem(5)
    model[0].bias.requires_grad_(False)
    result = class_mean_gradients(model, F.cross_entropy, (X, Y))
    hessian = hesskit.hessian(model, F.cross_entropy, (X, Y))
    assert result.loss_means.shape[0] == hessian.shape[0] == 5 * 4 + 3 * 5 + 3
    _, loss_means, _ = _brute_force(model, F.cross_entropy, X, Y, Y)
    torch.testing.assert_close(result.loss_means, loss_means, atol=ATOL, rtol=0)
    # the Hessian's flat layout: d/dtheta of the mean loss, in hesskit's parameter order
    flat = hesskit.params.flatten_parameters(model)
    layout = hesskit.params.layout_of(hesskit.params.select_parameters(model, None))

    def mean_loss(vector: torch.Tensor) -> torch.Tensor:
        theta = {**dict(model.named_parameters()), **layout.unflatten(vector)}
        return F.cross_entropy(torch.func.functional_call(model, theta, (X,)), Y)

    gradient = torch.func.grad(mean_loss)(flat)
    weighted = result.loss_means @ result.counts.to(F64) / len(X)
    torch.testing.assert_close(weighted, gradient, atol=ATOL, rtol=0)


def test_model_is_not_mutated() -> None:
    model, X, Y = _problem(6)
    before = {name: t.clone() for name, t in model.state_dict().items()}
    class_mean_gradients(model, F.cross_entropy, (X, Y), include_logits=True)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[name])
    assert all(p.grad is None for p in model.parameters())


def test_errors() -> None:
    model, X, Y = _problem()
    data = (X, Y)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        class_mean_gradients(lambda x: x, F.cross_entropy, data)
    with pytest.raises(TypeError, match=r"loss_fn must be callable as loss_fn\(outputs"):
        class_mean_gradients(model, "cross_entropy", data)
    with pytest.raises(TypeError, match=r"data must be an \(inputs, targets\) pair"):
        class_mean_gradients(model, F.cross_entropy, [data])
    with pytest.raises(ValueError, match="same number of samples"):
        class_mean_gradients(model, F.cross_entropy, (X, Y[:5]))
    with pytest.raises(TypeError, match="include_logits must be True or False"):
        class_mean_gradients(model, F.cross_entropy, data, include_logits=1)
    with pytest.raises(ValueError, match="chunk_size must be >= 1"):
        class_mean_gradients(model, F.cross_entropy, data, chunk_size=0)
    with pytest.raises(TypeError, match="data batch 0 has dtype torch.float32"):
        class_mean_gradients(model, F.cross_entropy, (X.float(), Y))
    with pytest.raises(TypeError, match="targets must be integer class or group labels"):
        class_mean_gradients(model, F.mse_loss, (X, torch.randn(20, 3, dtype=F64)))
    with pytest.raises(ValueError, match=r"targets must have shape \(20,\).*pass groups="):
        class_mean_gradients(model, F.cross_entropy, (X, torch.zeros(20, 1, dtype=torch.long)))
    with pytest.raises(TypeError, match="groups must be an integer torch.Tensor or None"):
        class_mean_gradients(model, F.cross_entropy, data, groups=[0] * 20)
    with pytest.raises(TypeError, match="groups must be integer class or group labels"):
        class_mean_gradients(model, F.cross_entropy, data, groups=torch.zeros(20))
    with pytest.raises(ValueError, match=r"groups must have shape \(20,\), one label per sample"):
        class_mean_gradients(model, F.cross_entropy, data, groups=torch.zeros(19, dtype=int))
    with pytest.raises(ValueError, match=r"loss_fn must return a scalar \(0-d\) tensor"):
        class_mean_gradients(model, lambda o, t: F.cross_entropy(o, t, reduction="none"), data)
    with pytest.raises(ValueError, match="a class-mean gradient is not finite"):
        class_mean_gradients(model, F.cross_entropy, (X * torch.nan, Y))


def test_model_errors() -> None:
    _, X, Y = _problem()
    dropout = nn.Sequential(nn.Linear(4, 3), nn.Dropout()).to(F64)
    with pytest.raises(ValueError, match="model is in train mode with batch-dependent layers"):
        class_mean_gradients(dropout, F.cross_entropy, (X, Y))
    mixed = nn.Sequential(nn.Linear(4, 5), nn.Linear(5, 3).to(F64))
    with pytest.raises(TypeError, match="parameter '1.weight' has dtype torch.float64"):
        class_mean_gradients(mixed, F.cross_entropy, (X.float(), Y))
    unflat = nn.Sequential(nn.Linear(4, 6), nn.Unflatten(1, (2, 3))).to(F64)
    loss = lambda outputs, targets: outputs.square().mean()  # noqa: E731
    with pytest.raises(ValueError, match=r"include_logits needs model outputs of shape \(1, k_out"):
        class_mean_gradients(unflat, loss, (X, Y), include_logits=True)
    assert class_mean_gradients(unflat, loss, (X, Y)).loss_means.shape == (30, 3)
