"""Shared machinery of the curvature operators of (model, loss, data).

A subclass implements :meth:`ModelCurvature._batch_matmat`, the product of one batch's
curvature (of that batch's mean loss) with a block ``(n, k)``; the base class averages the
batches of its :class:`~hesskit.Objective` weighted by their sample counts, so the result
is the curvature of the mean loss over the whole data set (over every rank's shard, with a
process group: :mod:`hesskit.distributed`), and checks that every batch's
product is finite with a single host synchronisation per product. The objective checks the
model's mode and the data on every pass. Products run with autograd allowed, so they work
inside ``torch.inference_mode()`` and ``torch.no_grad()``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from hesskit.objective import (
    LossFn,
    Objective,
    Selection,
    autograd_allowed,
    derivative_kernels,
    raise_if_not_finite,
)
from hesskit.operators.base import LinearOperator

if TYPE_CHECKING:
    from torch.distributed import ProcessGroup


class ModelCurvature(LinearOperator):
    """Base of the curvature operators of the mean loss of ``model`` over ``data``."""

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        data: Any,
        *,
        params: Selection = None,
        group: ProcessGroup | None = None,
    ) -> None:
        self.objective = Objective(model, loss_fn, data, params=params, group=group)
        n = self.objective.num_parameters
        super().__init__((n, n), dtype=self.objective.dtype, device=self.objective.device)

    def matmat(self, block: torch.Tensor) -> torch.Tensor:
        """Return ``A @ block`` for a block of shape ``(n, k)``.

        The model runs under :func:`hesskit.objective.derivative_kernels` (the math
        attention kernel, no attention fast path), whatever the method and device: the
        fused attention kernels have no second derivatives.

        With a process group: this rank's share, summed over the ranks in one
        ``all_reduce`` (an error on any rank is raised on every rank).
        """

        def local() -> torch.Tensor:
            with autograd_allowed(), derivative_kernels():
                normal = block.clone() if block.is_inference() else block
                return LinearOperator.matmat(self, normal)

        k = block.shape[1] if isinstance(block, torch.Tensor) and block.ndim == 2 else 1
        return self.objective.sum_over_ranks(local, shape=(self.shape[0], k), same=(block,))

    def _batch_matmat(
        self, index: int, inputs: Any, targets: Any, block: torch.Tensor
    ) -> torch.Tensor:
        """The product of batch ``index``'s curvature (of its mean loss) with ``block``."""
        raise NotImplementedError

    def _matmat(self, block: torch.Tensor) -> torch.Tensor:
        return weighted_sum(
            (weight, self._batch_matmat(index, inputs, targets, block))
            for index, weight, inputs, targets in self.objective.batches()
        )


def weighted_sum(products: Iterable[tuple[float, torch.Tensor]]) -> torch.Tensor:
    """``sum_b w_b P_b`` of the batches' products; raise naming a non-finite one.

    One host synchronisation for the finiteness of all batches; the first product is
    reused as the accumulator (one batch costs no copy).

    Returns:
        The weighted sum, a tensor of the products' shape.

    Raises:
        ValueError: naming the first batch whose product is NaN or infinite.
    """
    result: torch.Tensor | None = None
    sums = []
    for weight, product in products:
        sums.append(product.sum())
        if result is None:
            result = product if weight == 1.0 else product * weight
        else:
            result.add_(product, alpha=weight)
    raise_if_not_finite(sums, what="loss or its curvature product")
    assert result is not None  # a data set has at least one batch
    return result
