"""A registry of tiny seeded models and data sets, with dense float64 ground truth.

Each case builds lazily, so importing the tests stays cheap; ids are readable in pytest
output (``mlp-tanh``, ``cnn``...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

F = nn.functional


@dataclass(frozen=True)
class Case:
    """A model factory, data and a mean loss; built on demand with a fixed seed."""

    name: str
    make_model: Callable[[], nn.Module]
    make_data: Callable[[torch.Generator], tuple[torch.Tensor, torch.Tensor]]
    loss_fn: Callable

    def build(self, dtype=torch.float64, device="cpu", seed=0):
        """(model, X, Y) in ``dtype`` on ``device``, the same for the same seed."""
        torch.manual_seed(seed)
        model = self.make_model().to(dtype=dtype, device=device).eval()
        X, Y = self.make_data(torch.Generator().manual_seed(seed))
        X = X.to(dtype=dtype, device=device)
        Y = Y.to(device=device, dtype=dtype if Y.is_floating_point() else Y.dtype)
        return model, X, Y


def _classification(num_inputs=(5,), classes=3, samples=24):
    def make(gen):
        return torch.randn(samples, *num_inputs, generator=gen), torch.randint(
            0, classes, (samples,), generator=gen
        )

    return make


def _regression(gen):
    return torch.randn(24, 4, generator=gen), torch.randn(24, 2, generator=gen)


CASES = {
    "mlp-tanh": Case(
        "mlp-tanh",
        lambda: nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 3)),
        _classification(),
        F.cross_entropy,
    ),
    "mlp-mse": Case(
        "mlp-mse",
        lambda: nn.Sequential(nn.Linear(4, 5), nn.Sigmoid(), nn.Linear(5, 2)),
        _regression,
        F.mse_loss,
    ),
    "cnn": Case(
        "cnn",
        lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.Tanh(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3)),
        _classification(num_inputs=(1, 6, 6), samples=12),
        F.cross_entropy,
    ),
    "mlp-batchnorm": Case(
        "mlp-batchnorm",
        lambda: nn.Sequential(nn.Linear(5, 6), nn.BatchNorm1d(6), nn.Tanh(), nn.Linear(6, 3)),
        _classification(),
        F.cross_entropy,
    ),
}


def dense_loss_hessian(model, loss_fn, X, Y, names=None) -> torch.Tensor:
    """Ground truth: ``torch.func.hessian`` of the loss as a function of a flat vector."""
    params = dict(model.named_parameters())
    names = list(params) if names is None else names
    fixed = {k: v.detach() for k, v in params.items() if k not in names}
    fixed.update(dict(model.named_buffers()))
    shapes = [params[n].shape for n in names]
    theta = torch.cat([params[n].detach().reshape(-1) for n in names])

    def loss(flat):
        parts = torch.split(flat, [s.numel() for s in shapes])
        named = {n: p.reshape(s) for n, p, s in zip(names, parts, shapes, strict=True)}
        return loss_fn(functional_call(model, {**fixed, **named}, (X,)), Y)

    return torch.func.hessian(loss)(theta)
