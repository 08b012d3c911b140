"""The trained digits networks W1, W2 and W3: the models hesskit and its peers are measured on.

One recipe, shared by the demo (``python -m hesskit.demo``), the tests and the asv
benchmarks, so that a number measured in one place is a number about the same model in
the others. The workloads (``shared/peers.md``) are networks on all 1,797 of
scikit-learn's 8x8 digits (64 standardized pixels, 10 classes, mean cross-entropy over
the whole data set):

- ``W1``: MLP 64-32-10 tanh, 2,410 parameters;
- ``W2``: MLP 64-128-128-10 ReLU, 26,122 parameters;
- ``W3``: CNN conv(1-16, 3x3)-ReLU-conv(16-32, 3x3)-ReLU-linear(2048-10), 25,290 parameters;

each trained with 200 full-batch Adam steps (lr 1e-2, seed 0). W1 then reaches a training
loss of about 0.007 and 100% accuracy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

import torch
from torch import nn

from hesskit import _checks
from hesskit.problems.datasets import digits
from hesskit.train.networks import adam


def _w1() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 10))


def _w2() -> nn.Module:
    return nn.Sequential(
        nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10)
    )


def _w3() -> nn.Module:
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(2048, 10),
    )


DIGITS_ARCHITECTURES: Mapping[str, Callable[[], nn.Module]] = MappingProxyType(
    {"W1": _w1, "W2": _w2, "W3": _w3}
)
"""Workload name -> factory of its untrained network (float32, PyTorch's default init drawn
from the global random state; :func:`digits_architecture` draws it under a seed)."""


def digits_architecture(architecture: str, *, seed: int = 0) -> nn.Module:
    """The untrained float32 network of workload ``architecture`` (``"W1"``, ``"W2"``, ``"W3"``).

    Args:
        architecture: the workload's name, a key of :data:`DIGITS_ARCHITECTURES`.
        seed: the seed of PyTorch's default initialisation, drawn on the CPU with the
            global random state saved and restored.

    Returns:
        The float32 network on the CPU; it maps ``(n, 64)`` inputs to ``(n, 10)`` logits.

    Raises:
        ValueError: if ``architecture`` is not a known workload (the message lists them).
        TypeError: if ``seed`` is not an int.

    Example:
        >>> sum(p.numel() for p in digits_architecture("W1").parameters())
        2410
    """
    name = _checks.check_choice("architecture", architecture, tuple(DIGITS_ARCHITECTURES))
    seed = _checks.check_int_in_range("seed", seed, low=0)
    with torch.random.fork_rng(devices=[]):
        # The CPU generator only: torch.manual_seed would also reseed every CUDA device,
        # whose state fork_rng(devices=[]) does not restore. The CPU draws are the same.
        torch.default_generator.manual_seed(seed)
        return DIGITS_ARCHITECTURES[name]()


def trained_digits_network(
    architecture: str = "W1",
    *,
    steps: int = 200,
    lr: float = 1e-2,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """Workload ``architecture`` trained on all 1,797 standardized digits: ``(model, X, Y)``.

    The network is initialised in float32 under ``seed`` (the caller's global random state
    is left untouched), cast to ``dtype`` and ``device``, then trained with ``steps``
    full-batch Adam steps (:func:`hesskit.train.adam`) on the pixels of
    :func:`hesskit.problems.digits`, standardized in float64 and then cast. The defaults
    give the models the benchmarks and ``shared/peers.md`` measure; a seed gives the same
    weights on a given machine.

    Args:
        architecture: ``"W1"`` (64-32-10 tanh MLP), ``"W2"`` (64-128-128-10 ReLU MLP) or
            ``"W3"`` (small CNN).
        steps: the number of Adam steps (0 returns the initialisation).
        lr: Adam's step size.
        seed: the seed of the initialisation.
        dtype: the dtype of the training, the model and ``X``.
        device: the device of the training, the model and the data.

    Returns:
        The trained model in eval mode, the inputs ``X`` of shape ``(1797, 64)`` in
        ``dtype`` and the labels ``Y`` (int64, ``(1797,)``, in 0..9).

    Raises:
        ImportError: if scikit-learn is not installed.
        ValueError: if ``architecture`` is unknown or a number is out of range.
        TypeError: if ``steps`` or ``seed`` is not an int.

    Example (about a second on a CPU)::

        model, X, Y = trained_digits_network("W1", dtype=torch.float32)
        H = hesskit.hessian(model, torch.nn.functional.cross_entropy, (X, Y))
    """
    model = digits_architecture(architecture, seed=seed).to(dtype=dtype, device=device)
    problem = digits(dtype=dtype)
    X, Y = problem.inputs.to(device), problem.targets.to(device)
    run = adam(model, problem.loss_fn, (X, Y), lr=lr, max_steps=steps)
    return run.model.eval(), X, Y
