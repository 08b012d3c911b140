"""Thick-restart Lanczos with full reorthogonalisation for a few extreme eigenpairs.

Lanczos builds an orthonormal basis ``V`` of a Krylov space and the small symmetric
matrix ``T = V^T A V``, whose eigenpairs (Ritz pairs) approximate extreme eigenpairs of
``A``. Every new vector has its known large components (the three-term recurrence)
removed and is then reorthogonalised against the whole basis by one classical Gram-Schmidt
pass, so the basis stays orthonormal to rounding and no spurious copies of eigenvalues
appear. When the basis is full, the thick
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
    fully reorthogonalised and restarted as in K. Wu and H. Simon, "Thick-restart
    Lanczos method for large symmetric eigenvalue problems", SIAM J. Matrix Anal. Appl.
    22(2), 2000: the ``k`` wanted Ritz vectors plus ``(ncv - k) // 2`` more of the next
    wanted ones are kept. Convergence is decided once per restart on the Lanczos residual
    estimates ``|beta_m s_{m,i}|``; the returned residuals are then recomputed exactly with
    one product of the k Ritz vectors. A breakdown (an invariant subspace, ``beta ~ 0``)
    continues with a random vector from ``generator``, orthogonal to the basis.

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
    # The basis is stored one vector per row (``rows``) and used through its (n, ncv + 1)
    # view: every pass over it (projections, restarts) then reads contiguous memory.
    rows = start.new_zeros(ncv + 1, n)
    basis = rows.mT
    proj = start.new_zeros(ncv + 1, ncv + 1)
    rows[0] = start / torch.linalg.vector_norm(start)
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
    vectors = (ritz[:, order[:k]].mT @ rows[:stop]).mT
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
        _lanczos_step(op, basis.mT, proj, j, start, generator)


def _lanczos_step(
    op: LinearOperator,
    rows: torch.Tensor,
    proj: torch.Tensor,
    j: int,
    start: int,
    generator: torch.Generator,
) -> None:
    """One Lanczos step: basis vector ``j + 1`` (row ``j + 1`` of ``rows``) and column ``j``
    of ``T``.

    The components of ``A v_j`` that are already known (``beta_{j-1} v_{j-1}``, or the
    couplings to the kept Ritz vectors on the first step after a restart) and
    ``alpha_j v_j`` are removed first; one classical Gram-Schmidt pass against the whole
    basis then removes what rounding left (full reorthogonalisation, Parlett 1998, sec.
    13.8), so each step reads the basis twice (classical Gram-Schmidt twice, CGS2, would
    read it four times). A random vector is drawn only on breakdown.
    """
    image = op.matmat(rows[j].unsqueeze(1))[:, 0]
    if j > start:
        image = torch.addcmul(image, proj[j - 1, j], rows[j - 1], value=-1)
    elif j > 0:  # first step after a thick restart: the arrowhead couplings
        image = torch.addmv(image, rows[:j].mT, proj[:j, j], alpha=-1)
    alpha = rows[j] @ image
    image = torch.addcmul(image, alpha, rows[j], value=-1)
    coeffs = rows[: j + 1] @ image
    image = torch.addmv(image, rows[: j + 1].mT, coeffs, alpha=-1)
    beta = torch.linalg.vector_norm(image)
    proj[j, j] = alpha + coeffs[j]
    # What is left of A v_j is a new direction (beta_j) plus rounding along the basis; one
    # pass removes the rounding unless beta_j is no larger than it (the criterion of Daniel,
    # Gragg, Kaufman and Stewart 1976, ||after|| <= ||before|| / 2, with ||before||^2 =
    # ||after||^2 + ||coeffs||^2): then beta_j is at rounding level, so it is set to 0 (an
    # invariant subspace) and a random direction continues the basis. The test is one host
    # synchronisation per step; every operator product already makes one.
    if bool(3 * beta.square() <= coeffs.square().sum()):
        beta = torch.zeros_like(beta)
        image = _random_direction(rows[: j + 1], generator)
    else:
        image = image / beta
    rows[j + 1] = image
    proj[j + 1, j] = beta
    proj[j, j + 1] = beta


def _random_direction(rows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random unit vector orthogonal to the orthonormal ``rows`` (Gram-Schmidt twice)."""
    vector = torch.randn(rows.shape[1], generator=generator, dtype=rows.dtype, device=rows.device)
    for _ in range(2):
        vector = torch.addmv(vector, rows.mT, rows @ vector, alpha=-1)
    norm = torch.linalg.vector_norm(vector).clamp_min(torch.finfo(rows.dtype).tiny)
    return vector / norm


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
    rows = basis.mT
    rows[:size] = ritz[:, keep].mT @ rows[:m]
    rows[size] = rows[m]
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
