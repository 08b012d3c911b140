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

- ``"auto"``: ``"cached_graph"`` when the data is one batch (the graph it keeps is the one
  every double-backward product builds anyway, so peak memory does not grow), otherwise
  ``"double_backward"`` (no memory that grows with the number of batches).

Measured on one CPU thread (torch 2.13, float32, cost of one product in gradients over the
same data; ``benchmarks/README.md`` has the table): on MLPs from 1e3 to 1e6 parameters,
``cached_graph`` costs 0.9-1.5, ``double_backward`` 2.0-3.6 and ``forward_over_reverse``
2.7-11.6; forward-over-reverse wins only on convolutional nets (peers.md: 3.80 vs 4.65
gradients on the digits CNN). For a block of ``k`` columns the two reverse-over-reverse
methods run the second backward once per column through one graph (``retain_graph``), except
on small CPU problems (fewer than ``_BATCHED_BELOW`` parameters x samples), where vmap's
batched backward (``is_grads_batched``) pays off: on a 1e5-parameter MLP a block of 8
costs 2.6-4.3 gradients per column batched against 1.4-1.6 looped.

Forward mode is missing or broken for some operations (``F.mse_loss`` in torch 2.13 fails
with "ZeroTensors are immutable", a float32 ``nn.LSTM`` on the CPU runs ``mkldnn_rnn_layer``,
which has no forward-mode derivative); ``"forward_over_reverse"`` then falls back to
``"double_backward"`` for the rest of the operator's life, with a warning, rather than fail.

Attention: every method runs the model under the math kernel of
``F.scaled_dot_product_attention`` and without ``nn.MultiheadAttention``'s eval-mode fast
path (:func:`hesskit.objective.derivative_kernels`), on every device: the fused kernels
(flash, memory-efficient) have neither a double backward nor a forward-mode derivative, so
no method could use them. Stock ``nn.MultiheadAttention`` and ``nn.TransformerEncoder``
(causal masks included) work unchanged.
All three compute the same matrix (tested to float64 round-off). The default, ``"auto"``,
is chosen by the benchmarks in ``benchmarks/``: on the three reference workloads it is the
fastest method per product and per top-10 solve (see the README there).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, overload

import torch
from torch import nn
from torch.func import grad, jvp

from hesskit import _checks
from hesskit.objective import LossFn, Selection, Versions, autograd_allowed, raise_if_not_finite
from hesskit.operators._model import ModelCurvature, weighted_sum
from hesskit.operators.base import LinearOperator, map_columns

if TYPE_CHECKING:
    from torch.distributed import ProcessGroup

METHODS = ("forward_over_reverse", "double_backward", "cached_graph", "auto")

# torch's errors for an operation whose forward-mode derivative is missing or broken
# (F.mse_loss's "ZeroTensors are immutable"; mkldnn_rnn_layer of a float32 nn.LSTM on the
# CPU: "Trying to use forward AD with ...")
_NO_FORWARD_MODE = ("ZeroTensors are immutable", "Trying to use forward AD with")

# Below this many parameters x samples in a batch, a CPU block goes through the second
# backward batched (vmap); above it, column by column through the retained graph (measured:
# the crossover lies near 1e4 parameters x 256 samples on one thread).
_BATCHED_BELOW = 2**21


class ModelHessian(ModelCurvature):
    """Hessian of the mean of ``loss_fn(model(inputs), targets)`` over all samples."""

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        data: Any,
        *,
        params: Selection = None,
        method: str = "auto",
        group: ProcessGroup | None = None,
    ) -> None:
        super().__init__(model, loss_fn, data, params=params, group=group)
        self.method = self.objective.on_every_rank(
            lambda: _checks.check_choice("method", method, METHODS)
        )
        if self.method == "auto":
            one_batch = len(self.objective.dataset.batch_sizes) == 1
            self.method = "cached_graph" if one_batch else "double_backward"
        self._graphs: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self._graph_versions: Versions = ()

    def _matmat(self, block: torch.Tensor) -> torch.Tensor:
        # an in-place update of the model (an optimiser step, load_state_dict) bumps the
        # version counters: the cached graphs are rebuilt, not silently stale
        if self._graphs and self._graph_versions != self.objective.versions():
            self._graphs.clear()
        try:
            if self.method != "cached_graph" or not self._graphs:
                return super()._matmat(block)
            return self._cached_matmat(block)
        except BaseException:
            # nothing half-built or non-finite stays cached for a retry
            self._graphs.clear()
            raise

    def _cached_matmat(self, block: torch.Tensor) -> torch.Tensor:
        """The product through the kept graphs: no data read, the same checks.

        Returns:
            The ``(n, k)`` product ``H @ block``.
        """
        self.objective.check_mode()
        sizes = self.objective.dataset.batch_sizes
        return weighted_sum(
            (size / self.objective.num_samples, self._batch_matmat(index, None, None, block))
            for index, size in enumerate(sizes)
        )

    def _batch_matmat(self, index: int, inputs, targets, block: torch.Tensor) -> torch.Tensor:
        if self.method == "forward_over_reverse":
            try:
                return self._forward_over_reverse(inputs, targets, block)
            except (RuntimeError, NotImplementedError) as error:
                if not any(text in str(error) for text in _NO_FORWARD_MODE):
                    raise
                warnings.warn(
                    "the model or loss_fn has no working forward-mode derivative in this "
                    f"torch version ({error}); this Hessian now uses method='double_backward'",
                    RuntimeWarning,
                    stacklevel=4,
                )
                self.method = "double_backward"
        leaf, gradient = self._gradient_graph(index, inputs, targets)
        keep = self.method == "cached_graph"
        k = block.shape[1]
        if k > 1 and self._batched(index):
            (products,) = torch.autograd.grad(
                gradient, leaf, grad_outputs=block.T, retain_graph=keep, is_grads_batched=True
            )
            return products.T
        columns = [
            torch.autograd.grad(
                gradient, leaf, grad_outputs=block[:, i], retain_graph=keep or i < k - 1
            )[0]
            for i in range(k)
        ]
        return columns[0].unsqueeze(1) if k == 1 else torch.stack(columns, dim=1)

    def _batched(self, index: int) -> bool:
        """Whether a block goes through the second backward in one batched (vmap) pass.

        Returns:
            True on a GPU, or on the CPU when parameters x samples of batch ``index`` is below
            ``_BATCHED_BELOW``.
        """
        if self.device.type != "cpu":
            return True
        return self.shape[0] * self.objective.dataset.batch_sizes[index] < _BATCHED_BELOW

    def _forward_over_reverse(self, inputs, targets, block: torch.Tensor) -> torch.Tensor:
        objective = self.objective

        def loss(flat: torch.Tensor) -> torch.Tensor:
            return objective.batch_loss(objective.layout.unflatten(flat), inputs, targets)

        gradient = grad(loss)
        flat = objective.layout.flatten(objective.theta)

        def product(vector: torch.Tensor) -> torch.Tensor:
            return jvp(gradient, (flat,), (vector,))[1]

        return map_columns(product, block)

    def _gradient_graph(self, index: int, inputs, targets):
        """Flat leaf and flat gradient (with its graph) of batch ``index``.

        The parameters are views of one flat leaf, so each product is one backward from one
        flat gradient to one flat leaf: no per-parameter split or concatenation per product.
        Kept for ``cached_graph``.

        Returns:
            ``(leaf, gradient)``: the flat parameter leaf and the flat gradient of batch
            ``index``'s loss, with its graph kept.
        """
        if index in self._graphs:
            return self._graphs[index]
        objective = self.objective
        leaf = objective.layout.flatten(objective.theta).detach().requires_grad_()
        loss = objective.batch_loss(objective.layout.unflatten(leaf), inputs, targets)
        (gradient,) = torch.autograd.grad(loss, leaf, create_graph=True)
        graph = (leaf, gradient)
        if self.method == "cached_graph":
            self._graphs[index] = graph
            self._graph_versions = objective.versions()
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
        _check_scalar_function(f, theta)
        super().__init__((theta.numel(), theta.numel()), dtype=theta.dtype, device=theta.device)
        self.f = f
        self.theta = theta.detach()

    def _matmat(self, block: torch.Tensor) -> torch.Tensor:
        gradient = grad(self.f)

        def product(vector: torch.Tensor) -> torch.Tensor:
            return jvp(gradient, (self.theta,), (vector,))[1]

        with autograd_allowed():
            result = map_columns(product, block)
        raise_if_not_finite([result.sum()], what="Hessian product of f")
        return result


def _check_scalar_function(f: Callable[[torch.Tensor], Any], theta: torch.Tensor) -> None:
    """Raise unless ``f(theta)`` is a 0-d tensor (its Hessian is then defined)."""
    with torch.no_grad():
        value = f(theta.detach())
    advice = "sum or average a vector of values into the one number whose Hessian you want"
    _checks.check_scalar_result("f", value, advice=advice)


@overload
def hessian(
    model_or_f: nn.Module,
    loss_fn_or_theta: LossFn,
    data: Any,
    *,
    params: Selection = None,
    method: str = "auto",
    group: ProcessGroup | None = None,
) -> ModelHessian: ...
@overload
def hessian(
    model_or_f: Callable[[torch.Tensor], torch.Tensor],
    loss_fn_or_theta: torch.Tensor,
    data: None = None,
    *,
    params: None = None,
    method: str = "auto",
    group: None = None,
) -> FunctionHessian: ...
def hessian(  # the overloads above are the typed forms; both are validated at run time
    model_or_f: nn.Module | Callable[[torch.Tensor], torch.Tensor],
    loss_fn_or_theta: Any,
    data: Any = None,
    *,
    params: Selection = None,
    method: str = "auto",
    group: ProcessGroup | None = None,
) -> ModelHessian | FunctionHessian:
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
            The default ``"auto"`` is the fastest measured choice that keeps memory
            independent of the number of batches (``"cached_graph"`` for one batch, else
            ``"double_backward"``).
        group: a ``torch.distributed`` process group (model form only): ``data`` is this
            rank's shard, and the operator is the Hessian over every rank's shard, the
            same on every rank (see :mod:`hesskit.distributed`).

    Returns:
        A symmetric :class:`~hesskit.LinearOperator` of size the number of parameters:
        a ``ModelHessian`` for a model, a ``FunctionHessian`` for a function.

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
        return ModelHessian(
            model_or_f, loss_fn_or_theta, data, params=params, method=method, group=group
        )
    if data is not None or params is not None or group is not None:
        msg = "data, params and group are for the model form hessian(model, loss_fn, data)"
        raise ValueError(msg)
    return FunctionHessian(model_or_f, loss_fn_or_theta)
