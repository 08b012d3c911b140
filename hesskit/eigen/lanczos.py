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

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch

from hesskit import _checks
from hesskit.eigen.block import block_lanczos
from hesskit.eigen.krylov import is_rounding, lanczos_extend, random_direction
from hesskit.eigen.result import EigenResult, certifiable, checked_tol, wanted_order
from hesskit.operators.base import LinearOperator, as_operator, in_work_dtype
from hesskit.progress import Callback, reporting

# Columns of the basis rewritten at a time by a thick restart (see _thick_restart).
_RESTART_CHUNK = 2**16


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
    exact_residuals: bool = False,
    block_size: int = 1,
    progress: bool | Callback | None = None,
    work_dtype: torch.dtype | None = None,
) -> EigenResult:
    """K extreme eigenpairs of a symmetric operator by thick-restart Lanczos.

    The Krylov method for the top (or bottom) of a Hessian spectrum: it needs only
    products with ``op``, and for the same accuracy it applies far fewer of them than power
    iteration with deflation, because one Krylov space serves all k pairs and its
    polynomial filter converges like the square root of the relative gap. The basis is
    fully reorthogonalised and restarted as in K. Wu and H. Simon, "Thick-restart
    Lanczos method for large symmetric eigenvalue problems", SIAM J. Matrix Anal. Appl.
    22(2), 2000: the ``k`` wanted Ritz vectors plus ``(ncv - k) // 2`` more of the next
    wanted ones are kept. Convergence is tested after every step on the residual norms that
    the Lanczos relation ``A V = V T + beta_m f e_m^T`` gives for free, ``|beta_m s_{m,i}|``
    (as ARPACK does); with full reorthogonalisation they equal the true residual norms up
    to the rounding of the products. ``exact_residuals=True`` recomputes them with one
    product of the k Ritz vectors (k more columns), which also exposes an operator whose
    products are not exactly linear and symmetric (float32 rounding; a model with
    nondeterministic kernels). A breakdown (an invariant subspace, ``beta ~ 0``)
    continues with a random vector from ``generator``, orthogonal to the basis.

    A single-vector Krylov space holds one direction of each eigenspace: an eigenvalue of
    multiplicity > 1 among the wanted ones may come back as fewer copies (a triple 10 as
    10, 10, then the next eigenvalue), with ``converged=True``: ``converged`` says that
    every returned pair is an eigenpair to ``tol``, not that no eigenvalue was missed,
    and ``ncv = n`` does not help (the Krylov space is invariant before the basis is
    full). ``block_size=b`` runs block thick-restart Lanczos (:mod:`hesskit.eigen.block`)
    instead, which finds every copy of an eigenvalue of multiplicity up to ``b``; its
    residuals are always computed from the products.

    Low precision: the products stay in the operator's dtype, the Krylov state (basis,
    projections, reorthogonalisation, ``T``, Ritz vectors) is kept in ``work_dtype``
    (float32 by default for a bf16 or fp16 operator; a bf16 basis loses its orthogonality
    within a few steps, and was seen to report a wrong eigenvalue as converged with a
    residual of 0). The Lanczos relation then certifies nothing beyond the products'
    rounding, so ``converged`` is decided on exact residuals (``exact_residuals`` is
    implied), ``tol`` defaults to ``eps ** (2/3)`` of the products' dtype and may not be
    below their ``eps``, and no residual is reported below ``eps * max |Ritz value|`` of
    that dtype. Measured on a bf16 MLP (``tests/test_low_precision.py``, 103 parameters):
    top-3 at the default tol took 16 products; the top two Ritz values agree with the
    float64 Hessian of the same weights to 2e-4 relative (0.03 bf16 ``eps``), their
    exact residuals against it are 0.3 ``eps``. At bf16's tol (0.039 of ``||A||``) an eigenvalue
    closer than that to a wanted one can be missed (there the third Ritz value was the
    fourth eigenvalue, 0.4577 being 0.0055 from the second); pass a smaller ``tol`` (down
    to ``eps``: ``tol=0.02`` found it) or ``block_size > 1``.

    Args:
        op: symmetric operator (or square tensor) of size n.
        k: number of eigenpairs, ``1 <= k < n``.
        which: "LA" largest algebraic (returned descending), "SA" smallest algebraic
            (ascending) or "LM" largest magnitude (descending ``|lambda|``).
        tol: relative residual tolerance: stop when every ``||A v - lambda v||`` is at most
            ``tol * max |Ritz value|``. Default ``eps ** (2/3)`` of the products' dtype
            (3.7e-11 for float64, 2.4e-5 for float32, 9.9e-3 for float16, 3.9e-2 for
            bfloat16).
        ncv: basis size, ``k < ncv <= n``; default ``min(n, max(2k + 1, 20))`` like SciPy.
            With ``ncv == n`` the answer is exact after n steps.
        max_matvecs: budget of operator columns; default ``max(1000, 50 * ncv)``. Lanczos
            steps use ``max(max_matvecs - k, k)`` of it when ``exact_residuals`` (the final
            residual product takes k), else ``max(max_matvecs, k)``; so ``num_matvecs <=
            max(max_matvecs, 2k)``. When spent, the current Ritz pairs are returned with
            ``converged=False``.
        v0: start vector of shape ``(n,)``, nonzero, of the operator's dtype (or
            ``work_dtype``) on its device;
            default a standard normal draw from ``generator``. As in any Krylov method, a
            ``v0`` orthogonal to a wanted eigenvector hides it.
        generator: ``torch.Generator``, int seed or None (seed 0): the same seed gives
            bitwise the same result.
        exact_residuals: recompute the residuals, and decide ``converged``, with one
            product of the k Ritz vectors instead of reading them off the Lanczos relation.
            (The block solver's residuals are exact already; it ignores this.)
        block_size: the number of vectors per Krylov step, ``1 <= b``; 1 is
            single-vector Lanczos, ``b > 1`` the block solver, one ``op.matmat`` of ``b``
            columns per step (``ncv`` then defaults to ``min(n, max(3k + b, k + 4b, 20))``,
            a larger basis than the single-vector default because a restart must leave
            room for several blocks: top-10 at b = 4 on the digits MLP W1 takes 76 products
            with it, 108 with ``2k + b``; ``ncv`` must be at least ``k + b``; ``v0``, if
            given, is the block's first column).
        progress: None, True (a tqdm bar) or a callable ``progress(done, total)`` called
            after every product with the columns applied and the budget
            (:mod:`hesskit.progress`); the run stops below the budget when it converges.
        work_dtype: the dtype of the Krylov state and of the result, ``torch.float32`` or
            ``torch.float64``; default float32 for a bf16 or fp16 operator, else the
            operator's dtype (:func:`hesskit.operators.base.in_work_dtype`).

    Returns:
        An :class:`EigenResult` in ``work_dtype``; ``num_matvecs`` counts every Lanczos
        step (plus the k columns of the final residual product when ``exact_residuals``).

    Raises:
        TypeError: ``op`` is not an operator or tensor; ``k``, ``ncv`` or ``max_matvecs``
            is not an int; ``tol`` is not a number; ``v0`` is not a tensor or has the wrong
            dtype; ``generator`` has the wrong type; ``exact_residuals`` is not a bool;
            ``progress`` is not None, a bool or a callable; ``work_dtype`` is not float32,
            float64 or None.
        ValueError: ``op`` is not square; ``k`` is not in ``[1, n)``; ``which`` is unknown;
            ``tol <= 0`` or below the products' ``eps``; ``work_dtype`` is less precise
            than the operator; ``ncv`` is not in ``(k, n]``;
            ``max_matvecs < 1``; ``v0`` has the wrong shape or device, or is zero.

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
    op = in_work_dtype(as_operator(op), work_dtype)
    n = op.shape[0]
    k = _checks.check_k(k, n)
    which = _checks.check_which(which)
    b = _checks.check_int_in_range("block_size", block_size, low=1, high=n - k)
    if ncv is None:
        ncv = min(n, max(2 * k + 1, 20) if b == 1 else max(3 * k + b, k + 4 * b, 20))
    ncv = _checks.check_int_in_range("ncv", ncv, low=k + b, high=n)
    tol = checked_tol(tol, op.product_dtype)
    if max_matvecs is None:
        max_matvecs = max(1000, 50 * ncv)
    max_matvecs = _checks.check_int_in_range("max_matvecs", max_matvecs, low=1)
    exact_residuals = _checks.check_bool("exact_residuals", exact_residuals)
    exact_residuals |= op.product_dtype != op.dtype
    gen = _checks.make_generator(generator, op.device)
    start = initial_vector(v0, op, gen)
    with reporting(progress, f"eigsh k={k}") as report:
        if b > 1:
            others = torch.randn(n, b - 1, generator=gen, dtype=op.dtype, device=op.device)
            block = torch.cat([start.unsqueeze(1), others], dim=1)
            budget = max(max_matvecs, k)
            return block_lanczos(op, block, k, which, tol, ncv, budget, gen, report)
        steps = max(max_matvecs - (k if exact_residuals else 0), k)
        wanted = Wanted(k, which, tol, ncv, steps, exact_residuals)
        state = LanczosState.starting_from(start, ncv)
        return _thick_restart_lanczos(op, state, wanted, gen, report)


def initial_vector(v0: Any, op: LinearOperator, generator: torch.Generator) -> torch.Tensor:
    """The validated ``v0``, or a standard normal vector from ``generator`` if it is None.

    Returns:
        An ``(n,)`` tensor of the operator's dtype on its device (a ``v0`` of the dtype of
        its products, as for a :class:`~hesskit.operators.base.WorkPrecision` view, is
        cast to it).

    Raises:
        TypeError: if ``v0`` is not a tensor, or of neither the operator's nor its
            products' dtype.
        ValueError: if ``v0`` does not have shape ``(n,)``, is not on the operator's device,
            or holds NaN, inf or only zeros.
    """
    n = op.shape[0]
    if v0 is None:
        return torch.randn(n, generator=generator, dtype=op.dtype, device=op.device)
    if isinstance(v0, torch.Tensor) and v0.dtype == op.product_dtype:
        v0 = v0.to(op.dtype)
    return _checks.check_start_vector("v0", v0, n=n, dtype=op.dtype, device=op.device)


@dataclass(frozen=True)
class Wanted:
    """What a thick-restart Lanczos run is asked for (validated by :func:`eigsh`)."""

    k: int
    which: str
    tol: float
    ncv: int
    budget: int
    """Lanczos steps (operator columns) at most."""
    exact_residuals: bool


@dataclass
class LanczosState:
    """The factorisation ``A V_m = V_m T_m + beta_m f e_m^T`` under construction.

    The basis is stored one vector per row and used through its ``(n, ncv + 1)`` view
    ``rows.mT``: every pass over it (projections, restarts) then reads contiguous memory.
    The projection ``T`` lives on the host in float64, where its ``eigh`` is cheaper than
    on a GPU.
    """

    rows: torch.Tensor
    """``(ncv + 1, n)``: the orthonormal basis, then the next Lanczos vector."""
    proj: np.ndarray
    """``(ncv + 1, ncv + 1)``: ``T`` (tridiagonal, with an arrowhead after a restart)."""
    defect: np.ndarray
    """``(ncv + 1,)``: the norm of what a breakdown dropped from each column of the
    relation (the rounding-level direction it replaced by a random one, and what the
    Gram-Schmidt pass removed there), 0 where the step extended the basis. Ritz residuals
    add ``sum_c defect_c |s_{c,i}|`` to ``|beta_m s_{m,i}|``: a Krylov space that is
    invariant to rounding has ``beta_m = 0``, and without the defect its Ritz pairs would
    report a residual of exactly 0 where the products certify only the rounding level."""
    begin: int = 0
    """The first step of the current cycle (the number of kept Ritz vectors)."""
    used: int = 0
    """Operator columns applied so far."""
    scale: float = 0.0
    """The running estimate of ``||A||`` of the breakdown test."""
    degenerate: bool = False
    """Whether a breakdown or a numerically invariant Krylov space was met."""

    @classmethod
    def starting_from(cls, start: torch.Tensor, ncv: int) -> LanczosState:
        """An empty factorisation whose first basis vector is ``start`` normalised.

        Returns:
            The state, with room for ``ncv + 1`` basis vectors.
        """
        rows = start.new_zeros(ncv + 1, start.shape[0])
        rows[0] = start / torch.linalg.vector_norm(start)
        return cls(rows, np.zeros((ncv + 1, ncv + 1)), np.zeros(ncv + 1))


def _thick_restart_lanczos(
    op: LinearOperator,
    state: LanczosState,
    wanted: Wanted,
    generator: torch.Generator,
    report: Callback,
) -> EigenResult:
    """Lanczos cycles of ``ncv`` columns with thick restarts until converged or spent.

    Convergence is tested after every step that extends the Krylov space, so no product
    is spent once the wanted pairs have converged; a cycle that has not converged restarts
    when its basis is full. Once a step has broken down or left ``beta_m`` below
    ``tol * scale`` (a numerically invariant Krylov space, where every Ritz pair looks
    converged), the test waits for full bases: the fresh directions that continue the
    basis can still reveal further copies of a repeated eigenvalue.

    Returns:
        The :class:`~hesskit.EigenResult` of the ``k`` most wanted Ritz pairs; with
        ``exact_residuals``, residuals from one more block product.
    """
    n, k, tol = op.shape[0], wanted.k, wanted.tol
    total = wanted.budget + (k if wanted.exact_residuals else 0)
    ritz_scale = 0.0
    while True:
        stop = min(wanted.ncv, state.begin + wanted.budget - state.used)
        for size in range(state.begin + 1, stop + 1):
            state.degenerate |= not _lanczos_step(op, state, size - 1, generator)
            state.used += 1
            report(state.used, total)
            if size < stop and (state.degenerate or size < k):
                continue
            pairs = _ritz_pairs(state.proj, size, wanted.which, state.defect)
            ritz_scale = max(ritz_scale, float(np.abs(pairs.values).max()))
            state.degenerate |= pairs.beta <= tol * ritz_scale
            converged = bool((pairs.residuals[:k] <= tol * ritz_scale).all())
            if converged and (size == stop or not state.degenerate):
                break
        if converged or state.used >= wanted.budget or size == n:
            break
        keep = k + (wanted.ncv - k) // 2
        state.begin = _thick_restart(state.rows, state.proj, pairs, keep, state.defect)
    rows = state.rows
    values = _on(rows, pairs.values[:k])
    vectors = (_on(rows, pairs.vectors[:, :k]).mT @ rows[:size]).mT
    if not wanted.exact_residuals:
        residuals = certifiable(_on(rows, pairs.residuals[:k]), ritz_scale, op.product_dtype)
        return EigenResult(values, vectors, residuals, state.used, converged, tol)
    residuals = torch.linalg.vector_norm(op.matmat(vectors) - vectors * values, dim=0)
    residuals = certifiable(residuals, ritz_scale, op.product_dtype)
    report(state.used + k, total)
    converged = bool((residuals <= tol * ritz_scale).all())
    return EigenResult(values, vectors, residuals, state.used + k, converged, tol)


class _RitzPairs(NamedTuple):
    """Ritz pairs of the projection, most wanted first (host arrays, float64)."""

    values: np.ndarray
    """Ritz values ``theta_i``."""
    vectors: np.ndarray
    """Eigenvectors ``s_i`` of the projection as columns, so ``V s_i`` is a Ritz vector."""
    residuals: np.ndarray
    """Their residual norms from the Lanczos relation, ``|beta_m s_{m,i}|``, plus what the
    recurrence dropped, ``sum_c defect_c |s_{c,i}|`` (:class:`LanczosState`)."""
    beta: float
    """``|beta_m|``, the coupling of the basis to the next Lanczos vector."""


def _ritz_pairs(proj: np.ndarray, size: int, which: str, defect: np.ndarray) -> _RitzPairs:
    """Ritz pairs of the leading ``size`` square of the projection.

    Returns:
        The Ritz values and vectors (in the basis' coordinates), most wanted first, their
        residual estimates (``|beta_m s_m| + defect``) and ``beta_m``.
    """
    theta, ritz = np.linalg.eigh(proj[:size, :size])
    order = wanted_order(theta, which)
    theta, ritz = theta[order], ritz[:, order]
    beta = abs(float(proj[size, size - 1]))
    residuals = beta * np.abs(ritz[size - 1]) + defect[:size] @ np.abs(ritz)
    return _RitzPairs(theta, ritz, residuals, beta)


def _on(rows: torch.Tensor, array: np.ndarray) -> torch.Tensor:
    """A host array as a tensor on the basis' device and dtype.

    Returns:
        A tensor of the values of ``array``.
    """
    return torch.as_tensor(array, dtype=rows.dtype, device=rows.device)


def _lanczos_step(
    op: LinearOperator,
    state: LanczosState,
    j: int,
    generator: torch.Generator,
) -> bool:
    """One Lanczos step (:func:`hesskit.eigen.krylov.lanczos_extend`).

    It writes basis vector ``j + 1`` (row ``j + 1`` of ``state.rows``) and column ``j`` of
    ``T``; after a breakdown a random direction orthogonal to the basis continues it.

    One host synchronisation per step (every operator product already makes one).

    Returns:
        True if the step extended the Krylov space; False if it broke down.
    """
    rows, proj, start = state.rows, state.proj, state.begin
    product = op.matmat(rows[j].unsqueeze(1)).mT
    previous = float(proj[j - 1, j]) if j > start else None
    couplings = _on(rows, proj[:j, j]).unsqueeze(0) if start == j > 0 else None
    step = lanczos_extend(product, rows.unsqueeze(0), j, previous=previous, couplings=couplings)
    diagonal, norm, removed = torch.cat([step.diagonal, step.beta, step.removed]).tolist()
    state.scale = max(state.scale, abs(diagonal) + norm)
    eps = torch.finfo(rows.dtype).eps
    extended = not is_rounding(norm, removed, state.scale, n=rows.shape[1], eps=eps)
    if extended:
        torch.div(step.image[0], norm, out=rows[j + 1])
    else:
        state.defect[j] = math.hypot(norm, removed)
        norm = 0.0
        rows[j + 1] = random_direction(rows[: j + 1], generator)
    proj[j, j] = diagonal
    proj[j + 1, j] = proj[j, j + 1] = norm
    return extended


def _thick_restart(
    rows: torch.Tensor, proj: np.ndarray, pairs: _RitzPairs, keep: int, defect: np.ndarray
) -> int:
    """Restart in place on the ``keep`` most wanted Ritz vectors (Wu & Simon 2000).

    The new basis is ``[V y_1, ..., V y_l, f]`` (stored as ``rows``) and the new ``T`` is
    ``diag(theta_1..theta_l)`` bordered by the couplings ``beta_m s_{m,i}`` to ``f``; the
    kept columns inherit the dropped parts of the relation, ``defect_i = sum_c defect_c
    |y_{c,i}|``.

    Returns:
        ``keep``, the number of Ritz vectors kept; ``f`` is row ``keep`` of ``rows``, where
        the next step starts.
    """
    m = pairs.vectors.shape[0]
    ritz = pairs.vectors[:, :keep]
    combination = _on(rows, ritz).mT
    # In column chunks, so that the temporary stays small: a fresh (keep, n) temporary
    # page-faults on every restart (measured on one CPU thread at n = 1e6: 60 ms for the
    # whole basis at once, 19 ms in chunks).
    for chunk in range(0, rows.shape[1], _RESTART_CHUNK):
        columns = slice(chunk, chunk + _RESTART_CHUNK)
        rows[:keep, columns] = combination @ rows[:m, columns]
    rows[keep] = rows[m]
    defect[:keep] = defect[:m] @ np.abs(ritz)
    defect[keep:] = 0.0
    coupling = proj[m, m - 1] * ritz[m - 1]
    proj[:] = 0.0
    proj[:keep, :keep] = np.diag(pairs.values[:keep])
    proj[keep, :keep] = proj[:keep, keep] = coupling
    return keep
