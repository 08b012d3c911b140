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
from typing import Any, NamedTuple

import torch


class Extension(NamedTuple):
    """One Lanczos step for each of ``p`` sequences (tensors on the basis' device)."""

    image: torch.Tensor
    """``(p, n)``: the new direction before normalisation (``beta_j v_{j+1}``)."""
    diagonal: torch.Tensor
    """``(p,)``: ``alpha_j = v_j^T A v_j`` (with the reorthogonalisation's correction)."""
    beta: torch.Tensor
    """``(p,)``: ``||image||``, the new off-diagonal entry."""
    removed: torch.Tensor
    """``(p,)``: the norm of what the Gram-Schmidt pass removed (for :func:`is_rounding`)."""


def lanczos_extend(
    product: torch.Tensor,
    rows: torch.Tensor,
    j: int,
    *,
    previous: torch.Tensor | float | None = None,
    couplings: torch.Tensor | None = None,
) -> Extension:
    """Extend ``p`` Lanczos sequences by one step.

    Args:
        product: ``(p, n)``, ``A v_j`` for each sequence (not modified).
        rows: ``(p, m, n)`` with ``m > j``, each sequence's orthonormal basis as rows;
            row ``j`` is ``v_j``.
        j: the step.
        previous: ``beta_{j-1}`` (the coupling to row ``j - 1``), ``(p,)`` or one number
            for all, or None.
        couplings: ``(p, j)``, the couplings to rows ``0..j-1`` after a thick restart (the
            arrowhead), or None.

    Returns:
        An :class:`Extension`; the caller decides with :func:`is_rounding` whether the
        step broke down, and normalises the image into row ``j + 1`` (or continues with a
        random direction, or stops).
    """
    if couplings is not None:
        image = product - (rows[:, :j].mT @ couplings.unsqueeze(-1)).squeeze(-1)
    elif isinstance(previous, torch.Tensor):
        image = product - previous.unsqueeze(-1) * rows[:, j - 1]
    elif previous is not None:
        image = torch.sub(product, rows[:, j - 1], alpha=previous)
    else:
        image = product.clone()
    if rows.shape[0] == 1:
        return _extend_one(image[0], rows[0], j)
    # fused and in place: as few kernels as a single-vector step needs (small n is
    # dispatch-bound), whatever p is
    current = rows[:, j]
    alpha = torch.linalg.vecdot(current, image)
    image.addcmul_(alpha.unsqueeze(-1), current, value=-1)
    basis = rows[:, : j + 1]
    coefficients = torch.bmm(basis, image.unsqueeze(-1)).squeeze(-1)
    image.unsqueeze(-1).baddbmm_(basis.mT, coefficients.unsqueeze(-1), alpha=-1)
    beta = torch.linalg.vector_norm(image, dim=-1)
    removed = torch.linalg.vector_norm(coefficients, dim=-1)
    return Extension(image, alpha + coefficients[:, j], beta, removed)


def _extend_one(image: torch.Tensor, rows: torch.Tensor, j: int) -> Extension:
    """:func:`lanczos_extend` for one sequence (``eigsh``), with matrix-vector kernels.

    The same arithmetic, without the batched kernels' overhead (measured on the digits
    MLP: about 50 us a step).

    Returns:
        The step's result, as :func:`lanczos_extend`'s for a batch of one.
    """
    alpha = rows[j] @ image
    image.addcmul_(alpha, rows[j], value=-1)
    coefficients = rows[: j + 1] @ image
    image.addmv_(rows[: j + 1].mT, coefficients, alpha=-1)
    beta = torch.linalg.vector_norm(image)
    removed = torch.linalg.vector_norm(coefficients)
    one = (alpha + coefficients[j], beta, removed)
    return Extension(image.unsqueeze(0), *(value.reshape(1) for value in one))


def is_rounding(norm: Any, removed: Any, scale: Any, *, n: int, eps: float) -> Any:
    """Whether a direction is rounding rather than new (see the module docstring).

    The direction has norm ``norm`` after removing ``removed`` along the basis; ``scale``
    estimates ``||A||``. Numbers (decided on the host) or tensors (on the device) alike.

    Returns:
        True (a bool, or a boolean tensor) where the direction is rounding.
    """
    return (3 * norm**2 <= removed**2) | (norm <= 10 * math.sqrt(n) * eps * scale)


def random_direction(rows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random unit vector orthogonal to the orthonormal ``(m, n)`` rows.

    Gram-Schmidt twice; this is how a single sequence continues after a breakdown.

    Returns:
        A unit ``(n,)`` vector.
    """
    vector = torch.randn(rows.shape[1], generator=generator, dtype=rows.dtype, device=rows.device)
    for _ in range(2):
        vector = torch.addmv(vector, rows.mT, rows @ vector, alpha=-1)
    norm = torch.linalg.vector_norm(vector).clamp_min(torch.finfo(rows.dtype).tiny)
    return vector / norm
