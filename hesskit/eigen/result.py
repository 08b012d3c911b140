"""The result of an eigensolver: Ritz pairs, residual norms, work done, convergence."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hesskit import _checks


def default_tol(dtype: torch.dtype) -> float:
    """The default relative residual tolerance for products in ``dtype``: ``eps ** (2/3)``.

    That is 3.7e-11 for float64, 2.4e-5 for float32, 9.9e-3 for float16 and 3.9e-2 for
    bfloat16: well above the rounding floor of a residual (about ``eps * ||A||`` times a
    small factor; measured 0.3 eps for a bf16 MLP's Hessian, ``tests/test_low_precision.py``),
    so it is reachable, and tight enough that eigenvalues are accurate to ``tol``
    (``tol**2 / gap`` when isolated). ``dtype`` is that of the products
    (:attr:`~hesskit.LinearOperator.product_dtype`), not of the Krylov basis.

    Returns:
        The tolerance, a float.
    """
    return float(torch.finfo(dtype).eps ** (2.0 / 3.0))


def checked_tol(tol: Any, dtype: torch.dtype) -> float:
    """``tol`` validated against the products' ``dtype`` (None: :func:`default_tol`).

    A relative residual below the rounding unit ``eps`` of the products cannot be computed, and the
    Lanczos relation's estimate of it keeps shrinking below the true residual, so such a
    ``tol`` would report convergence that no product can confirm (seen: ``tol=1e-300``
    "converged" on a float64 Hessian with an estimated residual of 0).

    Returns:
        ``tol`` as a float, or :func:`default_tol` of ``dtype`` when it is None.

    Raises:
        TypeError: if ``tol`` is not a number.
        ValueError: if ``tol <= 0`` or ``tol < eps`` of ``dtype``.
    """
    if tol is None:
        return default_tol(dtype)
    tol = _checks.check_positive_float("tol", tol)
    eps = torch.finfo(dtype).eps
    if tol < eps:
        msg = (
            f"tol must be at least the rounding unit of the operator's products ({dtype}: "
            f"{eps:.2g}): a smaller relative residual cannot be verified; got tol={tol:g}"
        )
        raise ValueError(msg)
    return tol


def certifiable(
    residuals: torch.Tensor, scale: float | torch.Tensor, product_dtype: torch.dtype | None = None
) -> torch.Tensor:
    """Residual norms raised to at least ``eps * scale``.

    ``scale`` is the largest |eigenvalue| estimate, or one per pair; ``eps`` is that of
    ``product_dtype``, the dtype of the products (default: that of ``residuals``). The
    floor is the rounding of an eigenpair itself, since every entry of ``lambda v``, and of
    a product ``A v``, carries a relative error of ``eps``. A residual reported below that
    (an exact 0 after a breakdown, or from a product that happened to cancel exactly)
    would claim more than the arithmetic can certify.

    Returns:
        ``max(residuals, eps * scale)``, on the device of ``residuals``.
    """
    eps = torch.finfo(residuals.dtype if product_dtype is None else product_dtype).eps
    floor = eps * torch.as_tensor(scale, dtype=residuals.dtype)
    return torch.maximum(residuals, floor.to(residuals.device))


@dataclass(frozen=True)
class EigenResult:
    """Approximate eigenpairs ``A v_i = lambda_i v_i`` of a symmetric operator."""

    eigenvalues: torch.Tensor
    """The k eigenvalue estimates (1-D), in the order the solver documents."""

    eigenvectors: torch.Tensor
    """The matching eigenvectors as the columns of an ``(n, k)`` tensor, orthonormal."""

    residuals: torch.Tensor
    """Residual norms ``||A v_i - lambda_i v_i||`` (1-D): from the products
    (``power_iteration``; ``eigsh`` with ``exact_residuals=True``) or from the Lanczos
    relation (``eigsh``'s default, equal to the former up to the rounding of the
    products; it includes what the recurrence dropped, so a breakdown does not report
    0). Never below ``eps`` times the largest |eigenvalue| (:func:`certifiable`)."""

    num_matvecs: int
    """Operator columns applied in all: a product with an ``(n, k)`` block counts k."""

    converged: bool
    """True when every residual is ``<= tol * scale``: scale is the largest |Ritz value|
    seen (``eigsh``) or each pair's own |eigenvalue| (``power_iteration``)."""

    tol: float
    """The relative residual tolerance that was used."""


def wanted_order(theta: np.ndarray, which: str) -> np.ndarray:
    """Indices of the Ritz values, most wanted first (ties keep eigh's order).

    Returns:
        An integer array of indices into ``theta``: descending for "LA", ascending for "SA",
        by descending magnitude for "LM".
    """
    if which == "LA":
        return np.argsort(-theta, kind="stable")
    if which == "SA":
        return np.argsort(theta, kind="stable")
    return np.argsort(-np.abs(theta), kind="stable")
