"""A ready-made problem: data, a batch-mean loss, and a seeded factory of MLPs of any width.

A :class:`Problem` holds everything a curvature experiment needs besides the trained
weights: ``hesskit.hessian(problem.make_model(), problem.loss_fn, problem.data)``. Models
are built by :func:`mlp` under a local seed (``torch.random.fork_rng``), so the same seed
gives the same initial weights and the caller's global random state is left untouched.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from hesskit import _checks

ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU}


def mean_squared_error(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The batch mean of ``(outputs - targets) ** 2`` over every entry.

    Written by hand rather than with ``F.mse_loss``, whose forward-mode derivative is
    broken in torch 2.13, so that forward-over-reverse Hessian products work.

    Returns:
        The mean squared error, a 0-d tensor.

    Example:
        >>> mean_squared_error(torch.tensor([1.0, 3.0]), torch.tensor([0.0, 1.0]))
        tensor(2.5000)
    """
    return ((outputs - targets) ** 2).mean()


def mlp(
    sizes: Sequence[int],
    *,
    activation: str = "tanh",
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> nn.Sequential:
    """A fully connected network ``sizes[0] -> ... -> sizes[-1]`` with PyTorch's default init.

    The weights are drawn in float64 on the CPU under ``seed`` (the global random state is
    saved and restored), then cast, so a seed gives the same network in every dtype.

    Args:
        sizes: the layer widths, input first and output last (at least two).
        activation: ``"tanh"`` or ``"relu"``, between consecutive linear layers.
        seed: the seed of the initialisation.
        dtype: the parameters' dtype.
        device: the parameters' device.

    Returns:
        An ``nn.Sequential`` of ``nn.Linear`` layers and activations.

    Raises:
        ValueError: if ``sizes`` has fewer than two entries or a width below 1, or
            ``activation`` is unknown.
        TypeError: if a width or ``seed`` is not an int.

    Example:
        >>> net = mlp([4, 8, 3], seed=1)
        >>> net(torch.zeros(2, 4, dtype=torch.float64)).shape
        torch.Size([2, 3])
    """
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence) or len(sizes) < 2:
        msg = f"sizes must list at least two layer widths (input and output), got {sizes!r}"
        raise ValueError(msg)
    widths = [_checks.check_int_in_range(f"sizes[{i}]", s, low=1) for i, s in enumerate(sizes)]
    _checks.check_choice("activation", activation, tuple(ACTIVATIONS))
    seed = _checks.check_int_in_range("seed", seed, low=0)
    layers: list[nn.Module] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for fan_in, fan_out in itertools.pairwise(widths):
            layers += [nn.Linear(fan_in, fan_out, dtype=torch.float64), ACTIVATIONS[activation]()]
    return nn.Sequential(*layers[:-1]).to(dtype=dtype, device=device)


@dataclass(frozen=True, eq=False)
class Problem:
    """Data, a batch-mean loss and an MLP factory: one curvature experiment's fixed parts.

    Attributes:
        name: a short readable identifier (``"gaussian_mixture(k=5)"``).
        inputs: the ``(num_samples, input_dim)`` inputs.
        targets: class ids (int64) for classification, ``(num_samples, 1)`` for regression.
        loss_fn: ``loss_fn(outputs, targets)``, the mean over the batch.
        num_classes: the number of classes, or None for regression.
        layer_sizes: the default model's widths, input first and output last.
        activation: the default model's activation, ``"tanh"`` or ``"relu"``.
        teacher: the network that produced the targets (teacher-student problems).
    """

    name: str
    inputs: torch.Tensor
    targets: torch.Tensor
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    num_classes: int | None
    layer_sizes: tuple[int, ...]
    activation: str = "tanh"
    teacher: nn.Module | None = None

    @property
    def data(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``(inputs, targets)`` pair that hesskit's operators and trainers take."""
        return self.inputs, self.targets

    @property
    def num_samples(self) -> int:
        """The number of samples."""
        return int(self.inputs.shape[0])

    def make_model(
        self, width: int | None = None, *, seed: int = 0, dtype: torch.dtype | None = None
    ) -> nn.Sequential:
        """A fresh, seeded MLP for this problem, on the device of the data.

        Args:
            width: every hidden layer's width; None keeps ``layer_sizes``.
            seed: the seed of the initialisation (independent of the data's seed).
            dtype: the parameters' dtype; None follows the inputs (float64 by default).

        Returns:
            The network ``layer_sizes`` with the hidden widths set to ``width``.

        Raises:
            ValueError: if ``width`` is given for a model without hidden layers, or < 1.

        Example:
            >>> from hesskit.problems import gaussian_mixture
            >>> problem = gaussian_mixture(3, input_dim=4, samples_per_cluster=5)
            >>> problem.make_model(7)
            Sequential(
              (0): Linear(in_features=4, out_features=7, bias=True)
              (1): Tanh()
              (2): Linear(in_features=7, out_features=7, bias=True)
              (3): Tanh()
              (4): Linear(in_features=7, out_features=3, bias=True)
            )
        """
        sizes = self.layer_sizes
        if width is not None:
            if len(sizes) == 2:
                msg = f"width has no effect: the model {sizes} of {self.name} has no hidden layer"
                raise ValueError(msg)
            width = _checks.check_int_in_range("width", width, low=1)
            sizes = (sizes[0], *([width] * (len(sizes) - 2)), sizes[-1])
        dtype = self.inputs.dtype if dtype is None else dtype
        device = self.inputs.device
        return mlp(sizes, activation=self.activation, seed=seed, dtype=dtype, device=device)

    def to(
        self, dtype: torch.dtype | None = None, device: torch.device | str | None = None
    ) -> Problem:
        """A copy with floating tensors (and the teacher) cast to ``dtype`` on ``device``.

        Args:
            dtype: the new floating dtype; None keeps it. Integer labels keep theirs.
            device: the new device; None keeps it.

        Returns:
            A new :class:`Problem`; this one is unchanged.

        Example:
            >>> from hesskit.problems import gaussian_mixture
            >>> gaussian_mixture(2, input_dim=3).to(torch.float32).inputs.dtype
            torch.float32
        """

        def move(tensor: torch.Tensor) -> torch.Tensor:
            kind = dtype if tensor.is_floating_point() else None
            return tensor.to(device=device, dtype=kind)

        teacher = self.teacher
        if teacher is not None:
            teacher = copy.deepcopy(teacher).to(dtype=dtype, device=device)
        return dataclasses.replace(
            self, inputs=move(self.inputs), targets=move(self.targets), teacher=teacher
        )
