"""The second moment (or covariance) of per-sample gradients over a data set.

``C = (1/N) sum_i g_i g_i^T`` with ``g_i`` the gradient of sample ``i``'s loss; the
centred covariance ``C - g g^T``, with ``g`` the mean gradient, sets the noise of SGD
(Jastrzebski et al. 2017, arXiv:1711.04623; Thomas et al. 2020, arXiv:1906.07774, who
compare it to the Hessian near minima). It is built with the operator algebra as the
second moment minus a rank-one term. The per-sample gradients of one batch are formed
with ``vmap`` over samples, so memory is one batch's ``(n_b, n)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch.func import grad, vmap

from hesskit import _checks
from hesskit.data import map_tensors
from hesskit.objective import LossFn, Objective, Selection, Versions
from hesskit.operators._model import ModelCurvature
from hesskit.operators.base import LinearCombination, LinearOperator

if TYPE_CHECKING:
    from torch.distributed import ProcessGroup


class GradientCovariance(ModelCurvature):
    """The second moment ``(1/N) sum_i g_i g_i^T`` of the per-sample gradients."""

    def per_sample_gradients(self, inputs: Any, targets: Any) -> torch.Tensor:
        """The ``(n_b, n)`` matrix of the gradients of each sample's loss.

        Returns:
            The per-sample gradients as rows, for batch ``inputs`` and ``targets``.
        """
        objective = self.objective

        def sample_loss(theta, x, y):
            return objective.batch_loss(theta, _as_batch_of_one(x), _as_batch_of_one(y))

        per_sample = vmap(grad(sample_loss), in_dims=(None, 0, 0), randomness="error")
        return objective.layout.flatten(per_sample(objective.theta, inputs, targets))

    def _batch_matmat(self, index: int, inputs, targets, block: torch.Tensor) -> torch.Tensor:
        gradients = self.per_sample_gradients(inputs, targets)
        return gradients.T @ (gradients @ block) / gradients.shape[0]


class MeanGradientOuterProduct(LinearOperator):
    """``g g^T`` for the gradient ``g`` of an objective's mean loss, kept up to date.

    ``g`` is computed on the first product and again after any in-place update of the
    model (the objective's version counters), so it never lags the parameters.
    """

    def __init__(self, objective: Objective) -> None:
        n = objective.num_parameters
        super().__init__((n, n), dtype=objective.dtype, device=objective.device)
        self.objective = objective
        self._gradient: torch.Tensor | None = None
        self._versions: Versions = ()

    def _matmat(self, block: torch.Tensor) -> torch.Tensor:
        # the refresh is a collective with a group: every rank refreshes if one must
        stale = self._gradient is None or self._versions != self.objective.versions()
        if self.objective.any_rank(stale):
            self._gradient = self.objective.gradient()
            self._versions = self.objective.versions()
        gradient = self._gradient
        assert gradient is not None  # stale on the first product
        return torch.outer(gradient, gradient @ block)


def _as_batch_of_one(part: Any) -> Any:
    """One sample (a tensor, or a nest of tuples and dicts of tensors) as a batch of one.

    Returns:
        ``part`` with a leading dimension of size one on every tensor.
    """
    return map_tensors(lambda t: t.unsqueeze(0), part)


def gradient_covariance(
    model: torch.nn.Module,
    loss_fn: LossFn,
    data: Any,
    *,
    params: Selection = None,
    centered: bool = False,
    group: ProcessGroup | None = None,
) -> GradientCovariance | LinearCombination:
    """The second moment of per-sample gradients, ``(1/N) sum_i g_i g_i^T``.

    Same arguments as the model form of :func:`hesskit.hessian` (``group=`` included: the
    mean gradient of ``centered`` is then summed over the ranks too); ``loss_fn`` is applied to
    one sample at a time (as a batch of one), so it must work on a batch of size one.
    With ``centered=True`` the outer product of the mean gradient is subtracted: the
    result is ``GradientCovariance(...) - MeanGradientOuterProduct(...)``.

    Returns:
        A symmetric positive semi-definite :class:`~hesskit.LinearOperator` of size the number
        of selected parameters: the :class:`GradientCovariance`, or with ``centered=True`` a
        :class:`~hesskit.operators.base.LinearCombination` that subtracts the mean gradient's
        outer product.

    Raises:
        TypeError: if ``centered`` is not a bool, or as for :func:`hesskit.hessian`'s model
            form.
        ValueError: as for :func:`hesskit.hessian`'s model form.

    Example:
        >>> import torch, hesskit
        >>> model = torch.nn.Linear(1, 1, bias=False)
        >>> X, Y = torch.tensor([[1.0], [2.0]]), torch.zeros(2, 1)
        >>> C = hesskit.gradient_covariance(model, torch.nn.functional.mse_loss, (X, Y))
        >>> C.shape
        (1, 1)
    """
    second_moment = GradientCovariance(model, loss_fn, data, params=params, group=group)
    centered = second_moment.objective.on_every_rank(
        lambda: _checks.check_bool("centered", centered)
    )
    if not centered:
        return second_moment
    return second_moment - MeanGradientOuterProduct(second_moment.objective)
