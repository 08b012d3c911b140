"""The one operator protocol every algorithm in hesskit works on.

An operator is a symmetric linear map on R^n, known only through products with blocks of
vectors. It has ``shape``, ``dtype``, ``device``, a batched product ``matmat(V)`` for a
block ``V`` of shape ``(n, k)``, ``@`` for a vector or a block, and ``to_scipy()`` for a
``scipy.sparse.linalg.LinearOperator`` view (so SciPy's ``eigsh``/``lobpcg`` serve as
references). A plain square ``torch.Tensor`` is accepted wherever an operator is, through
:func:`as_operator`. The design follows SciPy's ``LinearOperator`` and curvlinops'
``CurvatureLinearOperator``: subclasses implement only ``_matmat``; the public methods
validate and dispatch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse.linalg
import torch

from hesskit import _checks


class LinearOperator:
    """A symmetric linear operator on R^n, applied to blocks of vectors.

    Subclasses set ``shape``, ``dtype`` and ``device`` and implement ``_matmat``.
    """

    shape: tuple[int, int]
    dtype: torch.dtype
    device: torch.device

    def _matmat(self, block: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def matmat(self, block: torch.Tensor) -> torch.Tensor:
        """Return ``A @ block`` for a block of shape ``(n, k)``."""
        _checks.check_block("block", block, n=self.shape[1], dtype=self.dtype, device=self.device)
        return self._matmat(block)

    def __matmul__(self, other: torch.Tensor) -> torch.Tensor:
        """``A @ v`` for a vector of shape ``(n,)`` or a block of shape ``(n, k)``."""
        if isinstance(other, torch.Tensor) and other.ndim == 1:
            return self.matmat(other.unsqueeze(1)).squeeze(1)
        return self.matmat(other)

    def to_scipy(self) -> scipy.sparse.linalg.LinearOperator:
        """A ``scipy.sparse.linalg.LinearOperator`` view (host arrays in, host arrays out).

        The dtype is declared up front so SciPy never probes it with a hidden product.
        """
        np_dtype = torch.empty((), dtype=self.dtype).numpy().dtype

        def matmat(array: np.ndarray) -> np.ndarray:
            block = torch.as_tensor(np.asarray(array), dtype=self.dtype, device=self.device)
            block = block.reshape(self.shape[1], -1)
            return self.matmat(block).cpu().numpy()

        return scipy.sparse.linalg.LinearOperator(
            self.shape, matvec=matmat, matmat=matmat, rmatvec=matmat, dtype=np_dtype
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n={self.shape[0]}, dtype={self.dtype}, device={self.device})"


class DenseOperator(LinearOperator):
    """A square tensor seen as an operator (small problems, tests, baselines)."""

    def __init__(self, matrix: torch.Tensor) -> None:
        self.matrix = _checks.check_square_matrix("op", matrix)
        self.shape = (matrix.shape[0], matrix.shape[1])
        self.dtype = matrix.dtype
        self.device = matrix.device

    def _matmat(self, block: torch.Tensor) -> torch.Tensor:
        return self.matrix @ block


def as_operator(op: Any) -> LinearOperator:
    """Return ``op`` as a :class:`LinearOperator`; a square tensor is wrapped.

    Raises:
        TypeError: if ``op`` is neither an operator nor a tensor.
        ValueError: if a tensor ``op`` is not square.
    """
    if isinstance(op, LinearOperator):
        return op
    if isinstance(op, torch.Tensor):
        return DenseOperator(op)
    msg = f"op must be a hesskit LinearOperator or a square torch.Tensor, got {type(op).__name__}"
    raise TypeError(msg)


def dense(op: LinearOperator | torch.Tensor, *, block_size: int = 256) -> torch.Tensor:
    """Materialise an operator as an explicit ``(n, n)`` matrix (for small problems).

    The identity is pushed through in blocks of ``block_size`` columns, so memory beyond
    the result stays bounded.

    Example:
        >>> import torch, hesskit
        >>> hesskit.dense(torch.eye(3) * 2.0).diagonal()
        tensor([2., 2., 2.])
    """
    op = as_operator(op)
    block_size = _checks.check_int_in_range("block_size", block_size, low=1)
    n = op.shape[0]
    eye = torch.eye(n, dtype=op.dtype, device=op.device)
    columns = [op.matmat(eye[:, i : i + block_size]) for i in range(0, n, block_size)]
    return torch.cat(columns, dim=1)


def map_columns(product, block: torch.Tensor) -> torch.Tensor:
    """Apply a vector-to-vector ``product`` to each column of ``block``.

    ``vmap`` pushes all columns through one pass; a single column skips vmap's overhead.
    """
    if block.shape[1] == 1:
        return product(block[:, 0]).unsqueeze(1)
    return torch.func.vmap(product, in_dims=1, out_dims=1)(block)
