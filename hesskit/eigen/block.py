"""Block thick-restart Lanczos: every copy of a repeated eigenvalue, up to the block size.

A single-vector Krylov space holds one direction of each eigenspace (in exact arithmetic
a multiple eigenvalue is seen once), so ``eigsh`` may return a triple eigenvalue as one or
two copies and still report convergence: each returned pair is a true eigenpair, the
missing copies are simply invisible. A block Krylov space started from ``b`` independent
vectors holds up to ``b`` directions of each eigenspace, so every copy of an eigenvalue of
multiplicity ``<= b`` is found (Golub and Underwood 1977, "The block Lanczos method for
computing eigenvalues"; thick restart as in Zhou and Saad 2008, "Block Krylov-Schur
method for large symmetric eigenvalue problems", Numer. Algorithms 47). Hessians of
class-symmetric problems have near-degenerate outliers, and outlier counts depend on them.

The implementation keeps the products ``W = A V`` next to the orthonormal basis ``V`` and
does the Rayleigh-Ritz step on ``T = V^T W`` explicitly. That costs a second ``(n, ncv)``
array but makes the residual norms ``||A x - theta x||`` exact (from the products, at no
extra product), and the restart a change of basis of both arrays. Each block step takes
one ``op.matmat`` of ``b`` columns (so a GPU sees blocks), extends the basis by the
block-Lanczos recurrence with full reorthogonalisation (classical Gram-Schmidt twice),
and continues with random directions where the block loses rank.
"""

from __future__ import annotations

import numpy as np
import torch

from hesskit.eigen.krylov import is_rounding
from hesskit.eigen.result import EigenResult, certifiable, wanted_order
from hesskit.operators.base import LinearOperator
from hesskit.progress import Callback


def block_lanczos(
    op: LinearOperator,
    start: torch.Tensor,
    k: int,
    which: str,
    tol: float,
    ncv: int,
    budget: int,
    generator: torch.Generator,
    report: Callback,
) -> EigenResult:
    """Block thick-restart Lanczos from the ``(n, b)`` block ``start`` (validated by eigsh).

    ``ncv`` is the largest basis (columns), ``budget`` the most operator columns, and
    ``report(used, budget)`` is called after every block product. After a
    restart the ``keep = min(k + (ncv - k) // 2, ncv - b)`` most wanted Ritz vectors stay.

    Returns:
        The :class:`~hesskit.EigenResult` of the ``k`` most wanted Ritz pairs, once they
        converge, the budget is spent or the basis spans the whole space.
    """
    n, b = start.shape
    basis = start.new_zeros(n, ncv)
    images = start.new_zeros(n, ncv)
    projection = np.zeros((ncv, ncv))
    block = _orthonormal_block(start, basis[:, :0], generator)
    size, used, scale = 0, 0, 0.0
    keep = max(k, min(k + (ncv - k) // 2, ncv - b))
    while True:
        width = min(block.shape[1], ncv - size, budget - used)
        block = block[:, :width]
        product = op.matmat(block)
        used += width
        report(used, budget)
        basis[:, size : size + width] = block
        images[:, size : size + width] = product
        couplings = (basis[:, : size + width].mT @ product).cpu().double().numpy()
        projection[: size + width, size : size + width] = couplings
        projection[size : size + width, : size + width] = couplings.T
        size += width
        values, vectors = _rayleigh_ritz(projection[:size, :size], which)
        scale = max(scale, float(np.abs(values).max()))
        wanted = _on(basis, vectors[:, :k])
        ritz = basis[:, :size] @ wanted
        residual_vectors = images[:, :size] @ wanted - ritz * _on(basis, values[:k])
        norms = torch.linalg.vector_norm(residual_vectors, dim=0)
        residuals = certifiable(norms, scale, op.product_dtype)
        converged = bool((residuals <= tol * scale).all())
        if converged or used >= budget or size == n:
            return EigenResult(_on(basis, values[:k]), ritz, residuals, used, converged, tol)
        block = _orthonormal_block(product, basis[:, :size], generator)
        if size + min(b, n - size) > ncv:
            size = _thick_restart(basis, images, projection, values, vectors, keep)


def _rayleigh_ritz(projection: np.ndarray, which: str) -> tuple[np.ndarray, np.ndarray]:
    """Ritz values and vectors of the symmetrised projection, most wanted first.

    Returns:
        ``(values, vectors)``: the eigenvalues and eigenvectors (columns) of the projection.
    """
    values, vectors = np.linalg.eigh((projection + projection.T) / 2)
    order = wanted_order(values, which)
    return values[order], vectors[:, order]


def _on(like: torch.Tensor, array: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(array, dtype=like.dtype, device=like.device)


def _orthonormal_block(
    block: torch.Tensor, basis: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """``block`` made orthonormal and orthogonal to ``basis`` (CGS2, then QR).

    Columns that are (numerically) in the span already are replaced by random directions.

    Returns:
        An ``(n, c)`` tensor of orthonormal columns orthogonal to ``basis``, with ``c`` at
        most the width of ``block`` and the room left in the space.
    """
    width = block.shape[1]
    room = block.shape[0] - basis.shape[1]
    eps = torch.finfo(block.dtype).eps
    before = torch.linalg.vector_norm(block, dim=0)
    block = _orthogonalised(block, basis)
    after = torch.linalg.vector_norm(block, dim=0)
    # the shared breakdown test (nothing of the recurrence was removed first, so only its
    # absolute part applies): a column left at rounding level of its own norm is lost
    lost = is_rounding(after, torch.zeros_like(after), before, n=block.shape[0], eps=eps)
    if bool(lost.any()):
        shape = (block.shape[0], int(lost.sum()))
        fresh = torch.randn(shape, generator=generator, dtype=block.dtype, device=block.device)
        block[:, lost] = _orthogonalised(fresh, basis)
    block = block / torch.linalg.vector_norm(block, dim=0)
    q, r = torch.linalg.qr(block)
    # columns still dependent after QR (parallel to another of the block) are dropped
    independent = r.diagonal().abs() > 1e3 * eps
    return q[:, independent][:, : min(width, room)]


def _orthogonalised(block: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """``block`` minus its components along the orthonormal ``basis``, twice (CGS2).

    Returns:
        A tensor of the shape of ``block``.
    """
    for _ in range(2):
        block = block - basis @ (basis.mT @ block)
    return block


def _thick_restart(
    basis: torch.Tensor,
    images: torch.Tensor,
    projection: np.ndarray,
    values: np.ndarray,
    vectors: np.ndarray,
    keep: int,
) -> int:
    """Keep the ``keep`` most wanted Ritz vectors and their products.

    Returns:
        ``keep``, the size of the restarted basis.
    """
    size = vectors.shape[0]
    combination = _on(basis, vectors[:, :keep])
    basis[:, :keep] = basis[:, :size] @ combination
    images[:, :keep] = images[:, :size] @ combination
    projection[:] = 0.0
    projection[:keep, :keep] = np.diag(values[:keep])
    return keep
