"""A trained scikit-learn digits MLP (peers.md's workload W1), shared by the tests.

64-32-10 tanh MLP (2,410 parameters) on all 1,797 standardized digits, trained with 200
full-batch Adam steps (:func:`hesskit.train.trained_digits_network`, the recipe of the
benchmarks and the demo): the model the peers were measured on. Built once per process.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from hesskit.train import trained_digits_network


@functools.cache
def trained_digits_mlp(
    dtype: torch.dtype = torch.float64,
) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """(model, X, Y) of the trained W1 digits MLP in ``dtype`` (seed 0), cached."""
    return trained_digits_network("W1", dtype=dtype)
