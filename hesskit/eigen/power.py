"""Power iteration with deflation: the baseline of PyHessian and hessian-eigenthings."""

from __future__ import annotations

import torch

from hesskit import _checks
from hesskit.eigen.lanczos import initial_vector
from hesskit.eigen.result import EigenResult, certifiable, checked_tol
from hesskit.operators.base import LinearOperator, as_operator, in_work_dtype


def power_iteration(
    op: LinearOperator | torch.Tensor,
    k: int,
    *,
    tol: float | None = None,
    max_matvecs: int | None = None,
    v0: torch.Tensor | None = None,
    generator: torch.Generator | int | None = None,
    work_dtype: torch.dtype | None = None,
) -> EigenResult:
    """K largest-magnitude eigenpairs, one at a time, by power iteration with deflation.

    The baseline that PyHessian (Yao et al., 2020) and hessian-eigenthings (Golmant, 2018)
    use for the top of a Hessian spectrum, kept to measure :func:`hesskit.eigen.eigsh`
    against. Pair i iterates ``v <- A v / ||A v||`` with Hotelling deflation of the pairs
    already found, applied as PyHessian does by orthogonalising each iterate against their
    eigenvectors (the deflated operator ``A - sum_j lambda_j v_j v_j^T`` restricted to
    their complement), so the returned columns are orthonormal. A pair stops when its
    relative residual ``||A v - lambda v|| / |lambda|`` reaches ``tol`` (the residual, not
    the change of the eigenvalue, is tested) or its share of the budget is spent. Its
    convergence rate is ``|lambda_{i+1} / lambda_i|`` per product, so slowly decaying
    spectra need many products.

    Args:
        op: symmetric operator (or square tensor) of size n.
        k: number of eigenpairs, ``1 <= k < n``.
        tol: relative residual tolerance per pair; default ``eps ** (2/3)`` of the
            products' dtype (3.7e-11 for float64, 2.4e-5 for float32, 9.9e-3 for float16,
            3.9e-2 for bfloat16); not below their ``eps``.
        max_matvecs: budget of operator columns, default ``1000 * k``. Pair i may use the
            unspent budget divided by the pairs left (at least one product), so
            ``num_matvecs <= max(max_matvecs, k)``.
        v0: start vector ``(n,)`` for the first pair (nonzero, operator's dtype and device);
            the others, and the first by default, start from normal draws of ``generator``.
        generator: ``torch.Generator``, int seed or None (seed 0).
        work_dtype: the dtype of the iterates, the deflation and the result, as in
            :func:`hesskit.eigen.eigsh` (float32 by default for a bf16 or fp16 operator,
            whose products stay in its dtype; residuals are never reported below the
            products' rounding).

    Returns:
        An :class:`EigenResult` in ``work_dtype``, sorted by descending ``|lambda|``. Each
        residual is the true ``||A v - lambda v||`` of the returned pair, taken from the
        product that gave its Rayleigh quotient, so ``num_matvecs`` is exactly the number
        of products.

    Raises:
        TypeError: ``op`` is not an operator or tensor; ``k`` or ``max_matvecs`` is not an
            int; ``tol`` is not a number; ``v0`` is not a tensor or has the wrong dtype;
            ``generator`` has the wrong type; ``work_dtype`` is not float32, float64 or None.
        ValueError: ``op`` is not square; ``k`` is not in ``[1, n)``; ``tol <= 0`` or below
            the products' ``eps``; ``max_matvecs < 1``; ``v0`` has the wrong shape or device,
            or is zero; ``work_dtype`` is less precise than the operator.

    Example:
        >>> import torch
        >>> from hesskit.eigen import power_iteration
        >>> A = torch.diag(torch.tensor([4.0, -2.0, 1.0, 0.5], dtype=torch.float64))
        >>> power_iteration(A, 2).eigenvalues.round(decimals=6)
        tensor([ 4., -2.], dtype=torch.float64)
    """
    op = in_work_dtype(as_operator(op), work_dtype)
    k = _checks.check_k(k, op.shape[0])
    tol = checked_tol(tol, op.product_dtype)
    if max_matvecs is None:
        max_matvecs = 1000 * k
    max_matvecs = _checks.check_int_in_range("max_matvecs", max_matvecs, low=1)
    gen = _checks.make_generator(generator, op.device)
    first = initial_vector(v0, op, gen)
    found = first.new_zeros(op.shape[0], 0)
    pair_values: list[torch.Tensor] = []
    pair_residuals: list[torch.Tensor] = []
    used = 0
    for i in range(k):
        start = first if i == 0 else initial_vector(None, op, gen)
        share = max(1, (max_matvecs - used) // (k - i))
        value, vector, residual, steps = _one_pair(op, start, found, tol, share)
        found = torch.cat([found, vector.unsqueeze(1)], dim=1)
        pair_values.append(value)
        pair_residuals.append(residual)
        used += steps
    values = torch.stack(pair_values)
    residuals = certifiable(torch.stack(pair_residuals), values.abs(), op.product_dtype)
    converged = bool((residuals <= tol * values.abs()).all())
    order = torch.argsort(values.abs(), descending=True, stable=True)
    return EigenResult(values[order], found[:, order], residuals[order], used, converged, tol)


def _one_pair(
    op: LinearOperator,
    start: torch.Tensor,
    found: torch.Tensor,
    tol: float,
    budget: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Power iteration on the complement of ``found``: (value, vector, residual, steps).

    It stops on the residual of the deflated operator, ``||P A v - lambda v||`` with ``P``
    the projector on the complement: the part the iteration can reduce. The returned
    residual is the true ``||A v - lambda v||`` from the same product; it also holds the
    error inherited from the earlier pairs, ``||found^T A v||``.

    Returns:
        ``(value, vector, residual, steps)``: the eigenvalue estimate, the unit vector, the
        residual ``||A v - lambda v||`` and the number of products spent.
    """
    vector = _complement(start, found)
    vector = vector / torch.linalg.vector_norm(vector)
    steps = 0
    while True:
        image = op.matmat(vector.unsqueeze(1)).squeeze(1)
        steps += 1
        value = vector @ image
        deflated = _complement(image, found)
        done = bool(torch.linalg.vector_norm(deflated - value * vector) <= tol * value.abs())
        if done or steps == budget:
            return value, vector, torch.linalg.vector_norm(image - value * vector), steps
        norm = torch.linalg.vector_norm(deflated).clamp_min(torch.finfo(image.dtype).tiny)
        vector = deflated / norm


def _complement(vector: torch.Tensor, found: torch.Tensor) -> torch.Tensor:
    """``vector`` orthogonalised twice (CGS2) against the orthonormal columns of ``found``.

    Returns:
        A tensor of the shape of ``vector``.
    """
    for _ in range(2):
        vector = vector - found @ (found.mT @ vector)
    return vector
