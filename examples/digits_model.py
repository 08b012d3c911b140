"""A model, its data and a short training run's checkpoints, for the hesskit command line.

``model`` and ``data`` are what ``hesskit spectrum`` and ``hesskit sweep`` take as MODEL and
DATA (``examples/digits_model.py:model``); run this file to write the checkpoints of 400
full-batch Adam steps on scikit-learn's 8x8 digits (needs scikit-learn):

    python examples/digits_model.py checkpoints/
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

from hesskit.problems import digits


def model() -> nn.Module:
    """The 64-32-10 tanh MLP of hesskit's benchmarks (2,410 parameters), float64."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 10)).double()


def data() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1,797 digits, standardised pixels (float64) and labels."""
    problem = digits()
    return problem.inputs, problem.targets


def train(folder: Path, *, steps: int = 400, every: int = 100) -> None:
    """Full-batch Adam (lr 0.01) from ``model()``, a checkpoint every ``every`` steps."""
    folder.mkdir(parents=True, exist_ok=True)
    network, (inputs, targets) = model(), data()
    optimizer = torch.optim.Adam(network.parameters(), lr=0.01)
    for step in range(steps + 1):
        if step % every == 0:
            checkpoint = {"step": step, "state_dict": network.state_dict()}
            torch.save(checkpoint, folder / f"step{step}.pt")
        loss = nn.functional.cross_entropy(network(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


if __name__ == "__main__":
    train(Path(sys.argv[1] if len(sys.argv) > 1 else "checkpoints"))
