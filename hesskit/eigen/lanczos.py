"""Thick-restart Lanczos with full reorthogonalisation for a few extreme eigenpairs.

Lanczos builds an orthonormal basis ``V`` of a Krylov space and the small symmetric
matrix ``T = V^T A V``, whose eigenpairs (Ritz pairs) approximate extreme eigenpairs of
``A``. Every new vector is reorthogonalised against the whole basis with classical
Gram-Schmidt applied twice (CGS2, "twice is enough"), so the basis stays orthonormal to
rounding and no spurious copies of eigenvalues appear. When the basis is full, the thick
restart of Wu & Simon (2000) keeps the wanted Ritz vectors plus extra ones and continues;
``T`` then has an arrowhead block instead of being tridiagonal, and the factorisation
``A V_m = V_m T_m + beta_m f e_m^T`` is preserved.
"""

from __future__ import annotations

from typing import Any

import torch

from hesskit import _checks
from hesskit.eigen.result import EigenResult, default_tol
from hesskit.operators.base import LinearOperator, as_operator


def eigsh(
    op: LinearOperator | torch.Tensor,
    k: int,
    *,
    which: str = "LA",
    tol: float | None = None,
    ncv: int | None = None,
    max_matvecs: int | None = None,
    v0: torch.Tensor | None = None,
    generator: torch.Generator | int | None = None,
) -> EigenResult:
    """k extreme eigenpairs of a symmetric operator by thick-restart Lanczos.

    The Krylov method for the top (or bottom) of a Hessian spectrum: it needs only
    products with ``op``, and for the same accuracy it applies far fewer of them than power
    iteration with deflation, because one Krylov space serves all k pairs and its
    polynomial filter converges like the square root of the relative gap. The basis is
    fully reorthogonalised (CGS2) and restarted as in K. Wu and H. Simon, "Thick-restart
    Lanczos method for large symmetric eigenvalue problems", SIAM J. Matrix Anal. Appl.
    22(2), 2000: the ``k`` wanted Ritz vectors plus ``(ncv - k) // 2`` more of the next
    wanted ones are kept. Convergence is decided once per restart on the Lanczos residual
    estimates ``|beta_m s_{m,i}|``; the returned residuals are then recomputed exactly with
    one product of the k Ritz vectors. A breakdown (an invariant subspace, ``beta ~ 0``)
    continues with a random vector orthogonal to the basis, so each step draws one.

    Single-vector Krylov methods see one direction of each eigenspace: an eigenvalue of
    multiplicity > 1 among the wanted ones may be returned once (each returned pair is
    still a true eigenpair to its residual); use ``ncv = n`` or a block method if that
    matters.

    Args:
        op: symmetric operator (or square tensor) of size n.
        k: number of eigenpairs, ``1 <= k < n``.
        which: "LA" largest algebraic (returned descending), "SA" smallest algebraic
            (ascending) or "LM" largest magnitude (descending ``|lambda|``).
        tol: relative residual tolerance: stop when every ``||A v - lambda v||`` is at most
            ``tol * max |Ritz value|``. Default ``eps ** (2/3)`` of the dtype (3.7e-11 for
            float64, 2.4e-5 for float32).
        ncv: basis size, ``k < ncv <= n``; default ``min(n, max(2k + 1, 20))`` like SciPy.
            With ``ncv == n`` the answer is exact after n steps.
        max_matvecs: budget of operator columns; default ``max(1000, 50 * ncv)``. Lanczos
            steps use ``max(max_matvecs - k, k)`` of it and the final residual product k,
            so ``num_matvecs <= max(max_matvecs, 2k)``. When spent, the current Ritz pairs
            are returned with ``converged=False``.
        v0: start vector of shape ``(n,)``, nonzero, on the operator's dtype and device;
            default a standard normal draw from ``generator``. As in any Krylov method, a
            ``v0`` orthogonal to a wanted eigenvector hides it.
        generator: ``torch.Generator``, int seed or None (seed 0): the same seed gives
            bitwise the same result.

    Returns:
        An :class:`EigenResult`; ``num_matvecs`` counts every Lanczos step plus the k
        columns of the final residual product.

    Raises:
        TypeError: ``op`` is not an operator or tensor; ``k``, ``ncv`` or ``max_matvecs``
            is not an int; ``tol`` is not a number; ``v0`` is not a tensor or has the wrong
            dtype; ``generator`` has the wrong type.
        ValueError: ``op`` is not square; ``k`` is not in ``[1, n)``; ``which`` is unknown;
            ``tol <= 0``; ``ncv`` is not in ``(k, n]``; ``max_matvecs < 1``; ``v0`` has
            the wrong shape or device, or is zero.

    Example:
        >>> import torch
        >>> from hesskit.eigen import eigsh
        >>> A = torch.diag(torch.arange(1.0, 41.0, dtype=torch.float64))
        >>> result = eigsh(A, 3)
        >>> result.eigenvalues.round(decimals=8)
        tensor([40., 39., 38.], dtype=torch.float64)
        >>> result.converged
        True
    """
    op = as_operator(op)
    n = op.shape[0]
    k = _checks.check_k(k, n)
    which = _checks.check_which(which)
    if ncv is None:
        ncv = min(n, max(2 * k + 1, 20))
    ncv = _checks.check_int_in_range("ncv", ncv, low=k + 1, high=n)
    tol = default_tol(op.dtype) if tol is None else _checks.check_positive_float("tol", tol)
    if max_matvecs is None:
        max_matvecs = max(1000, 50 * ncv)
    max_matvecs = _checks.check_int_in_range("max_matvecs", max_matvecs, low=1)
    gen = _checks.make_generator(generator, op.device)
    start = initial_vector(v0, op, gen)
    return _thick_restart_lanczos(op, start, k, which, tol, ncv, max(max_matvecs - k, k), gen)


def initial_vector(v0: Any, op: LinearOperator, generator: torch.Generator) -> torch.Tensor:
    """The validated ``v0``, or a standard normal vector from ``generator`` if it is None."""
    n = op.shape[0]
    if v0 is None:
        return torch.randn(n, generator=generator, dtype=op.dtype, device=op.device)
    return _checks.check_start_vector("v0", v0, n=n, dtype=op.dtype, device=op.device)


def _thick_restart_lanczos(
    op: LinearOperator,
    start: torch.Tensor,
    k: int,
    which: str,
    tol: float,
    ncv: int,
    budget: int,
    generator: torch.Generator,
) -> EigenResult:
    """Lanczos cycles of ``ncv`` columns with thick restarts until converged or spent."""
    n = op.shape[0]
    basis = start.new_zeros(n, ncv + 1)
    proj = start.new_zeros(ncv + 1, ncv + 1)
    basis[:, 0] = start / torch.linalg.vector_norm(start)
    scale = start.new_zeros(())
    begin, used = 0, 0
    while True:
        stop = min(ncv, begin + budget - used)
        _lanczos_steps(op, basis, proj, begin, stop, generator)
        used += stop - begin
        theta, ritz = torch.linalg.eigh(proj[:stop, :stop])
        order = _wanted_order(theta, which)
        scale = torch.maximum(scale, theta.abs().max())
        estimates = (proj[stop, stop - 1] * ritz[stop - 1, order[:k]]).abs()
        if used >= budget or stop == n or bool((estimates <= tol * scale).all()):
            break
        begin = _thick_restart(basis, proj, theta, ritz, order[: k + (ncv - k) // 2])
    vectors = basis[:, :stop] @ ritz[:, order[:k]]
    return _result(op, vectors, theta[order[:k]], scale, tol, used)


def _lanczos_steps(
    op: LinearOperator,
    basis: torch.Tensor,
    proj: torch.Tensor,
    start: int,
    stop: int,
    generator: torch.Generator,
) -> None:
    """Extend the Lanczos factorisation in place from ``start`` to ``stop`` columns.

    On entry ``basis[:, :start + 1]`` is orthonormal and ``proj[:start + 1, :start + 1]``
    holds its projection. On exit ``A V = V T + beta f e^T`` with ``V = basis[:, :stop]``,
    ``T = proj[:stop, :stop]``, ``beta = proj[stop, stop - 1]`` and ``f = basis[:, stop]``.
    """
    for j in range(start, stop):
        _lanczos_step(op, basis, proj, j, generator)


def _lanczos_step(
    op: LinearOperator,
    basis: torch.Tensor,
    proj: torch.Tensor,
    j: int,
    generator: torch.Generator,
) -> None:
    """One Lanczos step: column ``j + 1`` of the basis and column ``j`` of ``T``.

    A random candidate is orthogonalised alongside ``A v_j`` (one extra column in the same
    block products) and replaces it on breakdown, without a host synchronisation.
    """
    image = op.matmat(basis[:, j : j + 1])
    fresh = torch.randn(image.shape, generator=generator, dtype=image.dtype, device=image.device)
    block, coeffs = _cgs2(basis[:, : j + 1], torch.cat([image, fresh], dim=1))
    norms = torch.linalg.vector_norm(block, dim=0).clamp_min(torch.finfo(block.dtype).tiny)
    broke = norms[0] <= torch.finfo(block.dtype).eps * torch.linalg.vector_norm(image)
    beta = torch.where(broke, 0.0, norms[0])
    basis[:, j + 1] = torch.where(broke, block[:, 1] / norms[1], block[:, 0] / norms[0])
    proj[j, j] = coeffs[j, 0]
    proj[j + 1, j] = beta
    proj[j, j + 1] = beta


def _cgs2(basis: torch.Tensor, block: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Classical Gram-Schmidt twice: ``block`` made orthogonal to ``basis``, and the
    coefficients removed (``basis^T block`` to rounding)."""
    coeffs = basis.mT @ block
    block = block - basis @ coeffs
    correction = basis.mT @ block
    return block - basis @ correction, coeffs + correction


def _wanted_order(theta: torch.Tensor, which: str) -> torch.Tensor:
    """Indices of the Ritz values, most wanted first (ties keep eigh's order)."""
    if which == "LA":
        return torch.argsort(theta, descending=True, stable=True)
    if which == "SA":
        return torch.argsort(theta, stable=True)
    return torch.argsort(theta.abs(), descending=True, stable=True)


def _thick_restart(
    basis: torch.Tensor,
    proj: torch.Tensor,
    theta: torch.Tensor,
    ritz: torch.Tensor,
    keep: torch.Tensor,
) -> int:
    """Restart in place on the kept Ritz vectors (Wu & Simon 2000); return their number.

    The new basis is ``[V y_1, ..., V y_l, f]`` and the new ``T`` is
    ``diag(theta_1..theta_l)`` bordered by the couplings ``beta_m s_{m,i}`` to ``f``.
    """
    m, size = ritz.shape[0], keep.numel()
    coupling = proj[m, m - 1] * ritz[m - 1, keep]
    basis[:, :size] = basis[:, :m] @ ritz[:, keep]
    basis[:, size] = basis[:, m]
    proj.zero_()
    proj[:size, :size] = torch.diag(theta[keep])
    proj[size, :size] = coupling
    proj[:size, size] = coupling
    return size


def _result(
    op: LinearOperator,
    vectors: torch.Tensor,
    values: torch.Tensor,
    scale: torch.Tensor,
    tol: float,
    used: int,
) -> EigenResult:
    """Package Ritz pairs with true residuals from one product with the k vectors."""
    residuals = torch.linalg.vector_norm(op.matmat(vectors) - vectors * values, dim=0)
    converged = bool((residuals <= tol * scale).all())
    return EigenResult(values, vectors, residuals, used + values.numel(), converged, tol)
