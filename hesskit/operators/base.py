"""The one operator protocol every algorithm in hesskit works on, and its lazy algebra.

An operator is a symmetric linear map on R^n, known only through products with blocks of
vectors. It has ``shape``, ``dtype``, ``device``, a batched product ``matmat(V)`` for a
block ``V`` of shape ``(n, k)``, ``@`` for a vector or a block, and ``to_scipy()`` for a
``scipy.sparse.linalg.LinearOperator`` view (so SciPy's ``eigsh``/``lobpcg`` serve as
references). A plain square ``torch.Tensor`` is accepted wherever an operator is, through
:func:`as_operator` (its symmetry is checked: an eigensolver on a non-symmetric matrix
would report converged Ritz pairs that are not eigenpairs). The design follows SciPy's
``LinearOperator`` and curvlinops' ``CurvatureLinearOperator``: the constructor validates
``shape``, ``dtype`` and ``device``, subclasses implement only ``_matmat``, the public
methods validate and dispatch.

Operators combine lazily, checked up front: ``A + B``, ``A - B``, ``c * A``, ``-A`` and
``A.shift(sigma)`` (``A - sigma I``, the spectral shift of shift-and-invert and of the
smallest-eigenvalue searches) build a :class:`LinearCombination`, whose product is one
product of each term; mismatched shapes, dtypes or devices raise when it is built, not
at the first product. Symmetry of an operator that is not a tensor is not checked (that
would cost products): ``eigsh`` on a non-symmetric operator returns meaningless values.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse.linalg
import torch

from hesskit import _checks


class LinearOperator:
    """A symmetric linear operator on R^n, applied to blocks of vectors.

    Args:
        shape: ``(n, n)``, with ``n >= 1``.
        dtype: the floating dtype of its products.
        device: the device of its products.

    Subclasses call this constructor and implement ``_matmat``.

    Example:
        >>> import torch, hesskit
        >>> A = hesskit.as_operator(torch.diag(torch.tensor([1.0, 3.0])))
        >>> hesskit.dense(2 * A - A.shift(1.0)).diagonal()
        tensor([2., 4.])
    """

    def __init__(
        self, shape: tuple[int, int], *, dtype: torch.dtype, device: torch.device | str
    ) -> None:
        self.shape = _check_shape(shape)
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            msg = f"dtype must be a floating torch.dtype, got {dtype!r}"
            raise TypeError(msg)
        self.dtype = dtype
        self.device = _check_device(device)

    @property
    def product_dtype(self) -> torch.dtype:
        """The dtype the products are computed in.

        It is ``dtype``, except for a :class:`WorkPrecision` view, whose blocks are cast
        to a less precise one.

        Returns:
            A floating ``torch.dtype``.
        """
        return self.dtype

    def _matmat(self, block: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def matmat(self, block: torch.Tensor) -> torch.Tensor:
        """Return ``A @ block`` for a block of shape ``(n, k)``."""
        _checks.check_block("block", block, n=self.shape[1], dtype=self.dtype, device=self.device)
        return self._matmat(block)

    def __matmul__(self, other: torch.Tensor) -> torch.Tensor:
        """``A @ v`` for a vector of shape ``(n,)`` or a block of shape ``(n, k)``.

        Returns:
            ``A @ other``, of the shape of ``other``.
        """
        if isinstance(other, torch.Tensor) and other.ndim == 1:
            return self.matmat(other.unsqueeze(1)).squeeze(1)
        return self.matmat(other)

    def __add__(self, other: Any) -> LinearCombination:
        """``A + B``: the lazy sum (``B`` an operator or a square tensor).

        Returns:
            A :class:`LinearCombination`; no product is computed until it is applied.
        """
        return LinearCombination([(1.0, self), (1.0, _operand(other, "+"))])

    def __sub__(self, other: Any) -> LinearCombination:
        """``A - B``: the lazy difference.

        Returns:
            A :class:`LinearCombination`; no product is computed until it is applied.
        """
        return LinearCombination([(1.0, self), (-1.0, _operand(other, "-"))])

    def __mul__(self, scalar: Any) -> LinearCombination:
        """``A * c``: the lazy scaling by a finite real number.

        Returns:
            A :class:`LinearCombination`; no product is computed until it is applied.
        """
        return LinearCombination([(_scalar(scalar), self)])

    __rmul__ = __mul__

    def __neg__(self) -> LinearCombination:
        """``-A``.

        Returns:
            A :class:`LinearCombination` with coefficient -1.
        """
        return LinearCombination([(-1.0, self)])

    def shift(self, sigma: Any) -> LinearCombination:
        """``A - sigma I``: eigenvalues moved down by ``sigma``, eigenvectors unchanged.

        Returns:
            A :class:`LinearCombination` of ``A`` and the identity.

        Raises:
            TypeError: if ``sigma`` is not an int or a float.
            ValueError: if ``sigma`` is NaN or infinite.
        """
        sigma = _checks.check_finite_float("sigma", sigma)
        identity = IdentityOperator(self.shape[0], dtype=self.dtype, device=self.device)
        return LinearCombination([(1.0, self), (-sigma, identity)])

    def to_scipy(self) -> scipy.sparse.linalg.LinearOperator:
        """A ``scipy.sparse.linalg.LinearOperator`` view (host arrays in, host arrays out).

        The dtype is declared up front so SciPy never probes it with a hidden product.

        Returns:
            A ``scipy.sparse.linalg.LinearOperator`` of the same shape and dtype, whose products
            go through :meth:`matmat` on the operator's device.
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
        """The operator as text.

        Returns:
            ``ClassName(n=..., dtype=..., device=...)``.
        """
        return f"{type(self).__name__}(n={self.shape[0]}, dtype={self.dtype}, device={self.device})"


class LinearCombination(LinearOperator):
    """``sum_i c_i A_i`` of operators with one shape, dtype and device, applied lazily.

    Nested combinations are flattened, so ``(A + B) - C`` costs one product of each.

    Raises:
        ValueError: if the terms differ in shape or device, or there is none.
        TypeError: if the terms differ in dtype.
    """

    terms: tuple[tuple[float, LinearOperator], ...]

    def __init__(self, terms: list[tuple[float, LinearOperator]]) -> None:
        flat: list[tuple[float, LinearOperator]] = []
        for coefficient, op in terms:
            if isinstance(op, LinearCombination):
                flat.extend((coefficient * c, inner) for c, inner in op.terms)
            else:
                flat.append((coefficient, op))
        if not flat:
            msg = "a linear combination needs at least one operator"
            raise ValueError(msg)
        first = flat[0][1]
        for _, op in flat[1:]:
            _check_compatible(first, op)
        super().__init__(first.shape, dtype=first.dtype, device=first.device)
        self.terms = tuple(flat)

    def _matmat(self, block: torch.Tensor) -> torch.Tensor:
        result = torch.zeros_like(block)
        for coefficient, op in self.terms:
            result.add_(op.matmat(block), alpha=coefficient)
        return result

    def __repr__(self) -> str:
        """The combination as text.

        Returns:
            The terms as ``c1 * A1 + c2 * A2 + ...``.
        """
        return " + ".join(f"{c:g} * {op!r}" for c, op in self.terms)


class IdentityOperator(LinearOperator):
    """The identity on R^n (for shifts)."""

    def __init__(self, n: int, *, dtype: torch.dtype, device: torch.device | str) -> None:
        super().__init__((n, n), dtype=dtype, device=device)

    def _matmat(self, block: torch.Tensor) -> torch.Tensor:
        return block.clone()


class DenseOperator(LinearOperator):
    """A symmetric square tensor seen as an operator (small problems, tests, baselines).

    Raises:
        ValueError: if ``matrix`` is not square, holds NaN or inf, or is not symmetric to
            within ``sqrt(eps) * max|matrix|`` (round-off of an assembled Hessian passes).
        TypeError: if ``matrix`` is not floating point.
    """

    def __init__(self, matrix: torch.Tensor) -> None:
        matrix = _checks.check_square_matrix("op", matrix)
        _check_symmetric(matrix)
        super().__init__(
            (matrix.shape[0], matrix.shape[1]), dtype=matrix.dtype, device=matrix.device
        )
        self.matrix = matrix

    def _matmat(self, block: torch.Tensor) -> torch.Tensor:
        return self.matrix @ block


class WorkPrecision(LinearOperator):
    """A low-precision operator seen in a more precise work dtype.

    Each block is cast to the operator's dtype before the product and the product back to
    the work dtype after it, so a solver keeps its Krylov state and its reductions in the
    work dtype while the products stay in the operator's (bf16, fp16). ``product_dtype``
    tells solvers how precise the products are.

    Args:
        op: the operator whose products are taken.
        work_dtype: the dtype of the blocks in and out.
    """

    def __init__(self, op: LinearOperator, work_dtype: torch.dtype) -> None:
        super().__init__(op.shape, dtype=work_dtype, device=op.device)
        self.inner = op

    @property
    def product_dtype(self) -> torch.dtype:
        """The inner operator's dtype, in which the products are computed.

        Returns:
            The dtype of ``inner``.
        """
        return self.inner.dtype

    def _matmat(self, block: torch.Tensor) -> torch.Tensor:
        return self.inner.matmat(block.to(self.inner.dtype)).to(self.dtype)


_LOW_PRECISION = (torch.bfloat16, torch.float16)


def in_work_dtype(op: LinearOperator, work_dtype: Any = None) -> LinearOperator:
    """``op`` seen in ``work_dtype``: itself if that is its dtype, else a :class:`WorkPrecision`.

    Args:
        op: the operator.
        work_dtype: ``torch.float32``, ``torch.float64`` or None: float32 for a bf16 or
            fp16 operator (its own dtype would lose the Krylov basis' orthogonality after
            a few steps), the operator's own dtype otherwise.

    Returns:
        An operator of dtype ``work_dtype`` whose products are ``op``'s.

    Raises:
        TypeError: if ``work_dtype`` is not None, ``torch.float32`` or ``torch.float64``.
        ValueError: if ``work_dtype`` is less precise than ``op.dtype`` (float32 for a
            float64 operator would discard digits the products carry).
    """
    if work_dtype is None:
        work_dtype = torch.float32 if op.dtype in _LOW_PRECISION else op.dtype
    if work_dtype not in (torch.float32, torch.float64):
        msg = (
            f"work_dtype must be torch.float32, torch.float64 or None (the default), got "
            f"{work_dtype!r}"
        )
        raise TypeError(msg)
    if torch.finfo(work_dtype).eps > torch.finfo(op.dtype).eps:
        msg = (
            f"work_dtype={work_dtype} is less precise than the operator's {op.dtype}; pass "
            f"work_dtype={op.dtype} or None"
        )
        raise ValueError(msg)
    return op if work_dtype == op.dtype else WorkPrecision(op, work_dtype)


def _check_symmetric(matrix: torch.Tensor) -> None:
    if matrix.device.type == "meta":  # no values to check
        return
    if not bool(torch.isfinite(matrix).all()):
        msg = "op holds NaN or inf; an eigensolver on it would return NaN"
        raise ValueError(msg)
    tolerance = math.sqrt(torch.finfo(matrix.dtype).eps) * float(matrix.abs().max())
    asymmetry = float((matrix - matrix.T).abs().max())
    if not asymmetry <= tolerance:
        msg = (
            f"op must be symmetric (hesskit's solvers assume it), but max|A - A^T| = "
            f"{asymmetry:.3g} exceeds sqrt(eps) * max|A| = {tolerance:.3g}; pass (A + A.T) / 2 "
            "if the asymmetry is round-off"
        )
        raise ValueError(msg)


def _check_shape(shape: Any) -> tuple[int, int]:
    if (
        not isinstance(shape, tuple)
        or len(shape) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in shape)
    ):
        msg = f"shape must be a tuple (n, n) of two ints, got {shape!r}"
        raise TypeError(msg)
    if shape[0] != shape[1] or shape[0] < 1:
        msg = f"shape must be (n, n) with n >= 1 (a symmetric operator is square), got {shape}"
        raise ValueError(msg)
    return shape


def _check_device(device: Any) -> torch.device:
    """``device`` as tensors report it: ``cpu`` without an index, CUDA with one.

    Returns:
        The normalised ``torch.device``.

    Raises:
        TypeError: if ``device`` is neither a ``torch.device`` nor a device string.
    """
    try:
        resolved = torch.device(device)
    except (TypeError, RuntimeError) as error:
        msg = f"device must be a torch.device or a device string such as 'cuda:0', got {device!r}"
        raise TypeError(msg) from error
    if resolved.type == "cpu":
        return torch.device("cpu")
    if resolved.type == "cuda" and resolved.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return resolved


def _operand(other: Any, symbol: str) -> LinearOperator:
    if isinstance(other, (LinearOperator, torch.Tensor)):
        return as_operator(other)
    msg = (
        f"A {symbol} B needs B to be a hesskit LinearOperator or a square tensor, got "
        f"{type(other).__name__}; for A {symbol} c*I use A.shift({'-' if symbol == '+' else ''}c)"
    )
    raise TypeError(msg)


def _scalar(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        msg = (
            f"an operator can be scaled only by a real number, got {type(value).__name__}; "
            "for a product with a vector use A @ v"
        )
        raise TypeError(msg)
    return _checks.check_finite_float("scalar", value)


def _check_compatible(first: LinearOperator, other: LinearOperator) -> None:
    if first.shape != other.shape:
        msg = f"operators of different shapes cannot be combined: {first.shape} and {other.shape}"
        raise ValueError(msg)
    if first.device != other.device:
        msg = (
            f"operators on different devices cannot be combined: {first.device} and {other.device}"
        )
        raise ValueError(msg)
    if first.dtype != other.dtype:
        msg = f"operators of different dtypes cannot be combined: {first.dtype} and {other.dtype}"
        raise TypeError(msg)


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

    Returns:
        The ``(n, n)`` matrix, in the operator's dtype on its device.

    Raises:
        TypeError: if ``block_size`` is not an int.
        ValueError: if ``block_size < 1``.

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
    ``randomness="error"``: a product is deterministic (batch-dependent layers are
    rejected), so a random operation inside one is a bug to report, not to vectorise.

    Returns:
        The ``(n, k)`` block of the products of the columns.
    """
    if block.shape[1] == 1:
        return product(block[:, 0]).unsqueeze(1)
    return torch.func.vmap(product, in_dims=1, out_dims=1, randomness="error")(block)
