r"""The loss along the straight segment between two parameter vectors, and its barrier.

One-dimensional linear interpolation between solutions is the probe of Goodfellow,
Vinyals and Saxe (2015, arXiv:1412.6544); the barrier along the segment,

.. math::

    B = \max_{t \in [0, 1]} \; L((1 - t)\,\theta_a + t\,\theta_b)
        - \big((1 - t)\,L(\theta_a) + t\,L(\theta_b)\big),

is the linear-mode-connectivity statistic of Frankle et al. (2020, arXiv:1912.05671;
curved paths in Garipov et al. 2018, arXiv:1802.10026). Sagun et al. (2017,
arXiv:1706.04454, section 4.1) find no barrier between a large-batch solution and the
small-batch solution continued from it. The model is evaluated through
``torch.func.functional_call`` on the given vectors and is never modified.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hesskit import _checks
from hesskit.objective import LossFn, Objective


@dataclass(frozen=True, eq=False)
class LinearPath:
    """The loss at evenly spaced points of a segment ``theta(t) = (1 - t) theta_a + t theta_b``.

    Attributes:
        t: the positions along the segment, from 0 to 1.
        losses: the mean loss over the data at each position.
    """

    t: torch.Tensor
    losses: torch.Tensor

    @property
    def excess(self) -> torch.Tensor:
        """The loss minus the chord between the endpoints' losses, at each ``t``."""
        chord = (1 - self.t) * self.losses[0] + self.t * self.losses[-1]
        return self.losses - chord

    @property
    def barrier(self) -> float:
        """``max_t`` of :attr:`excess`: >= 0 (0 at the endpoints); <= round-off if convex."""
        return float(self.excess.max())

    @property
    def argmax_t(self) -> float:
        """The ``t`` where the barrier is attained."""
        return float(self.t[self.excess.argmax()])


def interpolate(
    model: nn.Module,
    loss_fn: LossFn,
    data: Any,
    theta_a: torch.Tensor,
    theta_b: torch.Tensor,
    *,
    num_points: int = 21,
    params: Iterable[str | nn.Module] | str | nn.Module | None = None,
    group: Any = None,
) -> LinearPath:
    """The mean loss along the straight segment from ``theta_a`` to ``theta_b``.

    Args:
        model: the network; its other parameters and buffers are held at their values.
        loss_fn: ``loss_fn(outputs, targets)``, the batch mean.
        data: an ``(X, Y)`` pair or an iterable of ``(inputs, targets)`` batches (batches
            are weighted by their sizes, so the loss is the mean over all samples).
        theta_a: the start, a flat vector as from ``hesskit.params.flatten_parameters``.
        theta_b: the end, laid out like ``theta_a``.
        num_points: the number of evenly spaced ``t`` in [0, 1], endpoints included (21,
            steps of 0.05, resolves barriers as in Frankle et al. 2020 at little cost).
        params: which parameters the vectors hold (names or sub-modules); None for all
            trainable ones, in ``model.named_parameters()`` order.
        group: a ``torch.distributed`` process group, or None: ``data`` is then this
            rank's shard and the losses are over every rank's (:mod:`hesskit.distributed`).

    Returns:
        A :class:`LinearPath`; ``losses[0]`` and ``losses[-1]`` are exactly the losses at
        ``theta_a`` and ``theta_b``.

    Raises:
        TypeError: if an argument has the wrong type, dtype or device.
        ValueError: if a vector has the wrong length or is not finite, ``num_points`` < 2,
            or the loss is not finite at a point (NaN in the data, overflow).

    Example:
        >>> model = nn.Linear(1, 1, bias=False).double()
        >>> data = (torch.ones(1, 1, dtype=torch.float64), torch.ones(1, dtype=torch.float64))
        >>> def double_well(out, y):
        ...     return ((out.squeeze(1) ** 2 - y) ** 2).mean()
        >>> a, b = torch.tensor([-1.0]).double(), torch.tensor([1.0]).double()
        >>> path = interpolate(model, double_well, data, a, b, num_points=5)
        >>> path.barrier, path.argmax_t
        (1.0, 0.5)
    """
    objective = Objective(model, loss_fn, data, params=params, group=group)
    n, dtype, device = objective.num_parameters, objective.dtype, objective.device

    def checked() -> tuple[torch.Tensor, torch.Tensor, int]:
        return (
            _checks.check_flat_vector("theta_a", theta_a, n=n, dtype=dtype, device=device),
            _checks.check_flat_vector("theta_b", theta_b, n=n, dtype=dtype, device=device),
            _checks.check_int_in_range("num_points", num_points, low=2),
        )

    theta_a, theta_b, count = objective.on_every_rank(checked)
    t = torch.linspace(0, 1, count, dtype=dtype, device=device)
    losses = torch.stack([objective.loss((1 - s) * theta_a + s * theta_b) for s in t])
    return LinearPath(t, losses)
