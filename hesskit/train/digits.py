"""The trained digits networks W1, W2 and W3 (:mod:`hesskit.problems.digits_networks`).

One recipe, shared by the demo (``python -m hesskit.demo``), the tests and the asv
benchmarks, so that a number measured in one place is a number about the same model in
the others. It lives with the trainers because it trains: the problems layer gives the
architectures and the data, and never imports a trainer.
"""

from __future__ import annotations

import torch
from torch import nn

from hesskit.problems.datasets import digits
from hesskit.problems.digits_networks import digits_architecture
from hesskit.train.networks import adam


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
