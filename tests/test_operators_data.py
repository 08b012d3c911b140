"""Data validation: every raise of hesskit.data, through the public operators."""

import pytest
import torch
from torch import nn

import hesskit

LOSS = nn.functional.l1_loss


def model():
    return nn.Linear(2, 1)


def test_empty_data():
    with pytest.raises(ValueError, match="data is empty"):
        hesskit.hessian(model(), LOSS, [])


def test_data_of_zero_samples():
    with pytest.raises(ValueError, match="data is empty"):
        hesskit.hessian(model(), LOSS, (torch.ones(0, 2), torch.ones(0, 1)))


def test_data_not_iterable():
    with pytest.raises(TypeError, match="data must be an \\(inputs, targets\\) pair"):
        hesskit.hessian(model(), LOSS, 3.0)


def test_data_a_bare_tensor():
    with pytest.raises(TypeError, match="data must be an \\(inputs, targets\\) pair"):
        hesskit.hessian(model(), LOSS, torch.ones(3, 2))


def test_batch_not_a_pair():
    with pytest.raises(TypeError, match="data batch 1 must be an \\(inputs, targets\\) pair"):
        hesskit.hessian(model(), LOSS, [(torch.ones(3, 2), torch.ones(3, 1)), torch.ones(3)])


def test_batch_inputs_not_tensors():
    with pytest.raises(TypeError, match="data batch 0 has inputs of type str"):
        hesskit.hessian(model(), LOSS, [("x", torch.ones(3, 1))])


def test_batch_dtype_mismatch():
    with pytest.raises(TypeError, match="data batch 0 has dtype torch.float64.*torch.float32"):
        hesskit.hessian(model(), LOSS, (torch.ones(3, 2, dtype=torch.float64), torch.ones(3, 1)))


def test_batch_device_mismatch():
    X = torch.ones(3, 2, device="meta")
    with pytest.raises(ValueError, match="data batch 0 is on device meta"):
        hesskit.hessian(model(), LOSS, (X, torch.ones(3, 1)))


def test_integer_targets_are_accepted():
    H = hesskit.hessian(
        nn.Linear(2, 3),
        nn.functional.cross_entropy,
        (torch.ones(4, 2), torch.zeros(4, dtype=torch.long)),
    )
    assert H.shape == (9, 9)


def test_tuple_inputs_go_to_the_model_as_arguments():
    class Sum(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(2, 1), nn.Linear(3, 1)

        def forward(self, x, z):
            return self.a(x) + self.b(z)

    gen = torch.Generator().manual_seed(0)
    x, z, y = torch.randn(5, 2, generator=gen), torch.randn(5, 3, generator=gen), torch.randn(5, 1)
    H = hesskit.hessian(Sum(), LOSS, [((x, z), y)])
    C = hesskit.gradient_covariance(Sum(), LOSS, [((x, z), y)])
    assert H.shape == C.shape == (7, 7)
    assert torch.isfinite(hesskit.dense(C)).all()


def test_batches_modified_in_place_after_construction_raise():
    X, Y = torch.ones(4, 2), torch.ones(4, 1)
    H = hesskit.hessian(model(), LOSS, [(X[:2], Y[:2]), (X[2:], Y[2:])])
    X.mul_(2.0)  # the batches are views of X
    with pytest.raises(ValueError, match="batch 0 was replaced or modified in place"):
        H @ torch.ones(3)


def test_a_list_of_batches_that_grows_after_construction_raises():
    batches = [(torch.ones(2, 2), torch.ones(2, 1))]
    H = hesskit.hessian(model(), LOSS, batches)
    batches.append((torch.ones(2, 2), torch.ones(2, 1)))
    with pytest.raises(ValueError, match=r"batch 1 holds 2 samples \(first pass: no batch\)"):
        H @ torch.ones(3)


def test_a_list_of_batches_that_shrinks_after_construction_raises():
    batches = [(torch.ones(2, 2), torch.ones(2, 1))] * 2
    H = hesskit.hessian(model(), LOSS, batches, method="double_backward")
    batches.pop()
    with pytest.raises(ValueError, match=r"it yielded 1 batches \(first pass: 2\)"):
        H @ torch.ones(3)


def test_batch_of_another_size_on_a_later_pass_raises():
    class Growing:
        def __init__(self):
            self.size = 2

        def __iter__(self):
            self.size += 1
            return iter([(torch.ones(self.size, 2), torch.ones(self.size, 1))])

    H = hesskit.hessian(model(), LOSS, Growing(), method="double_backward")
    with pytest.raises(ValueError, match=r"batch 0 holds 4 samples \(first pass: 3\)"):
        H @ torch.ones(3)
