"""Shared machinery of the curvature operators of (model, loss, data).

A subclass implements :meth:`ModelCurvature._batch_matmat`, the product of one batch's
curvature (of that batch's mean loss) with a block ``(n, k)``; the base class averages the
batches weighted by their sample counts, so the result is the curvature of the mean loss
over the whole data set, checks that every batch's product is finite with a single host
synchronisation per product, and keeps the user's model untouched: the model is evaluated
through ``torch.func.functional_call`` on detached copies of its tensors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from hesskit import _checks
from hesskit.operators.base import LinearOperator
from hesskit.operators.data import as_dataset
from hesskit.params import layout_of, select_parameters

LossFn = Callable[[torch.Tensor, Any], torch.Tensor]

_BATCH_DEPENDENT = (nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd)


class ModelCurvature(LinearOperator):
    """Base of the curvature operators of the mean loss of ``model`` over ``data``."""

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        data: Any,
        *,
        params: Iterable[str | nn.Module] | str | nn.Module | None = None,
    ) -> None:
        check_model(model)
        if not callable(loss_fn):
            msg = f"loss_fn must be callable as loss_fn(outputs, targets), got {loss_fn!r}"
            raise TypeError(msg)
        self.model = model
        self.loss_fn = loss_fn
        self.theta = select_parameters(model, params)
        self.layout = layout_of(self.theta)
        self.dtype, self.device = shared_dtype_device(self.theta)
        self.constants = constant_tensors(model, self.theta)
        self.dataset = as_dataset(data, dtype=self.dtype, device=self.device)
        self.shape = (self.layout.numel, self.layout.numel)

    def outputs(self, theta: dict[str, torch.Tensor], inputs: Any) -> torch.Tensor:
        """The model's outputs on ``inputs`` with the selected parameters set to ``theta``."""
        args = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
        return functional_call(self.model, {**self.constants, **theta}, args)

    def batch_loss(self, theta: dict[str, torch.Tensor], inputs: Any, targets: Any):
        """The batch's mean loss at ``theta``."""
        return self.loss_fn(self.outputs(theta, inputs), targets)

    def _batch_matmat(
        self, index: int, inputs: Any, targets: Any, block: torch.Tensor
    ) -> torch.Tensor:
        """The product of batch ``index``'s curvature (of its mean loss) with ``block``."""
        raise NotImplementedError

    def _matmat(self, block: torch.Tensor) -> torch.Tensor:
        result = torch.zeros_like(block)
        finite = []
        for index, weight, inputs, targets in self.dataset.weighted_batches():
            product = self._batch_matmat(index, inputs, targets, block)
            finite.append(torch.isfinite(product).all())
            result.add_(product, alpha=weight)
        raise_if_not_finite(torch.stack(finite), what="loss or its curvature product")
        return result


def shared_dtype_device(theta: dict[str, torch.Tensor]) -> tuple[torch.dtype, torch.device]:
    """The dtype and device every selected parameter shares (raise naming one that differs)."""
    first = next(iter(theta.values()))
    for name, tensor in theta.items():
        _checks.check_same_dtype_device(
            f"parameter {name!r}", tensor, dtype=first.dtype, device=first.device
        )
    return first.dtype, first.device


def constant_tensors(model: nn.Module, theta: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Buffers and unselected parameters, detached: held fixed while differentiating."""
    fixed = {name: p.detach() for name, p in model.named_parameters()}
    fixed.update({name: b.detach() for name, b in model.named_buffers()})
    return {name: t for name, t in fixed.items() if name not in theta}


def raise_if_not_finite(flags: torch.Tensor, *, what: str) -> None:
    """Raise naming the first batch whose flag is False (one host synchronisation)."""
    if bool(flags.all()):
        return
    index = int((~flags).nonzero()[0])
    msg = (
        f"the {what} is not finite on data batch {index}; check that batch's inputs and "
        "targets, and the parameters, for NaN/inf or overflow"
    )
    raise ValueError(msg)


def check_model(model: Any) -> None:
    """Reject non-modules, and train-mode models whose layers depend on the batch.

    Raises:
        TypeError: if ``model`` is not an ``nn.Module``.
        ValueError: if a BatchNorm or dropout layer is in training mode.
    """
    if not isinstance(model, nn.Module):
        msg = f"model must be a torch.nn.Module, got {type(model).__name__}"
        raise TypeError(msg)
    offending = [
        name or type(model).__name__
        for name, module in model.named_modules()
        if module.training and isinstance(module, _BATCH_DEPENDENT)
    ]
    if offending:
        msg = (
            f"model is in train mode with batch-dependent layers ({', '.join(offending)}): "
            "BatchNorm statistics and dropout masks change with every batch, so the loss is "
            "not a fixed function of the parameters and its Hessian is not defined. "
            "Call model.eval() before building the operator (hesskit never changes the mode "
            "of your model)."
        )
        raise ValueError(msg)
