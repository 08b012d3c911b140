"""The digits networks W1, W2 and W3: the models hesskit and its peers are measured on.

Their architectures, seeded; :func:`hesskit.train.trained_digits_network` trains them
(the recipe shared by the demo, ``python -m hesskit.demo``, the tests and the asv
benchmarks, so that a number measured in one place is a number about the same model in
the others). The workloads (``shared/peers.md``) are networks on all 1,797 of
scikit-learn's 8x8 digits (64 standardized pixels, 10 classes, mean cross-entropy over
the whole data set):

- ``W1``: MLP 64-32-10 tanh, 2,410 parameters;
- ``W2``: MLP 64-128-128-10 ReLU, 26,122 parameters;
- ``W3``: CNN conv(1-16, 3x3)-ReLU-conv(16-32, 3x3)-ReLU-linear(2048-10), 25,290 parameters;

each trained with 200 full-batch Adam steps (lr 1e-2, seed 0). W1 then reaches a training
loss of about 0.007 and 100% accuracy. This module trains nothing, so the problems do not
depend on the trainers (which depend on the problems).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

import torch
from torch import nn

from hesskit import _checks


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
