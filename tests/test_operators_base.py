"""The operator protocol: dense wrapping, validation of blocks, the scipy view."""

import numpy as np
import pytest
import torch

import hesskit
from hesskit import _checks


def sym(n=5, seed=0):
    A = torch.randn(n, n, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    return A + A.T


def test_dense_round_trip_in_small_blocks():
    A = sym(7)
    torch.testing.assert_close(hesskit.dense(A, block_size=3), A)


def test_matmul_vector_and_block():
    A = sym()
    op = hesskit.as_operator(A)
    v = torch.ones(5, dtype=torch.float64)
    torch.testing.assert_close(op @ v, A @ v)
    torch.testing.assert_close(op @ torch.stack([v, 2 * v], 1), A @ torch.stack([v, 2 * v], 1))


def test_to_scipy_declares_dtype_and_computes_products():
    A = sym().float()
    scipy_op = hesskit.as_operator(A).to_scipy()
    assert scipy_op.dtype == np.float32
    x = np.ones(5, dtype=np.float32)
    np.testing.assert_allclose(scipy_op @ x, (A @ torch.ones(5)).numpy(), rtol=1e-6)
    np.testing.assert_allclose(scipy_op.matmat(np.eye(5, dtype=np.float32)), A.numpy())


def test_repr_names_size():
    assert "n=5" in repr(hesskit.as_operator(sym()))


class TestErrors:
    def test_non_square(self):
        with pytest.raises(
            ValueError, match=r"op must be a square 2-D tensor \(n, n\), got shape \(2, 3\)"
        ):
            hesskit.as_operator(torch.ones(2, 3))

    def test_integer_matrix(self):
        with pytest.raises(TypeError, match="op must be a floating-point tensor"):
            hesskit.as_operator(torch.ones(2, 2, dtype=torch.long))

    def test_not_an_operator(self):
        with pytest.raises(TypeError, match="op must be a hesskit LinearOperator"):
            hesskit.as_operator([[1.0]])

    def test_block_wrong_rows(self):
        with pytest.raises(ValueError, match=r"block must have shape \(5, k\)"):
            hesskit.as_operator(sym()).matmat(torch.ones(4, 1, dtype=torch.float64))

    def test_block_not_tensor(self):
        with pytest.raises(TypeError, match="block must be a torch.Tensor"):
            hesskit.as_operator(sym()).matmat(np.ones((5, 1)))

    def test_block_wrong_dtype(self):
        with pytest.raises(TypeError, match="block has dtype torch.float32"):
            hesskit.as_operator(sym()) @ torch.ones(5)

    def test_block_wrong_device(self):
        with pytest.raises(ValueError, match="block is on device meta"):
            hesskit.as_operator(sym()).matmat(torch.ones(5, 1, dtype=torch.float64, device="meta"))

    def test_block_size(self):
        with pytest.raises(ValueError, match="block_size must be >= 1"):
            hesskit.dense(sym(), block_size=0)


class TestCheckHelpers:
    def test_int_range(self):
        with pytest.raises(TypeError, match="k must be an int, got bool"):
            _checks.check_int_in_range("k", True, low=1)
        with pytest.raises(ValueError, match="k must be >= 1 and <= 3, got 4"):
            _checks.check_int_in_range("k", 4, low=1, high=3)
        assert _checks.check_int_in_range("k", 2, low=1, high=3) == 2

    def test_positive_float(self):
        assert _checks.check_positive_float("tol", None, allow_none=True) is None
        with pytest.raises(TypeError, match="tol must be a positive number"):
            _checks.check_positive_float("tol", "1")
        with pytest.raises(ValueError, match="tol must be a finite number > 0, got nan"):
            _checks.check_positive_float("tol", float("nan"))

    def test_bool(self):
        assert _checks.check_bool("exact_residuals", False) is False
        with pytest.raises(TypeError, match="exact_residuals must be True or False, got int 1"):
            _checks.check_bool("exact_residuals", 1)

    def test_generator(self):
        gen = _checks.make_generator(5, torch.device("cpu"))
        assert torch.equal(
            torch.randn(3, generator=gen),
            torch.randn(3, generator=torch.Generator().manual_seed(5)),
        )
        with pytest.raises(
            TypeError, match="generator must be a torch.Generator, an int seed or None"
        ):
            _checks.make_generator("5", torch.device("cpu"))
        with pytest.raises(
            ValueError, match="generator is on device cpu but the operator is on meta"
        ):
            _checks.make_generator(torch.Generator(), torch.device("meta"))
