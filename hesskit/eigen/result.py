"""The result of an eigensolver: Ritz pairs, residual norms, work done, convergence."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


def default_tol(dtype: torch.dtype) -> float:
    """The default relative residual tolerance for ``dtype``: ``eps ** (2/3)``.

    That is 3.7e-11 for float64 and 2.4e-5 for float32: well above the rounding floor of a
    residual (about ``eps * ||A||`` times a small factor), so it is reachable, and tight
    enough that eigenvalues are accurate to ``tol`` (``tol**2 / gap`` when isolated).
    """
    return float(torch.finfo(dtype).eps ** (2.0 / 3.0))


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
    products)."""

    num_matvecs: int
    """Operator columns applied in all: a product with an ``(n, k)`` block counts k."""

    converged: bool
    """True when every residual is ``<= tol * scale``: scale is the largest |Ritz value|
    seen (``eigsh``) or each pair's own |eigenvalue| (``power_iteration``)."""

    tol: float
    """The relative residual tolerance that was used."""


def wanted_order(theta: np.ndarray, which: str) -> np.ndarray:
    """Indices of the Ritz values, most wanted first (ties keep eigh's order)."""
    if which == "LA":
        return np.argsort(-theta, kind="stable")
    if which == "SA":
        return np.argsort(theta, kind="stable")
    return np.argsort(-np.abs(theta), kind="stable")
