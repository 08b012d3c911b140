"""The second moment (or covariance) of per-sample gradients over a data set.

``C = (1/N) sum_i g_i g_i^T`` with ``g_i`` the gradient of sample ``i``'s loss; with
``centered=True`` the mean gradient's outer product is subtracted, giving the covariance
that sets the noise of SGD (Jastrzebski et al. 2017, arXiv:1711.04623; Thomas et al. 2020,
arXiv:1906.07774, who compare it to the Hessian near minima). The per-sample gradients of
one batch are formed with ``vmap`` over samples, so memory is one batch's ``(n_b, n)``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.func import grad, vmap

from hesskit.operators._model import ModelCurvature


class GradientCovariance(ModelCurvature):
    """Second moment (``centered=False``) or covariance of per-sample gradients."""

    def __init__(self, model, loss_fn, data, *, params=None, centered: bool = False) -> None:
        super().__init__(model, loss_fn, data, params=params)
        if not isinstance(centered, bool):
            msg = f"centered must be a bool, got {centered!r}"
            raise TypeError(msg)
        self.centered = centered
        self._gradient_sums: dict[int, torch.Tensor] = {}

    def per_sample_gradients(self, inputs: Any, targets: Any) -> torch.Tensor:
        """The ``(n_b, n)`` matrix of the gradients of each sample's loss."""

        def sample_loss(theta, x, y):
            return self.batch_loss(theta, _as_batch_of_one(x), _as_batch_of_one(y))

        gradients = vmap(grad(sample_loss), in_dims=(None, 0, 0))(self.theta, inputs, targets)
        return self.layout.flatten(gradients)

    def _matmat(self, block: torch.Tensor) -> torch.Tensor:
        second_moment = super()._matmat(block)
        if not self.centered:
            return second_moment
        mean = self._mean_gradient
        return second_moment - torch.outer(mean, mean @ block)

    def _batch_matmat(self, index: int, inputs, targets, block: torch.Tensor) -> torch.Tensor:
        gradients = self.per_sample_gradients(inputs, targets)
        if self.centered:
            self._gradient_sums[index] = gradients.sum(0)
        return gradients.T @ (gradients @ block) / gradients.shape[0]

    @property
    def _mean_gradient(self) -> torch.Tensor:
        return torch.stack(list(self._gradient_sums.values())).sum(0) / self.dataset.num_samples


def _as_batch_of_one(part: Any) -> Any:
    """One sample (a tensor or a tuple of tensors) as a batch of size one."""
    if isinstance(part, (tuple, list)):
        return type(part)(_as_batch_of_one(p) for p in part)
    return part.unsqueeze(0) if isinstance(part, torch.Tensor) else part


def gradient_covariance(
    model: torch.nn.Module, loss_fn, data: Any, *, params=None, centered: bool = False
) -> GradientCovariance:
    """The second moment of per-sample gradients, ``(1/N) sum_i g_i g_i^T``.

    Same arguments as the model form of :func:`hesskit.hessian`; ``loss_fn`` is applied to
    one sample at a time (as a batch of one), so it must work on a batch of size one.
    With ``centered=True`` the outer product of the mean gradient is subtracted.

    Example:
        >>> import torch, hesskit
        >>> model = torch.nn.Linear(1, 1, bias=False)
        >>> X, Y = torch.tensor([[1.0], [2.0]]), torch.zeros(2, 1)
        >>> C = hesskit.gradient_covariance(model, torch.nn.functional.mse_loss, (X, Y))
        >>> C.shape
        (1, 1)
    """
    return GradientCovariance(model, loss_fn, data, params=params, centered=centered)
