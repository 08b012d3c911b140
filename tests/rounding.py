"""Tolerances from a rounding analysis that holds on any CPU.

A tolerance tuned to what one machine printed fails on another whose kernels sum in
another order (AVX-512 against AVX2, MKL's code paths on Intel against AMD): such a test
once allowed ``50 eps max|lambda|`` for a residual and failed on an AMD EPYC where the
true residual was ``3.2e-14``. The bounds here follow N. J. Higham, *Accuracy and
Stability of Numerical Algorithms*, 2nd ed., SIAM 2002: with the unit roundoff
``u = eps / 2`` and ``gamma_n = n u / (1 - n u)`` (Lemma 3.1), a computed product
satisfies ``|fl(A x) - A x| <= gamma_n |A| |x|`` entrywise (section 3.5), so for a unit
``x`` its error in the 2-norm is at most ``gamma_n || |A| ||_2``.
"""

from __future__ import annotations

import torch


def gamma(n: int, dtype: torch.dtype) -> float:
    """Higham's ``gamma_n = n u / (1 - n u)`` for the unit roundoff ``u`` of ``dtype``."""
    u = torch.finfo(dtype).eps / 2
    if n * u >= 1:
        msg = f"gamma_n is undefined for n u >= 1 (n={n}, u={u:g})"
        raise ValueError(msg)
    return n * u / (1 - n * u)


def product_error(matrix: torch.Tensor, terms: int | None = None) -> float:
    """A bound on ``||fl(A x) - A x||_2`` for a unit vector ``x``, with every entry an
    inner product of ``terms`` terms (default n): ``gamma_terms || |A| ||_2``.

    ``|| |A| ||_2 >= ||A||_2`` is computed exactly (in float64), so the bound does not
    rest on the spectrum of ``A`` being known to the test.
    """
    n = matrix.shape[-1]
    magnitude = float(torch.linalg.matrix_norm(matrix.double().abs(), ord=2))
    return gamma(n if terms is None else terms, matrix.dtype) * magnitude


def krylov_error(matrix: torch.Tensor, basis_size: int) -> float:
    """A bound on the rounding of a Ritz pair ``(theta, V s)`` from a basis of
    ``basis_size`` vectors, measured by a product: the product's own error (n terms), plus
    that of forming ``V s`` (``basis_size`` terms, each entry of norm at most one),
    carried through ``A``. The reported residual, the recomputed one and the eigenvalue
    error of a converged pair may each differ from exact arithmetic by this much.
    """
    n = matrix.shape[-1]
    return product_error(matrix, n + basis_size)


def orthogonality_error(n: int, basis_size: int, dtype: torch.dtype) -> float:
    """A bound on ``max |V^T V - I|`` for Ritz vectors ``V s`` of a basis of
    ``basis_size`` vectors of length ``n`` kept orthonormal by Gram-Schmidt with
    reorthogonalisation: each inner product of ``V^T V`` has n terms and each Ritz vector
    ``basis_size`` (``gamma_(n + basis_size)``), and the basis itself is orthonormal to
    the same order after the second pass (Giraud, Langou, Rozloznik, Comput. Math. Appl.
    50, 2005); a thick restart forms ``V s`` once more. The factor 4 counts those passes.
    """
    return gamma(4 * (n + basis_size), dtype)
