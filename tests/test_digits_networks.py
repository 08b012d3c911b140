"""The one recipe of the trained digits networks W1-W3 (demo, tests and benchmarks)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hesskit.problems import DIGITS_ARCHITECTURES, digits_architecture
from hesskit.train import trained_digits_network

NUM_PARAMETERS = {"W1": 2410, "W2": 26122, "W3": 25290}


def _parameters_equal(a: nn.Module, b: nn.Module) -> bool:
    pairs = zip(a.parameters(), b.parameters(), strict=True)
    return all(torch.equal(p, q) for p, q in pairs)


def test_w1_in_float64_is_the_old_recipe_bit_for_bit() -> None:
    # The reference: the loop the demo, tests/digits.py and the benchmarks each used to hold.
    from sklearn.datasets import load_digits

    data = load_digits()
    X = torch.tensor(data.data, dtype=torch.float64)
    X = (X - X.mean(0)) / X.std(0).clamp_min(1e-6)
    Y = torch.tensor(data.target)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        reference = nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 10)).double()
    optimizer = torch.optim.Adam(reference.parameters(), lr=1e-2)
    for _ in range(200):
        optimizer.zero_grad()
        nn.functional.cross_entropy(reference(X), Y).backward()
        optimizer.step()

    model, X_new, Y_new = trained_digits_network("W1")
    assert _parameters_equal(model, reference)
    assert torch.equal(X_new, X) and torch.equal(Y_new, Y)
    assert not model.training
    assert (model(X).argmax(1) == Y).float().mean() > 0.99


def test_same_seed_same_weights_other_seed_other_weights() -> None:
    first, _, _ = trained_digits_network("W1", steps=3, seed=1)
    again, _, _ = trained_digits_network("W1", steps=3, seed=1)
    other, _, _ = trained_digits_network("W1", steps=3, seed=2)
    assert _parameters_equal(first, again)
    assert not _parameters_equal(first, other)


def test_global_random_state_is_untouched() -> None:
    state = torch.get_rng_state()
    trained_digits_network("W1", steps=1, seed=5)
    digits_architecture("W2", seed=5)
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("name", ["W1", "W2", "W3"])
def test_shapes_dtypes_and_sizes(name: str) -> None:
    model, X, Y = trained_digits_network(name, steps=1, dtype=torch.float32)
    assert X.shape == (1797, 64) and X.dtype == torch.float32
    assert Y.shape == (1797,) and Y.dtype == torch.int64 and set(Y.tolist()) == set(range(10))
    assert model(X).shape == (1797, 10)
    assert sum(p.numel() for p in model.parameters()) == NUM_PARAMETERS[name]
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_zero_steps_is_the_seeded_initialisation_cast() -> None:
    model, _, _ = trained_digits_network("W1", steps=0, seed=3)
    assert _parameters_equal(model, digits_architecture("W1", seed=3).double())


def test_unknown_architecture_raises_naming_the_argument_and_the_known_ones() -> None:
    assert tuple(DIGITS_ARCHITECTURES) == ("W1", "W2", "W3")
    with pytest.raises(ValueError, match=r"architecture must be one of \('W1', 'W2', 'W3'\)"):
        trained_digits_network("W4")
    with pytest.raises(ValueError, match="architecture must be one of"):
        digits_architecture("mlp")
