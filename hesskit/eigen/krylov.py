"""The one Lanczos step every solver shares: recurrence, reorthogonalisation, breakdown.

``eigsh`` (one sequence, thick restarts) and ``spectral_density`` (one sequence per probe,
all in one block product) extend their Krylov bases with :func:`lanczos_extend`, batched
over ``p`` independent sequences. A step removes the components of ``A v_j`` that the
recurrence already knows (``beta_{j-1} v_{j-1}``, or after a thick restart the couplings
to the kept Ritz vectors), then ``alpha_j v_j``, then what rounding left along the whole
basis with one classical Gram-Schmidt pass (full reorthogonalisation, Parlett 1998,
section 13.8). The rule for a breakdown (an invariant Krylov space) is the same for all:
the new direction is rounding when it is no larger than what that pass removed
(the criterion of Daniel, Gragg, Kaufman and Stewart 1976, ``||after|| <= ||before|| / 2``
with ``||before||^2 = ||after||^2 + ||removed||^2``), or below ``10 sqrt(n) eps`` of the
operator's scale. The block solver (:mod:`hesskit.eigen.block`) orthogonalises whole
blocks (QR) and uses :func:`is_rounding` for the same decision.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch


class Extension(NamedTuple):
    """One Lanczos step for each of ``p`` sequences (tensors on the basis' device)."""

    image: torch.Tensor
    """``(p, n)``: the new direction before normalisation (``beta_j v_{j+1}``)."""
    diagonal: torch.Tensor
    """``(p,)``: ``alpha_j = v_j^T A v_j`` (with the reorthogonalisation's correction)."""
    beta: torch.Tensor
    """``(p,)``: ``||image||``, the new off-diagonal entry."""
    extended: torch.Tensor
    """``(p,)`` bool: False where the step broke down (the image is rounding)."""
    scale: torch.Tensor
    """``(p,)``: the running estimate of ``||A||``, ``max(scale, |alpha_j| + beta_j)``."""


def lanczos_extend(
    product: torch.Tensor,
    rows: torch.Tensor,
    j: int,
    *,
    scale: torch.Tensor | float,
    previous: torch.Tensor | None = None,
    couplings: torch.Tensor | None = None,
) -> Extension:
    """Extend ``p`` Lanczos sequences by one step.

    Args:
        product: ``(p, n)``, ``A v_j`` for each sequence (not modified).
        rows: ``(p, m, n)`` with ``m > j``, each sequence's orthonormal basis as rows;
            row ``j`` is ``v_j``.
        j: the step.
        scale: ``(p,)`` or a number, the running estimate of ``||A||`` from the earlier
            steps (the returned ``scale``; 0 on the first step).
        previous: ``(p,)``, ``beta_{j-1}`` (the coupling to row ``j - 1``), or None.
        couplings: ``(p, j)``, the couplings to rows ``0..j-1`` after a thick restart (the
            arrowhead), or None.

    Returns:
        An :class:`Extension`; the caller normalises the image into row ``j + 1`` (or
        continues with a random direction, or stops, where it broke down).
    """
    if couplings is not None:
        image = product - (rows[:, :j].mT @ couplings.unsqueeze(-1)).squeeze(-1)
    elif previous is not None:
        image = product - previous.unsqueeze(-1) * rows[:, j - 1]
    else:
        image = product.clone()
    current = rows[:, j]
    alpha = (current * image).sum(dim=-1)
    image -= alpha.unsqueeze(-1) * current
    basis = rows[:, : j + 1]
    removed = (basis @ image.unsqueeze(-1)).squeeze(-1)
    image -= (basis.mT @ removed.unsqueeze(-1)).squeeze(-1)
    beta = torch.linalg.vector_norm(image, dim=-1)
    diagonal = alpha + removed[:, j]
    scale = torch.clamp(diagonal.abs() + beta, min=scale)
    lost = torch.linalg.vector_norm(removed, dim=-1)
    extended = ~is_rounding(beta, lost, scale, n=rows.shape[-1])
    return Extension(image, diagonal, beta, extended, scale)


def is_rounding(
    norm: torch.Tensor, removed: torch.Tensor, scale: torch.Tensor | float, *, n: int
) -> torch.Tensor:
    """Whether a direction of norm ``norm``, left after removing ``removed`` along the
    basis, is rounding rather than new (see the module docstring)."""
    eps = torch.finfo(norm.dtype).eps
    return (3 * norm**2 <= removed**2) | (norm <= 10 * math.sqrt(n) * eps * scale)


def random_direction(rows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random unit vector orthogonal to the orthonormal ``(m, n)`` rows (Gram-Schmidt
    twice): how a single sequence continues after a breakdown."""
    vector = torch.randn(rows.shape[1], generator=generator, dtype=rows.dtype, device=rows.device)
    for _ in range(2):
        vector = torch.addmv(vector, rows.mT, rows @ vector, alpha=-1)
    norm = torch.linalg.vector_norm(vector).clamp_min(torch.finfo(rows.dtype).tiny)
    return vector / norm
