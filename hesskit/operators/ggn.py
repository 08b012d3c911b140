"""The generalized Gauss-Newton matrix J^T H_out J of the mean loss over a data set.

``J`` is the Jacobian of the model's outputs with respect to the parameters and ``H_out``
the Hessian of the loss with respect to the outputs (Schraudolph 2002, "Fast curvature
matrix-vector products for second-order gradient descent", Neural Computation 14(7)).
For a convex loss in the outputs it is positive semi-definite, and it is the part of the
Hessian that carries the outliers of the spectrum (Sagun et al. 2017, arXiv:1706.04454,
section 2); the Hessian is GGN plus a term weighted by the loss gradient, which vanishes
for a linear model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch.func import grad, jvp, vjp

from hesskit.objective import LossFn, Selection
from hesskit.operators._model import ModelCurvature
from hesskit.operators.base import map_columns

if TYPE_CHECKING:
    from torch.distributed import ProcessGroup


class GaussNewton(ModelCurvature):
    """The generalized Gauss-Newton matrix of the mean loss over all samples."""

    def _batch_matmat(self, index: int, inputs, targets, block: torch.Tensor) -> torch.Tensor:
        objective = self.objective
        theta, layout = objective.theta, objective.layout

        def outputs_of(named):
            return objective.outputs(named, inputs)

        def loss_of(out):
            return objective.loss_fn(out, targets)

        # (torch's stub of vjp declares the has_aux triple, hence the [:2])
        outputs, pullback = vjp(outputs_of, theta)[:2]
        # H_out is symmetric, so its product is the vjp of the loss gradient (reverse over
        # reverse): one linearisation per batch, and it works for losses such as
        # F.mse_loss whose forward-mode derivative is broken in torch 2.13.
        output_hessian = vjp(grad(loss_of), outputs)[1]

        def product(vector: torch.Tensor) -> torch.Tensor:
            jacobian_vector = jvp(outputs_of, (theta,), (layout.unflatten(vector),))[1]
            return layout.flatten(pullback(output_hessian(jacobian_vector)[0])[0])

        return map_columns(product, block)


def ggn(
    model: torch.nn.Module,
    loss_fn: LossFn,
    data: Any,
    *,
    params: Selection = None,
    group: ProcessGroup | None = None,
) -> GaussNewton:
    """The generalized Gauss-Newton matrix ``J^T H_out J`` of the mean loss over ``data``.

    Same arguments as the model form of :func:`hesskit.hessian` (``group=`` included);
    ``loss_fn`` must return the batch mean.

    Returns:
        The :class:`GaussNewton` operator, symmetric positive semi-definite for a convex loss,
        of size the number of selected parameters.

    Example:
        >>> import torch, hesskit
        >>> model = torch.nn.Linear(2, 1, bias=False)
        >>> X, Y = torch.eye(2), torch.zeros(2, 1)
        >>> G = hesskit.ggn(model, torch.nn.functional.mse_loss, (X, Y))
        >>> hesskit.dense(G)
        tensor([[1., 0.],
                [0., 1.]])
    """
    return GaussNewton(model, loss_fn, data, params=params, group=group)
