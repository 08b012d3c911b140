"""Class means of the per-sample gradients: the vectors that span the Hessian's outliers.

Papyan (2019, "Measurements of three-level hierarchical structure in the outliers in the
spectrum of deepnet Hessians", ICML 2019, arXiv:1901.08244) decomposes the Gauss-Newton
part of the Hessian by class: its ``c`` outliers are spanned by the class means of the
per-sample loss gradients, and the finer ``c (c - 1)`` level of the hierarchy comes from
the means over class ``c`` of the gradients of logit ``c'``. :func:`class_mean_gradients`
computes both in the flat layout of the model's Hessian, ready for
:func:`hesskit.spectrum.class_mean_subspace`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.func import grad, jacrev, vmap

from hesskit import _checks
from hesskit.objective import Objective
from hesskit.params import ParameterLayout


@dataclass(frozen=True)
class ClassMeanGradients:
    """Per-group means of per-sample gradients, in the flat layout of ``hesskit.hessian``.

    Attributes:
        classes: ``(c,)`` the group labels, ascending.
        counts: ``(c,)`` the number of samples in each group.
        loss_means: ``(n_params, c)``: column ``j`` is the mean over group ``classes[j]``
            of the per-sample loss gradients.
        logit_means: ``(n_params, c, k_out)``: entry ``[:, j, o]`` is the mean over group
            ``classes[j]`` of the gradients of model output ``o`` (cross-class when
            ``o != classes[j]``); None unless asked for with ``include_logits=True``.
    """

    classes: torch.Tensor
    counts: torch.Tensor
    loss_means: torch.Tensor
    logit_means: torch.Tensor | None


def class_mean_gradients(
    model: torch.nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    data: Any,
    *,
    groups: torch.Tensor | None = None,
    include_logits: bool = False,
    chunk_size: int = 256,
) -> ClassMeanGradients:
    r"""Means over each class (or group) of the per-sample gradients (Papyan 2019).

    For sample ``i`` with input ``x_i`` and target ``y_i``, the per-sample loss is
    ``loss_fn(model(x_i[None]), y_i[None])`` (a batch-mean loss on a batch of one) and

    .. math::

        \bar g_c = \frac{1}{N_c} \sum_{i : \text{group}_i = c} \nabla_\theta
        \ell_i(\theta),

    with ``theta`` every trainable parameter in the order of ``model.named_parameters()``,
    the flat layout of :func:`hesskit.hessian` (so the columns can be compared with its
    eigenvectors). Per Papyan (2019, arXiv:1901.08244) these class means
    span the outliers of the Hessian spectrum. With ``include_logits=True`` also the means
    over each group of the gradients of every model output (the ``c x k_out`` vectors of
    Papyan's finer decomposition). The per-sample gradients go through
    ``torch.func.vmap(torch.func.grad(...))`` ``chunk_size`` samples at a time and are
    summed into the groups' sums, so memory is one chunk's ``(chunk_size, n_params)``
    (times ``k_out`` for the logits), never all samples'. The model is not mutated; the
    work is done on the parameters' device and dtype.

    Args:
        model: the network, in eval mode if it has BatchNorm or dropout layers.
        loss_fn: ``loss_fn(outputs, targets)`` returning the batch mean, a scalar.
        data: an ``(inputs, targets)`` pair of tensors on the parameters' device (floating
            tensors of the parameters' dtype).
        groups: an integer tensor of length ``num_samples`` giving each sample's group
            (e.g. cluster ids); default: ``targets``, which must then be integer labels.
        include_logits: whether to compute ``logit_means`` too (``model(x[None])`` must
            then have shape ``(1, k_out)``).
        chunk_size: samples per vectorised chunk (>= 1); lower it to save memory.

    Returns:
        A :class:`ClassMeanGradients`; ``sum_c counts_c * loss_means[:, c] / N`` is the
        gradient of the mean loss.

    Raises:
        TypeError: if ``model`` is not a module, ``loss_fn`` is not callable, ``data`` is
            not a pair of tensors, ``groups`` (or default targets) is not an integer
            tensor, a keyword has a wrong type, or a floating tensor has the wrong dtype.
        ValueError: if a train-mode BatchNorm/dropout layer is present, the data is empty,
            on the wrong device or ``groups`` has the wrong shape, ``loss_fn`` does not
            return a scalar, the outputs are not ``(1, k_out)`` with ``include_logits``,
            or a gradient is not finite.

    Example:
        >>> import torch
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> model = torch.nn.Linear(3, 2)
        >>> X, Y = torch.randn(6, 3), torch.tensor([0, 1, 1, 0, 1, 1])
        >>> result = class_mean_gradients(model, torch.nn.functional.cross_entropy, (X, Y))
        >>> result.classes.tolist(), result.counts.tolist(), tuple(result.loss_means.shape)
        ([0, 1], [2, 4], (8, 2))
    """
    _checks.check_module("model", model)
    inputs, targets = _checks.check_tensor_pair("data", data)
    include_logits = _checks.check_bool("include_logits", include_logits)
    chunk_size = _checks.check_int_in_range("chunk_size", chunk_size, low=1)
    labels = _group_labels(groups, targets)
    objective = Objective(model, loss_fn, (inputs, targets))
    layout, dtype, device = objective.layout, objective.dtype, objective.device
    classes, index = torch.unique(labels.to(device), sorted=True, return_inverse=True)
    counts = torch.bincount(index, minlength=len(classes))
    sample = _SampleFunctions(objective)
    if include_logits:
        sample.check_outputs(inputs[:1])
    loss_sums = torch.zeros(len(classes), layout.numel, dtype=dtype, device=device)
    logit_sums = None
    for start in range(0, len(labels), chunk_size):
        rows = slice(start, start + chunk_size)
        gradients = sample.loss_gradients(layout, inputs[rows], targets[rows])
        loss_sums.index_add_(0, index[rows], gradients)
        if include_logits:
            jacobians = sample.output_jacobians(layout, inputs[rows])
            if logit_sums is None:
                logit_sums = jacobians.new_zeros((len(classes), *jacobians.shape[1:]))
            logit_sums.index_add_(0, index[rows], jacobians)
    scale = counts.to(dtype)
    loss_means = (loss_sums / scale[:, None]).T.contiguous()
    logit_means = None
    if logit_sums is not None:
        logit_means = (logit_sums / scale[:, None, None]).permute(2, 0, 1).contiguous()
    _raise_if_not_finite(loss_means, logit_means)
    return ClassMeanGradients(classes, counts, loss_means, logit_means)


class _SampleFunctions:
    """Per-sample loss and outputs of an objective's model as pure functions of ``theta``."""

    def __init__(self, objective: Objective) -> None:
        self.objective, self.theta = objective, objective.theta

    def outputs(self, theta: dict, x: torch.Tensor) -> torch.Tensor:
        """The model's outputs on one sample ``x``, as a batch of one.

        Returns:
            The ``(1, k_out)`` outputs.
        """
        return self.objective.outputs(theta, x.unsqueeze(0))

    def loss(self, theta: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The loss of one sample, as a batch of one.

        Returns:
            The scalar loss.
        """
        return self.objective.loss_fn(self.outputs(theta, x), y.unsqueeze(0))

    def check_outputs(self, x: torch.Tensor) -> None:
        """Raise unless the outputs on a sample are ``(1, k_out)`` (for the logit means).

        Raises:
            ValueError: if the outputs have another shape.
        """
        with torch.no_grad():
            outputs = self.outputs(self.theta, x[0])
        if outputs.ndim != 2:
            msg = (
                "include_logits needs model outputs of shape (1, k_out) for one sample, got "
                f"{tuple(outputs.shape)}"
            )
            raise ValueError(msg)

    def loss_gradients(self, layout: ParameterLayout, x: torch.Tensor, y: torch.Tensor):
        """The ``(b, n_params)`` per-sample loss gradients of a chunk.

        Returns:
            The gradients, one row per sample.
        """
        gradients = vmap(grad(self.loss), in_dims=(None, 0, 0), randomness="error")(
            self.theta, x, y
        )
        return layout.flatten(gradients)

    def output_jacobians(self, layout: ParameterLayout, x: torch.Tensor) -> torch.Tensor:
        """The ``(b, k_out, n_params)`` per-sample Jacobians of the outputs of a chunk.

        Returns:
            The Jacobians, one per sample.
        """

        def outputs(theta: dict, sample: torch.Tensor) -> torch.Tensor:
            return self.outputs(theta, sample)[0]

        jacobians = vmap(jacrev(outputs), in_dims=(None, 0), randomness="error")(self.theta, x)
        return layout.flatten(jacobians)


def _group_labels(groups: Any, targets: torch.Tensor) -> torch.Tensor:
    """The ``(N,)`` integer group of each sample: ``groups``, or integer ``targets``.

    Returns:
        The group labels, int64.

    Raises:
        TypeError: if the labels are not integers.
        ValueError: if their shape does not match the samples.
    """
    name, labels = ("groups", groups) if groups is not None else ("targets", targets)
    advice = "" if groups is not None else "; pass groups=, one integer label per sample"
    if not isinstance(labels, torch.Tensor):
        msg = f"groups must be an integer torch.Tensor or None, got {type(labels).__name__}"
        raise TypeError(msg)
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        msg = f"{name} must be integer class or group labels, got dtype {labels.dtype}{advice}"
        raise TypeError(msg)
    if labels.ndim != 1 or len(labels) != len(targets):
        msg = (
            f"{name} must have shape ({len(targets)},), one label per sample, got "
            f"{tuple(labels.shape)}{advice}"
        )
        raise ValueError(msg)
    return labels


def _raise_if_not_finite(*tensors: torch.Tensor | None) -> None:
    """Raise if a computed mean holds NaN or inf (one host synchronisation).

    Raises:
        ValueError: if one does.
    """
    flags = [torch.isfinite(t).all() for t in tensors if t is not None]
    if not bool(torch.stack(flags).all()):
        msg = (
            "a class-mean gradient is not finite; check the inputs, targets and parameters "
            "for NaN/inf or overflow"
        )
        raise ValueError(msg)
