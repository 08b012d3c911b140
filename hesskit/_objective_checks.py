"""The checks of :class:`hesskit.Objective` on its model and its loss.

They have one job: refuse input whose curvature would be silently wrong, and accept
everything whose curvature is right.

- :func:`check_model`: batch-dependent layers (BatchNorm, dropout) must be in eval mode, and
  BatchNorm must keep running statistics (without them it uses batch statistics in eval
  mode too).
- :func:`check_loss`: on a probe batch, the loss is a scalar, floating targets do not
  broadcast against the outputs (torch's own warning becomes an error), and the loss is
  a batch *mean*: the loss of the batch equals the size-weighted mean of the losses of its
  two halves. The halves test runs only where a batch splits cleanly (every tensor with
  one row per sample) and its halves go through the model; a summed loss is rejected
  always, a loss that is neither mean nor sum (class weights, ``ignore_index``, losses
  that mix samples) only when the data has several batches: on one batch its Hessian is
  well defined, over several the size-weighted average of batch losses is not it.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import nn

from hesskit import _checks
from hesskit.data import batch_size, map_tensors, tensors_of

_BATCH_DEPENDENT = (nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd)

# torch warns with this when an elementwise loss broadcasts its input against its target.
_BROADCAST_WARNING = "Using a target size"
# torch refuses class indices that are not int64 with one of these (the wording varies).
_CLASS_INDEX_DTYPE_ERRORS = ("expected target dtype to be Long", "expected scalar type Long")


def check_model(model: Any, *, allow_train_mode: bool = False) -> list[tuple[str, nn.Module]]:
    """Reject non-modules and batch-dependent layers; return those layers (named).

    Returns:
        The batch-dependent layers (BatchNorm and dropout) as ``(name, module)`` pairs, in
        ``model.named_modules()`` order; empty when there are none.

    Raises:
        TypeError: if ``model`` is not an ``nn.Module``.
        ValueError: if a BatchNorm or dropout layer is in training mode (unless
            ``allow_train_mode``), or a BatchNorm keeps no running statistics.
    """
    _checks.check_module("model", model)
    layers: list[tuple[str, nn.Module]] = [
        (name or type(model).__name__, module)
        for name, module in model.named_modules()
        if isinstance(module, _BATCH_DEPENDENT)
    ]
    no_running = [
        name
        for name, module in layers
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and not module.track_running_stats
    ]
    if no_running and not allow_train_mode:
        msg = (
            f"model has BatchNorm layers without running statistics ({', '.join(no_running)}; "
            "track_running_stats=False): they normalise with the statistics of each batch "
            "even in eval mode, so the loss depends on how the data is batched and its "
            "Hessian is not a property of the parameters. Use track_running_stats=True"
        )
        raise ValueError(msg)
    if not allow_train_mode:
        check_mode(layers)
    return layers


def check_mode(layers: list[tuple[str, nn.Module]]) -> None:
    """Raise if one of the batch-dependent ``layers`` is in train mode.

    Raises:
        ValueError: if a layer of ``layers`` is in training mode.
    """
    training = [name for name, module in layers if module.training]
    if training:
        msg = (
            f"model is in train mode with batch-dependent layers ({', '.join(training)}): "
            "BatchNorm statistics and dropout masks change with every batch, so the loss is "
            "not a fixed function of the parameters and its Hessian is not defined. Call "
            "model.eval() (hesskit never changes the mode of your model, and checks it on "
            "every product)"
        )
        raise ValueError(msg)


def check_loss(objective: Any, inputs: Any, targets: Any, *, num_batches: int) -> None:
    """On a probe batch: a scalar loss, no broadcasting targets, a batch mean.

    ``objective`` supplies ``outputs``, ``batch_loss``, ``loss_fn`` and ``theta``.

    Raises:
        TypeError: if the model cannot be called on ``inputs``, or ``loss_fn`` refuses the
            targets' dtype as class indices (int32 or float targets of ``cross_entropy``).
        ValueError: if ``loss_fn`` broadcasts the targets against the outputs, does not return
            a 0-d tensor, or (on a batch that splits into halves) returns the batch sum, or,
            with several batches, neither the mean nor the sum.
        RuntimeError: any other error of ``loss_fn`` on the probe batch, unchanged.
    """
    with torch.no_grad():
        try:
            outputs = objective.outputs(objective.theta, inputs)
        except TypeError as error:
            msg = (
                f"the model cannot be called on the first batch's inputs ({error}); inputs "
                "that are a tuple or list go to the model as positional arguments, a dict "
                "as keyword arguments"
            )
            raise TypeError(msg) from error
        try:
            loss = _loss_without_broadcasting(objective.loss_fn, outputs, targets)
        except RuntimeError as error:
            _raise_if_class_index_dtype(error, targets)
            raise
        advice = "the mean over the batch (with a torch loss, reduction='mean')"
        _checks.check_scalar_result("loss_fn", loss, advice=advice)
        halves = _half_losses(objective, inputs, targets)
    if halves is not None:
        _check_batch_mean(loss, *halves, num_batches=num_batches)


def _raise_if_class_index_dtype(error: RuntimeError, targets: Any) -> None:
    """Raise a clear error if ``error`` is torch refusing the dtype of class indices.

    Raises:
        TypeError: if ``error`` says the targets' dtype is not ``torch.long`` (int32 or float
            class indices given to ``cross_entropy`` or ``nll_loss``).
    """
    if not any(text in str(error) for text in _CLASS_INDEX_DTYPE_ERRORS):
        return
    dtype = targets.dtype if isinstance(targets, torch.Tensor) else type(targets).__name__
    msg = (
        f"loss_fn refuses the targets' dtype {dtype}: cross_entropy and nll_loss take class "
        "indices as torch.long (int64). Convert the targets once, e.g. Y = Y.long() (or "
        "labels.to(torch.long) in your data loader); class probabilities instead must have "
        f"the outputs' shape and a floating dtype (torch: {error})"
    )
    raise TypeError(msg) from error


def _loss_without_broadcasting(loss_fn: Any, outputs: Any, targets: Any) -> Any:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loss = loss_fn(outputs, targets)
    for warning in caught:
        if _BROADCAST_WARNING in str(warning.message):
            shapes = ""
            if isinstance(outputs, torch.Tensor) and isinstance(targets, torch.Tensor):
                shapes = f" (outputs {tuple(outputs.shape)}, targets {tuple(targets.shape)})"
            msg = (
                f"loss_fn broadcasts the targets against the model's outputs{shapes}: an "
                "elementwise loss then compares every output with every target, and its "
                f"Hessian is wrong. Reshape the targets to the outputs' shape (torch: "
                f"{warning.message})"
            )
            raise ValueError(msg)
        warnings.warn_explicit(
            warning.message, warning.category, warning.filename, warning.lineno
        )  # anything else the loss warns about reaches the user unchanged
    return loss


def _half_losses(objective: Any, inputs: Any, targets: Any) -> tuple[int, int, Any, Any] | None:
    """Split the batch into two halves and compute the loss of each.

    Returns:
        ``(half, size, first, second)``: the split point, the batch size and the losses of
        rows ``[0, half)`` and ``[half, size)``; None where the batch cannot be split (one
        sample, tensors without one row per sample, or a model that fails on a half).
    """
    size = batch_size(inputs)
    tensors = tensors_of((inputs, targets))
    if size < 2 or any(t.ndim == 0 or t.shape[0] != size for t in tensors):
        return None  # one sample, or tensors without one row per sample (graphs, masks)
    half = size // 2
    try:
        first = objective.batch_loss(objective.theta, *_rows((inputs, targets), slice(0, half)))
        second = objective.batch_loss(objective.theta, *_rows((inputs, targets), slice(half, size)))
    except (RuntimeError, ValueError, TypeError, IndexError):
        return None  # the model does not run on part of this batch (time-major inputs...)
    return half, size, first, second


def _rows(batch: Any, rows: slice) -> Any:
    return map_tensors(lambda t: t[rows], batch)


def _check_batch_mean(
    loss: torch.Tensor, half: int, size: int, first: Any, second: Any, *, num_batches: int
) -> None:
    """Raise unless the batch's loss is the size-weighted mean of its halves' losses.

    Raises:
        ValueError: if the losses are finite and ``loss`` is the sum of its halves' losses,
            or, when ``num_batches > 1``, is neither their size-weighted mean nor their sum.
    """
    values = [float(loss), float(first), float(second)]
    if not all(math.isfinite(v) for v in values):
        return  # the first product names the non-finite batch
    whole, a, b = values
    rtol = max(1e-4, 16 * torch.finfo(loss.dtype).eps)
    mean = (half * a + (size - half) * b) / size
    scale = max(abs(whole), abs(a), abs(b))
    if scale == 0 or abs(whole - mean) <= rtol * scale:
        return
    summed = abs(whole - (a + b)) <= rtol * scale
    if not summed and num_batches == 1:
        return  # on one batch the curvature of this loss is well defined
    if summed:
        kind = "the sum over the batch (reduction='sum'?)"
        fix = "Pass reduction='mean', or divide by the batch size"
    else:
        kind = "neither the mean nor the sum over the batch"
        fix = (
            "With several batches hesskit averages batch losses weighted by their sizes, "
            "which is the mean loss only for a per-sample mean: class weights or "
            "ignore_index (a batch's weight is not its size), or a loss that mixes samples, "
            "break it. Pass one batch, or a loss that is the mean of per-sample losses"
        )
    msg = (
        f"loss_fn must return the mean over the batch, but on the probe batch it looks like "
        f"{kind}: loss of the batch {whole:.6g}, size-weighted mean of the losses of its "
        f"two halves {mean:.6g}. {fix}; the curvature is that of the mean loss over all "
        "samples"
    )
    raise ValueError(msg)
