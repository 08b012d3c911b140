"""The mean loss of a model over a data set, as a function of a flat parameter vector.

:class:`Objective` is the one layer every curvature operator, the landscape probes and the
trainers stand on. It holds the parameter layout (which parameters, in which flat order),
the batches weighted by their sample counts, the model evaluated through
``torch.func.functional_call`` on detached views of its tensors (so the user's model is
never mutated: buffers are cloned for every call, so not even a forward that writes a
buffer reaches the model), and the checks that keep a wrong answer from being silent:

- on construction: the model is a module without batch-dependent layers in train mode
  (nor BatchNorm without running statistics, which uses batch statistics in eval mode
  too); the data's tensors agree with the parameters' dtype and device and on the number
  of samples; on the first batch, the loss is a scalar and a batch *mean* (the loss of
  the batch equals the size-weighted mean of the losses of its two halves) and floating
  targets do not broadcast against the outputs into a larger shape;
- on every pass over the data: the model's mode is still eval for those layers, and the
  data yields the same batches as on the first pass (:mod:`hesskit.data`).

Everything that needs autograd also works under ``torch.inference_mode()``: it runs in
``inference_mode(False)``, on normal copies of any inference tensors it is given.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from hesskit import _checks
from hesskit.data import as_dataset, batch_size, map_tensors, tensors_of
from hesskit.params import layout_of, select_parameters

LossFn = Callable[[Any, Any], torch.Tensor]
Selection = Iterable[str | nn.Module] | str | nn.Module | None

_BATCH_DEPENDENT = (nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd)

# The loss of a batch and the mean of its halves agree to this relative tolerance for a
# batch-mean loss (float32 round-off is ~1e-7); a summed loss differs by the batch size.
_MEAN_RTOL = 1e-4


class Objective:
    """``L(theta) = (1/N) sum_i loss(model(x_i; theta), y_i)`` over every sample of ``data``.

    Args:
        model: the network; never mutated. Its unselected parameters and buffers are held
            at their current values (and followed when they are updated in place).
        loss_fn: ``loss_fn(outputs, targets)``, the *mean* over the batch.
        data: an ``(inputs, targets)`` pair or a re-iterable of batches (see
            :mod:`hesskit.data`); batches are weighted by their sizes.
        params: which parameters ``theta`` holds: None for every parameter with
            ``requires_grad``, else names and/or sub-modules of ``model``.

    Raises:
        TypeError: if ``model`` is not a module, ``loss_fn`` not callable, or the data or
            parameters have a wrong type or dtype.
        ValueError: if a layer depends on the batch, the data is malformed, or the loss is
            not a scalar batch mean (see the module docstring).

    Example:
        >>> import torch, hesskit
        >>> model = torch.nn.Linear(2, 1, bias=False)
        >>> X, Y = torch.eye(2), torch.zeros(2, 1)
        >>> objective = hesskit.Objective(model, torch.nn.functional.mse_loss, (X, Y))
        >>> float(objective.loss(torch.tensor([1.0, 3.0])))
        5.0
    """

    def __init__(self, model: nn.Module, loss_fn: LossFn, data: Any, *, params: Selection = None):
        self._batch_dependent = check_model(model)
        self.model = model
        self.loss_fn = _checks.check_callable("loss_fn", loss_fn, usage="loss_fn(outputs, targets)")
        self.theta = select_parameters(model, params)
        self.layout = layout_of(self.theta)
        self.dtype, self.device = shared_dtype_device(self.theta)
        self._fixed = {
            name: p.detach() for name, p in model.named_parameters() if name not in self.theta
        }
        self._buffers = {name: b.detach() for name, b in model.named_buffers()}
        self.dataset, first_batch = as_dataset(data, dtype=self.dtype, device=self.device)
        with autograd_allowed():
            self._check_loss(*_normal_tensors(first_batch))

    @property
    def num_parameters(self) -> int:
        """The length ``n`` of the flat parameter vector."""
        return self.layout.numel

    @property
    def num_samples(self) -> int:
        """The number of samples ``N`` the loss averages over."""
        return self.dataset.num_samples

    def parameters(self) -> torch.Tensor:
        """The selected parameters' current values as one flat vector (a copy)."""
        return self.layout.flatten(self.theta).clone()

    def versions(self) -> tuple[int, ...]:
        """Version counters of every tensor the loss depends on besides the data.

        An in-place update (an optimiser step, ``load_state_dict``) bumps them, so a
        cache built from the model can tell that it is stale.
        """
        tensors = (*self.theta.values(), *self._fixed.values(), *self._buffers.values())
        return tuple(t._version for t in tensors)

    def outputs(self, theta: dict[str, torch.Tensor], inputs: Any) -> Any:
        """The model's outputs on ``inputs`` with the selected parameters set to ``theta``.

        Inputs that are a tuple or list are passed as positional arguments, a dict as
        keyword arguments. Buffers go in as clones, so a forward cannot write the model's.
        """
        tensors = {**self._fixed, **{k: b.clone() for k, b in self._buffers.items()}, **theta}
        if isinstance(inputs, Mapping):
            return functional_call(self.model, tensors, (), dict(inputs))
        args = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
        return functional_call(self.model, tensors, args)

    def batch_loss(self, theta: dict[str, torch.Tensor], inputs: Any, targets: Any):
        """The batch's mean loss at the named parameters ``theta``."""
        return self.loss_fn(self.outputs(theta, inputs), targets)

    def batches(self) -> Iterator[tuple[int, float, Any, Any]]:
        """One checked pass: ``(index, n_b / N, inputs, targets)`` for every batch.

        Raises:
            ValueError: if a batch-dependent layer is now in train mode, or the data
                yields other batches than on its first pass.
        """
        self.check_mode()
        for index, weight, inputs, targets in self.dataset.weighted_batches():
            yield index, weight, *_normal_tensors((inputs, targets))

    def loss(self, theta: torch.Tensor | None = None) -> torch.Tensor:
        """The mean loss over all samples at the flat vector ``theta`` (default: current).

        Raises:
            ValueError: if ``theta`` is malformed or the loss of a batch is not finite.
        """
        named = self._named(theta)
        with torch.no_grad():
            losses = [(w, self.batch_loss(named, x, y)) for _, w, x, y in self.batches()]
        raise_if_not_finite(torch.stack([torch.isfinite(v) for _, v in losses]), what="loss")
        return torch.stack([w * v.to(self.dtype) for w, v in losses]).sum()

    def gradient(self, theta: torch.Tensor | None = None) -> torch.Tensor:
        """The gradient of the mean loss at the flat vector ``theta`` (default: current).

        Raises:
            ValueError: if ``theta`` is malformed or a batch's gradient is not finite.
        """
        flat = self.layout.flatten(self._named(theta))
        total = torch.zeros_like(flat)
        finite = []
        with autograd_allowed():
            for _, weight, inputs, targets in self.batches():
                leaf = flat.detach().requires_grad_()
                loss = self.batch_loss(self.layout.unflatten(leaf), inputs, targets)
                (part,) = torch.autograd.grad(loss, leaf)
                finite.append(torch.isfinite(part).all())
                total.add_(part, alpha=weight)
        raise_if_not_finite(torch.stack(finite), what="loss gradient")
        return total

    def _named(self, theta: torch.Tensor | None) -> dict[str, torch.Tensor]:
        if theta is None:
            return self.theta
        n, dtype, device = self.num_parameters, self.dtype, self.device
        flat = _checks.check_flat_vector("theta", theta, n=n, dtype=dtype, device=device)
        return self.layout.unflatten(flat)

    def check_mode(self) -> None:
        """Raise if a batch-dependent layer of the model is now in train mode."""
        training = [name for name, module in self._batch_dependent if module.training]
        if training:
            raise ValueError(_train_mode_message(training))

    def _check_loss(self, inputs: Any, targets: Any) -> None:
        """On one batch: a scalar loss, a batch mean, targets that do not broadcast."""
        with torch.no_grad():
            try:
                outputs = self.outputs(self.theta, inputs)
            except TypeError as error:
                msg = (
                    f"the model cannot be called on the first batch's inputs ({error}); "
                    "inputs that are a tuple or list go to the model as positional "
                    "arguments, a dict as keyword arguments"
                )
                raise TypeError(msg) from error
            _check_targets_shape(outputs, targets)
            loss = self.loss_fn(outputs, targets)
            advice = "the mean over the batch (with a torch loss, reduction='mean')"
            _checks.check_scalar_result("loss_fn", loss, advice=advice)
            size = batch_size(inputs)
            if size < 2:
                return
            half = size // 2
            first = self.batch_loss(self.theta, *_rows((inputs, targets), slice(0, half)))
            second = self.batch_loss(self.theta, *_rows((inputs, targets), slice(half, size)))
        _check_batch_mean(float(loss), float(first), float(second), half, size)


def _rows(batch: Any, rows: slice) -> Any:
    return map_tensors(lambda t: t[rows], batch)


def _check_targets_shape(outputs: Any, targets: Any) -> None:
    if not (isinstance(outputs, torch.Tensor) and isinstance(targets, torch.Tensor)):
        return
    if not targets.is_floating_point() or outputs.shape == targets.shape:
        return
    try:
        broadcast = torch.broadcast_shapes(outputs.shape, targets.shape)
    except RuntimeError:  # not an elementwise comparison: the loss decides
        return
    if broadcast != outputs.shape:
        msg = (
            f"targets of shape {tuple(targets.shape)} broadcast against the model's outputs "
            f"of shape {tuple(outputs.shape)} to {tuple(broadcast)}: an elementwise loss "
            "would compare every output with every target. Reshape the targets to "
            f"{tuple(outputs.shape)}"
        )
        raise ValueError(msg)


def _check_batch_mean(loss: float, first: float, second: float, half: int, size: int) -> None:
    """Raise unless the batch's loss is the size-weighted mean of its halves' losses."""
    if not all(math.isfinite(v) for v in (loss, first, second)):
        return  # the first product names the non-finite batch
    mean = (half * first + (size - half) * second) / size
    scale = max(abs(loss), abs(first), abs(second))
    if abs(loss - mean) <= _MEAN_RTOL * scale or scale == 0:
        return
    if abs(loss - (first + second)) <= _MEAN_RTOL * scale:
        kind = "the sum over the batch (reduction='sum'?)"
    else:
        kind = "neither the mean nor the sum over the batch"
    msg = (
        f"loss_fn must return the mean over the batch, but on the first batch it looks like "
        f"{kind}: loss of the batch {loss:.6g}, size-weighted mean of the losses of its two "
        f"halves {mean:.6g}. Pass reduction='mean', or divide by the batch size; the "
        "curvature is that of the mean loss over all samples"
    )
    raise ValueError(msg)


def _normal_tensors(batch: Any) -> Any:
    """``batch`` with inference tensors replaced by normal copies (autograd can save those)."""
    if not any(t.is_inference() for t in tensors_of(batch)):
        return batch
    with torch.inference_mode(False):
        return map_tensors(lambda t: t.clone() if t.is_inference() else t, batch)


@contextlib.contextmanager
def autograd_allowed() -> Iterator[None]:
    """Autograd on, even inside ``torch.inference_mode()`` or ``torch.no_grad()``."""
    with torch.inference_mode(False), torch.enable_grad():
        yield


def check_model(model: Any) -> list[tuple[str, nn.Module]]:
    """Reject non-modules and batch-dependent layers; return those layers (named).

    Raises:
        TypeError: if ``model`` is not an ``nn.Module``.
        ValueError: if a BatchNorm or dropout layer is in training mode, or a BatchNorm
            keeps no running statistics.
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
    if no_running:
        msg = (
            f"model has BatchNorm layers without running statistics ({', '.join(no_running)}; "
            "track_running_stats=False): they normalise with the statistics of each batch "
            "even in eval mode, so the loss depends on how the data is batched and its "
            "Hessian is not a property of the parameters. Use track_running_stats=True"
        )
        raise ValueError(msg)
    training = [name for name, module in layers if module.training]
    if training:
        raise ValueError(_train_mode_message(training))
    return layers


def _train_mode_message(names: list[str]) -> str:
    return (
        f"model is in train mode with batch-dependent layers ({', '.join(names)}): "
        "BatchNorm statistics and dropout masks change with every batch, so the loss is "
        "not a fixed function of the parameters and its Hessian is not defined. Call "
        "model.eval() (hesskit never changes the mode of your model, and checks it on "
        "every product)"
    )


def shared_dtype_device(theta: dict[str, torch.Tensor]) -> tuple[torch.dtype, torch.device]:
    """The dtype and device every selected parameter shares (raise naming one that differs)."""
    first = next(iter(theta.values()))
    if not first.is_floating_point():
        msg = f"parameters must be floating point, got dtype {first.dtype}"
        raise TypeError(msg)
    for name, tensor in theta.items():
        _checks.check_same_dtype_device(
            f"parameter {name!r}", tensor, dtype=first.dtype, device=first.device
        )
    return first.dtype, first.device


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
