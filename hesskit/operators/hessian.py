"""The Hessian of the mean loss over a data set, and of a plain function of a flat vector.

Three ways to multiply by the Hessian, behind one ``method`` argument (Pearlmutter 1994,
"Fast exact multiplication by the Hessian", Neural Computation 6(1)):

- ``"forward_over_reverse"``: ``torch.func.jvp`` of ``torch.func.grad``; a block of ``k``
  vectors goes through each batch in one pass with ``vmap``. No state between products.
- ``"double_backward"``: reverse-over-reverse with ``torch.autograd``; the gradient's graph
  is rebuilt for every product and the ``k`` columns go through it with
  ``is_grads_batched``.
- ``"cached_graph"``: like double backward, but each batch's first-backward graph is built
  once, on the first product, and kept, so a product costs only the second backward and
  never reads the data again. Fastest per product, but holds every batch's graph in
  memory: use it when the data set's graphs fit.

Forward mode is missing or broken for some losses (``F.mse_loss`` in torch 2.13 fails with
"ZeroTensors are immutable"); ``"forward_over_reverse"`` then falls back to
``"double_backward"`` for the rest of the operator's life, with a warning, rather than fail.
All three compute the same matrix (tested to float64 round-off); the default is chosen by
the benchmarks in ``benchmarks/`` (see the README there).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch.func import grad, jvp

from hesskit import _checks
from hesskit.operators._model import ModelCurvature, raise_if_not_finite
from hesskit.operators.base import LinearOperator, map_columns

METHODS = ("forward_over_reverse", "double_backward", "cached_graph")


class ModelHessian(ModelCurvature):
    """Hessian of the mean of ``loss_fn(model(inputs), targets)`` over all samples."""

    def __init__(self, model, loss_fn, data, *, params=None, method="forward_over_reverse"):
        super().__init__(model, loss_fn, data, params=params)
        self.method = _checks.check_choice("method", method, METHODS)
        self._graphs: dict[int, tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]] = {}

    def _matmat(self, block: torch.Tensor) -> torch.Tensor:
        if self.method != "cached_graph" or not self._graphs:
            return super()._matmat(block)
        result = torch.zeros_like(block)
        for index, weight in enumerate(self._weights):
            result.add_(self._batch_matmat(index, None, None, block), alpha=weight)
        return result

    @property
    def _weights(self) -> list[float]:
        total = self.dataset.num_samples
        return [size / total for size in self.dataset.batch_sizes]

    def _batch_matmat(self, index: int, inputs, targets, block: torch.Tensor) -> torch.Tensor:
        if self.method == "forward_over_reverse":
            try:
                return self._forward_over_reverse(inputs, targets, block)
            except RuntimeError as error:
                if "ZeroTensors are immutable" not in str(error):
                    raise
                warnings.warn(
                    "loss_fn has no working forward-mode derivative in this torch version "
                    f"({error}); this Hessian now uses method='double_backward'",
                    RuntimeWarning,
                    stacklevel=4,
                )
                self.method = "double_backward"
        leaves, gradient = self._gradient_graph(index, inputs, targets)
        batched = block.shape[1] > 1
        vectors = self.layout.unflatten(block.T if batched else block[:, 0])
        products = torch.autograd.grad(
            gradient,
            leaves,
            grad_outputs=tuple(vectors.values()),
            retain_graph=self.method == "cached_graph",
            is_grads_batched=batched,
        )
        flat = self.layout.flatten(dict(zip(self.layout.names, products, strict=True)))
        return flat.T if batched else flat.unsqueeze(1)

    def _forward_over_reverse(self, inputs, targets, block: torch.Tensor) -> torch.Tensor:
        gradient = grad(lambda theta: self.batch_loss(theta, inputs, targets))

        def product(vector: torch.Tensor) -> torch.Tensor:
            tangent = self.layout.unflatten(vector)
            return self.layout.flatten(jvp(gradient, (self.theta,), (tangent,))[1])

        return map_columns(product, block)

    def _gradient_graph(self, index: int, inputs, targets):
        """Leaves and gradient (with its graph) of batch ``index``; kept for ``cached_graph``."""
        if index in self._graphs:
            return self._graphs[index]
        with torch.enable_grad():
            leaves = {name: t.detach().requires_grad_() for name, t in self.theta.items()}
            loss = self.batch_loss(leaves, inputs, targets)
            gradient = torch.autograd.grad(loss, tuple(leaves.values()), create_graph=True)
        graph = (tuple(leaves.values()), gradient)
        if self.method == "cached_graph":
            self._graphs[index] = graph
        return graph


class FunctionHessian(LinearOperator):
    """Hessian of a scalar function ``f`` of a flat tensor at the point ``theta``."""

    def __init__(self, f: Callable[[torch.Tensor], torch.Tensor], theta: torch.Tensor) -> None:
        if not callable(f):
            msg = f"f must be a callable of a flat tensor returning a scalar, got {f!r}"
            raise TypeError(msg)
        if not isinstance(theta, torch.Tensor) or theta.ndim != 1 or theta.numel() == 0:
            got = tuple(theta.shape) if isinstance(theta, torch.Tensor) else type(theta).__name__
            msg = f"theta must be a non-empty 1-D tensor (a flat point), got {got}"
            raise ValueError(msg)
        if not theta.is_floating_point():
            msg = f"theta must be floating point, got dtype {theta.dtype}"
            raise TypeError(msg)
        self.f = f
        self.theta = theta.detach()
        self.shape = (theta.numel(), theta.numel())
        self.dtype, self.device = theta.dtype, theta.device

    def _matmat(self, block: torch.Tensor) -> torch.Tensor:
        gradient = grad(self.f)

        def product(vector: torch.Tensor) -> torch.Tensor:
            return jvp(gradient, (self.theta,), (vector,))[1]

        result = map_columns(product, block)
        raise_if_not_finite(torch.isfinite(result).all().reshape(1), what="Hessian product of f")
        return result


def hessian(
    model_or_f: Any,
    loss_fn_or_theta: Any,
    data: Any = None,
    *,
    params=None,
    method: str = "forward_over_reverse",
) -> LinearOperator:
    """The Hessian of the mean loss of a model over a data set, or of a function f(theta).

    Two forms:

    - ``hessian(model, loss_fn, data, params=None, method=...)``: ``loss_fn(outputs,
      targets)`` must return the batch *mean*; batches of unequal size are weighted by
      their sample counts, so the operator equals the Hessian of the mean over all samples.
      ``params`` selects parameters (names or sub-modules) for per-layer Hessians; the
      others are held fixed. The model is never mutated.
    - ``hessian(f, theta)``: the Hessian of a scalar function of a flat tensor (spin
      glasses, toy landscapes).

    Args:
        model_or_f: an ``nn.Module``, or a callable of a flat tensor.
        loss_fn_or_theta: the loss function, or the point ``theta``.
        data: an ``(X, Y)`` pair or an iterable of ``(inputs, targets)`` batches.
        params: which parameters to differentiate (model form only).
        method: the product method, one of ``METHODS`` (see the module docstring).

    Returns:
        A symmetric :class:`~hesskit.LinearOperator` of size the number of parameters.

    Raises:
        TypeError: if a model is given without a callable loss or with bad data.
        ValueError: if ``data`` is missing for a model, or is given for a function.

    Example:
        >>> import torch, hesskit
        >>> H = hesskit.hessian(lambda x: (x ** 4).sum() / 12, torch.tensor([1.0, 2.0]))
        >>> hesskit.dense(H)
        tensor([[1., 0.],
                [0., 4.]])
    """
    if isinstance(model_or_f, torch.nn.Module):
        if data is None:
            msg = "data is required with a model: pass an (X, Y) pair or a list of batches"
            raise ValueError(msg)
        return ModelHessian(model_or_f, loss_fn_or_theta, data, params=params, method=method)
    if data is not None or params is not None:
        msg = "data and params are for the model form hessian(model, loss_fn, data)"
        raise ValueError(msg)
    return FunctionHessian(model_or_f, loss_fn_or_theta)
