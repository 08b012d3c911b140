"""The loss on a 2-D plane (and a 1-D line) through the parameters.

``plane`` evaluates ``L(theta + a d_1 + b d_2)`` on a grid of ``(a, b)``; ``profile`` the
loss along one direction. The directions are

- ``"hessian"``: the top Hessian eigenvectors (unit vectors, by :func:`hesskit.eigsh`),
  the directions of highest curvature, where a quadratic model predicts
  ``L + a g.d_1 + b g.d_2 + (a^2 lambda_1 + b^2 lambda_2) / 2``;
- ``"random"``: Gaussian directions, filter-normalised as in Li, Xu, Taylor, Studer,
  Goldstein (2018), "Visualizing the loss landscape of neural nets", NeurIPS,
  arXiv:1712.09913, section 4: each filter (a row along the first dimension of a weight:
  a convolution's output channel, a linear layer's output neuron) of the direction is
  rescaled to the norm of the same filter of the weights, so that the plot does not
  depend on the scale invariances of the network; the direction of a 1-D parameter (a
  bias, a normalisation's scale) is zero, the default of the paper's code
  (``ignore='biasbn'``);
- explicit flat vectors, taken as they are.

Every loss is evaluated through :class:`hesskit.Objective`, so batches are weighted by
their sizes, every check on model and data applies, and keyword arguments for the
objective (``**objective_kwargs``) pass through to it and to the Hessian. The model is
never modified.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hesskit import _checks
from hesskit.eigen import eigsh
from hesskit.objective import LossFn, Objective, Selection
from hesskit.operators import ModelHessian
from hesskit.progress import Callback, reporting

KINDS = ("hessian", "random")


@dataclass(frozen=True, eq=False)
class LossPlane:
    """``losses[i, j] = L(theta + alpha[i] d_1 + beta[j] d_2)`` on a grid.

    Attributes:
        alpha: the coordinates along the first direction.
        beta: the coordinates along the second direction.
        losses: the mean loss at each grid point, shape ``(len(alpha), len(beta))``.
        directions: ``(n, 2)``, the directions as columns.
        kind: ``"hessian"``, ``"random"`` or ``"given"``.
        eigenvalues: for ``"hessian"``, the two top eigenvalues; else None.
    """

    alpha: torch.Tensor
    beta: torch.Tensor
    losses: torch.Tensor
    directions: torch.Tensor
    kind: str
    eigenvalues: torch.Tensor | None


@dataclass(frozen=True, eq=False)
class LossProfile:
    """``losses[i] = L(theta + t[i] d)`` along one direction (attributes as for the plane)."""

    t: torch.Tensor
    losses: torch.Tensor
    direction: torch.Tensor
    kind: str
    eigenvalue: float | None


def plane(
    model: nn.Module,
    loss_fn: LossFn,
    data: Any,
    *,
    directions: Any = "hessian",
    extent: float = 1.0,
    num_points: int = 21,
    params: Selection = None,
    generator: torch.Generator | int | None = None,
    progress: bool | Callback | None = None,
    **objective_kwargs: Any,
) -> LossPlane:
    """The mean loss on a ``num_points x num_points`` grid around the current parameters.

    Args:
        model: the network; never modified.
        loss_fn: ``loss_fn(outputs, targets)``, the batch mean.
        data: an ``(X, Y)`` pair or a re-iterable of batches.
        directions: ``"hessian"`` (the top two eigenvectors), ``"random"`` (two
            filter-normalised Gaussian directions) or two flat vectors (a pair, or an
            ``(n, 2)`` tensor); see the module docstring.
        extent: the grid spans ``[-extent, extent]`` along both directions.
        num_points: grid points per direction (>= 2; odd puts the centre on the grid).
        params: which parameters the directions move (names or sub-modules; default all
            trainable ones).
        generator: seed or ``torch.Generator`` of the random directions and of the
            eigensolver's start vector.
        progress: None, True (a tqdm bar) or ``progress(done, total)`` after each loss.
        **objective_kwargs: passed to :class:`hesskit.Objective` (and the Hessian).

    Returns:
        A :class:`LossPlane`.

    Raises:
        TypeError, ValueError: for a bad argument, directions of the wrong shape or
            dtype, or a model, loss and data that the objective rejects.

    Example:
        >>> import torch
        >>> model = torch.nn.Linear(3, 1, bias=False).double()
        >>> X = torch.diag(torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64))
        >>> Y = torch.zeros(3, 1, dtype=torch.float64)
        >>> result = plane(model, torch.nn.functional.mse_loss, (X, Y), num_points=3)
        >>> [round(v, 4) for v in result.eigenvalues.tolist()]  # (2 / 3) X^T X = diag(6, 8/3, 2/3)
        [6.0, 2.6667]
        >>> result.losses.shape
        torch.Size([3, 3])
    """
    objective, basis, eigenvalues, kind = _setup(
        model, loss_fn, data, directions, 2, params, generator, objective_kwargs
    )
    coordinates = _coordinates(extent, num_points, objective)
    base = objective.parameters()
    total = len(coordinates) ** 2
    losses = torch.empty(len(coordinates), len(coordinates), dtype=base.dtype, device=base.device)
    with reporting(progress, "loss plane", unit="losses") as report:
        for i, a in enumerate(coordinates):
            for j, b in enumerate(coordinates):
                losses[i, j] = objective.loss(base + a * basis[:, 0] + b * basis[:, 1])
                report(i * len(coordinates) + j + 1, total)
    return LossPlane(coordinates, coordinates, losses, basis, kind, eigenvalues)


def profile(
    model: nn.Module,
    loss_fn: LossFn,
    data: Any,
    *,
    direction: Any = "hessian",
    extent: float = 1.0,
    num_points: int = 41,
    params: Selection = None,
    generator: torch.Generator | int | None = None,
    progress: bool | Callback | None = None,
    **objective_kwargs: Any,
) -> LossProfile:
    """The mean loss along one direction, ``t`` in ``[-extent, extent]``.

    Arguments as for :func:`plane`; ``direction`` is ``"hessian"`` (the top eigenvector),
    ``"random"`` (one filter-normalised direction) or one flat vector.

    Returns:
        A :class:`LossProfile`.

    Raises:
        TypeError, ValueError: as for :func:`plane`.

    Example:
        >>> import torch
        >>> model = torch.nn.Linear(2, 1, bias=False).double()
        >>> X = torch.diag(torch.tensor([3.0, 1.0], dtype=torch.float64))
        >>> Y = torch.zeros(2, 1, dtype=torch.float64)
        >>> with torch.no_grad():
        ...     _ = model.weight.fill_(0.0)
        >>> line = profile(model, torch.nn.functional.mse_loss, (X, Y), num_points=3)
        >>> [round(v, 10) for v in line.losses.tolist()]  # 4.5 t^2 along the top eigenvector
        [4.5, 0.0, 4.5]
    """
    objective, basis, eigenvalues, kind = _setup(
        model, loss_fn, data, direction, 1, params, generator, objective_kwargs
    )
    t = _coordinates(extent, num_points, objective)
    base = objective.parameters()
    losses = []
    with reporting(progress, "loss profile", unit="losses") as report:
        for index, s in enumerate(t):
            losses.append(objective.loss(base + s * basis[:, 0]))
            report(index + 1, len(t))
    eigenvalue = None if eigenvalues is None else float(eigenvalues[0])
    return LossProfile(t, torch.stack(losses), basis[:, 0], kind, eigenvalue)


def _setup(
    model: nn.Module,
    loss_fn: LossFn,
    data: Any,
    directions: Any,
    count: int,
    params: Selection,
    generator: torch.Generator | int | None,
    objective_kwargs: dict[str, Any],
) -> tuple[Objective, torch.Tensor, torch.Tensor | None, str]:
    """The objective, ``count`` directions as columns, their eigenvalues, and their kind.

    Returns:
        ``(objective, directions, eigenvalues, kind)``: the objective, the ``(n, count)``
        directions, their Hessian eigenvalues (None unless the kind is ``"hessian"``), and the
        kind: ``"hessian"``, ``"random"`` or ``"given"``.
    """
    name = "directions" if count == 2 else "direction"
    if isinstance(directions, str):
        kind = _checks.check_choice(name, directions, KINDS)
        if kind == "hessian":
            H = ModelHessian(model, loss_fn, data, params=params, **objective_kwargs)
            top = eigsh(H, count, generator=generator)
            vectors = top.eigenvectors * _signs(top.eigenvectors)
            return H.objective, vectors, top.eigenvalues, kind
        objective = Objective(model, loss_fn, data, params=params, **objective_kwargs)
        gen = _checks.make_generator(generator, objective.device)
        columns = [filter_normalized_direction(objective, gen) for _ in range(count)]
        return objective, torch.stack(columns, dim=1), None, kind
    objective = Objective(model, loss_fn, data, params=params, **objective_kwargs)
    return objective, _given(name, directions, count, objective), None, "given"


def _signs(vectors: torch.Tensor) -> torch.Tensor:
    """Signs that make each column's largest-magnitude entry positive (a fixed orientation).

    Returns:
        A ``(k,)`` tensor of +-1 (0 for a zero column), one per column of ``vectors``.
    """
    rows = vectors.abs().argmax(dim=0)
    return torch.sign(vectors[rows, torch.arange(vectors.shape[1])])


def _given(name: str, directions: Any, count: int, objective: Objective) -> torch.Tensor:
    """User directions as an ``(n, count)`` tensor, each column checked as a flat vector.

    Returns:
        The ``(n, count)`` tensor of the checked directions as columns.

    Raises:
        ValueError: if ``directions`` does not hold ``count`` vectors, or a vector has the
            wrong shape, is on another device, or holds NaN or inf.
        TypeError: if a vector is not a tensor or has another dtype.
    """
    if isinstance(directions, torch.Tensor) and directions.ndim == 2:
        columns = list(directions.unbind(dim=1))
    elif count == 1:
        columns = [directions]
    elif isinstance(directions, (tuple, list)):
        columns = list(directions)
    else:
        columns = []
    if len(columns) != count:
        what = "one flat vector" if count == 1 else "two flat vectors or an (n, 2) tensor"
        msg = f"{name} must be one of {KINDS} or {what}, got {type(directions).__name__}"
        raise ValueError(msg)
    n, dtype, device = objective.num_parameters, objective.dtype, objective.device
    checked = [
        _checks.check_flat_vector(name, column, n=n, dtype=dtype, device=device)
        for column in columns
    ]
    return torch.stack(checked, dim=1)


def filter_normalized_direction(objective: Objective, generator: torch.Generator) -> torch.Tensor:
    """A Gaussian direction with every filter rescaled to its weights' filter norm.

    Li et al. (2018, arXiv:1712.09913, section 4): for a weight of two or more dimensions,
    each slice along the first dimension ``d_i`` becomes ``d_i / ||d_i|| * ||theta_i||``;
    for a 1-D parameter (bias, normalisation) the direction is zero.

    Returns:
        A flat vector laid out like the objective's parameters.
    """
    theta = objective.theta
    flat = torch.randn(
        objective.num_parameters,
        generator=generator,
        dtype=objective.dtype,
        device=objective.device,
    )
    parts = {}
    for (name, weights), direction in zip(
        theta.items(), objective.layout.unflatten(flat).values(), strict=True
    ):
        if weights.ndim <= 1:
            parts[name] = torch.zeros_like(weights)
            continue
        rows = direction.reshape(direction.shape[0], -1)
        norms = weights.reshape(weights.shape[0], -1).norm(dim=1, keepdim=True)
        scaled = rows / rows.norm(dim=1, keepdim=True).clamp_min(torch.finfo(rows.dtype).tiny)
        parts[name] = (scaled * norms).reshape(weights.shape)
    return objective.layout.flatten(parts)


def _coordinates(extent: float, num_points: int, objective: Objective) -> torch.Tensor:
    extent = _checks.check_positive_float("extent", extent)
    num_points = _checks.check_int_in_range("num_points", num_points, low=2)
    return torch.linspace(
        -extent, extent, num_points, dtype=objective.dtype, device=objective.device
    )


def plot_plane(result: LossPlane, ax: Any = None, *, levels: int = 30) -> Any:
    """Draw filled contours of a :class:`LossPlane`.

    The contours are of ``log10`` of the loss when every loss is positive (a minimum's
    basin and the walls around it both show), else of the loss.

    Args:
        result: what :func:`plane` returned.
        ax: a matplotlib ``Axes`` to draw on; None makes a new figure (no pyplot), whose
            ``ax.figure.savefig(path)`` writes it.
        levels: the number of contour levels.

    Returns:
        The ``Axes``.
    """
    from matplotlib.figure import Figure

    if ax is None:
        ax = Figure(figsize=(4.8, 4.0), dpi=110, layout="constrained").add_subplot()
    losses = result.losses.detach().cpu().double()
    logarithmic = bool((losses > 0).all())
    values = losses.log10() if logarithmic else losses
    a, b = result.alpha.cpu().numpy(), result.beta.cpu().numpy()
    filled = ax.contourf(a, b, values.T.numpy(), levels=levels)
    ax.figure.colorbar(filled, ax=ax, label="log10 loss" if logarithmic else "loss")
    ax.plot([0], [0], "k+", ms=10)
    labels = {
        "hessian": "eigenvector {} (lambda = {:.3g})",
        "random": "filter-normalised direction {}",
        "given": "direction {}",
    }
    for axis, index in ((ax.set_xlabel, 0), (ax.set_ylabel, 1)):
        value = None if result.eigenvalues is None else float(result.eigenvalues[index])
        axis(labels[result.kind].format(index + 1, value))
    return ax
