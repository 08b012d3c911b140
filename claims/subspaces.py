"""Subspaces of parameter space the claims compare: top eigenspaces, spans, random ones.

One home for the overlap statistics of the outlier-subspace and gradient-subspace claims
(Papyan 2019; Gur-Ari, Roberts, Dyer 2018), so that both read the same numbers.
"""

from __future__ import annotations

import torch

import hesskit
from hesskit.problems import Problem


def top_eigenpairs(
    operator: hesskit.LinearOperator | torch.Tensor, k: int, *, seed: int, **options
) -> hesskit.EigenResult:
    """``hesskit.eigsh(operator, k, generator=seed, **options)``; raises unless it
    converged, so that no claim reads unconverged Ritz values."""
    top = hesskit.eigsh(operator, k, generator=seed, **options)
    if not top.converged:
        msg = f"Lanczos did not converge ({top.num_matvecs} products, k = {k})"
        raise RuntimeError(msg)
    return top


def orthonormal_basis(span: torch.Tensor) -> torch.Tensor:
    """An orthonormal basis ``(n, d)`` of the column span of ``span`` (reduced QR)."""
    return torch.linalg.qr(span).Q


def random_subspace(n: int, dim: int, *, seed: int, like: torch.Tensor) -> torch.Tensor:
    """An orthonormal basis ``(n, dim)`` of a uniformly random subspace (seeded, float64
    on the CPU, then cast like ``like``); its overlap with any fixed subspace is about
    ``dim / n``."""
    gen = torch.Generator().manual_seed(seed)
    gaussian = torch.randn(n, dim, generator=gen, dtype=torch.float64)
    return orthonormal_basis(gaussian).to(dtype=like.dtype, device=like.device)


def captured(basis: torch.Tensor, vector: torch.Tensor) -> float:
    """``||B^T v||^2 / ||v||^2``: the share of ``vector`` in the span of the orthonormal
    ``basis``."""
    return float((basis.T @ vector).square().sum() / vector.square().sum())


def overlap(a: torch.Tensor, b: torch.Tensor) -> float:
    """``||A^T B||_F^2 / dim(A)`` for orthonormal bases: the mean squared cosine of the
    principal angles; 1 for equal subspaces, about ``dim / n`` for random ones."""
    return float((a.T @ b).square().sum() / a.shape[1])


def hessian_top(
    problem: Problem,
    model: torch.nn.Module,
    k: int,
    *,
    seed: int,
    v0: torch.Tensor | None = None,
) -> hesskit.EigenResult:
    """The top-``k`` eigenpairs of the Hessian of ``problem``'s full training loss at
    ``model`` (:func:`top_eigenpairs`, Lanczos seeded by ``seed``, started at ``v0`` if
    given): the top subspace of the gradient-subspace claims (gurari2018, song2025)."""
    operator = hesskit.hessian(model, problem.loss_fn, problem.data)
    return top_eigenpairs(operator, k, seed=seed, v0=v0)
