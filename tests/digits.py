"""A trained scikit-learn digits MLP (peers.md's workload W1), shared by the tests.

64-32-10 tanh MLP (2,410 parameters) on all 1,797 standardized digits, trained with 200
full-batch Adam steps: the model the peers were measured on. Built once per process.
"""

from __future__ import annotations

import functools

import torch
from torch import nn


@functools.cache
def trained_digits_mlp(dtype: torch.dtype = torch.float64):
    """(model, X, Y) of the trained W1 digits MLP in ``dtype`` (seed 0)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = torch.tensor(digits.data, dtype=dtype)
    X = (X - X.mean(0)) / X.std(0).clamp_min(1e-6)
    Y = torch.tensor(digits.target)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 10)).to(dtype)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(200):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(X), Y).backward()
        optimizer.step()
    return model.eval().requires_grad_(True), X, Y
