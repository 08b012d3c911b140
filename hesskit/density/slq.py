"""Stochastic Lanczos quadrature (SLQ) for the spectral density of a symmetric operator.

References:
    S. Ubaru, J. Chen, Y. Saad (2017), "Fast estimation of tr(f(A)) via stochastic Lanczos
    quadrature", SIAM J. Matrix Anal. Appl. 38(4).
    L. Lin, Y. Saad, C. Yang (2016), "Approximating spectral densities of large matrices",
    SIAM Review 58(1).
    B. Ghorbani, S. Krishnan, Y. Xiao (2019), "An investigation into neural net optimization
    via Hessian eigenvalue density", ICML, arXiv:1901.10159.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from hesskit import _checks
from hesskit.density.result import SpectralDensity
from hesskit.operators.base import LinearOperator, as_operator
from hesskit.trace_estimation.probes import rademacher


def spectral_density(
    op: Any,
    *,
    num_probes: int = 8,
    num_steps: int = 90,
    generator: torch.Generator | int | None = None,
) -> SpectralDensity:
    """Estimate the spectral density of ``op`` by stochastic Lanczos quadrature.

    Probe ``i`` is column ``i`` of ``rademacher(n, num_probes, generator=generator)``
    divided by ``sqrt(n)`` (a unit vector; Rademacher rather than Gaussian, so that
    ``trace_estimate`` is exactly Hutchinson's minimum-variance estimator). All probes run
    ``min(num_steps, n)`` Lanczos steps together, one ``(n, num_probes)`` block product per
    step, with full reorthogonalisation of each probe against its own basis (classical
    Gram-Schmidt applied twice). The Gauss quadrature of each probe's spectral measure
    ``sum_j (u_j^T v)^2 delta(lambda_j)`` has the Ritz values as nodes and the squared first
    components of the tridiagonal's eigenvectors as weights (Ubaru et al. 2017). When a
    probe's Krylov space becomes invariant (breakdown, ``beta ~ 0``), its quadrature is
    exact; its remaining slots are padded with copies of its largest node and weight 0.

    Defaults: 90 steps as in Ghorbani et al. (2019); 8 probes, which averages out most of
    the probe-to-probe fluctuation of the weights at ``8 * 90 = 720`` products. Memory:
    the Lanczos bases take ``num_steps * n * num_probes`` entries.

    Args:
        op: a symmetric :class:`~hesskit.LinearOperator` or a square tensor.
        num_probes: number of random start vectors (>= 1).
        num_steps: Lanczos steps per probe (>= 1; capped at ``n``).
        generator: a ``torch.Generator``, an int seed, or None (seed 0).

    Example:
        >>> import torch
        >>> a = torch.diag(torch.tensor([1.0, 1.0, 2.0, 3.0], dtype=torch.float64))
        >>> result = spectral_density(a, num_probes=2, num_steps=4, generator=0)
        >>> round(float(result.trace_estimate()), 6)
        7.0
        >>> sorted({round(x, 6) for x in result.nodes[result.weights > 0].tolist()})
        [1.0, 2.0, 3.0]
    """
    op = as_operator(op)
    num_probes = _checks.check_int_in_range("num_probes", num_probes, low=1)
    num_steps = _checks.check_int_in_range("num_steps", num_steps, low=1)
    n = op.shape[0]
    steps = min(num_steps, n)
    gen = _checks.make_generator(generator, op.device)
    start = rademacher(n, num_probes, dtype=op.dtype, device=op.device, generator=gen)
    alpha, beta, lengths = _lanczos(op, start / math.sqrt(n), steps)
    nodes, weights = _gauss_quadrature(alpha, beta, lengths)
    return SpectralDensity(nodes=nodes, weights=weights, num_matvecs=steps * num_probes, n=n)


def _lanczos(
    op: LinearOperator, start: torch.Tensor, steps: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batched Lanczos with full reorthogonalisation.

    Returns ``alpha`` (p, steps), ``beta`` (p, steps - 1) and each probe's Krylov dimension
    ``lengths`` (p,). The bases are stored probe-major, ``(p, steps, n)``, so that each
    projection is one batched product over contiguous rows. After a probe breaks down its
    vectors are zero, so its later ``alpha`` and ``beta`` are zero and its tridiagonal
    decouples.
    """
    n, p = start.shape
    basis = start.new_zeros(p, steps, n)
    basis[:, 0] = start.T
    alpha = start.new_zeros(p, steps)
    beta = start.new_zeros(p, steps - 1)
    lengths = torch.full((p,), steps, dtype=torch.long, device=start.device)
    scale = start.new_zeros(p)
    tol = 10 * math.sqrt(n) * torch.finfo(start.dtype).eps
    for j in range(steps):
        w = op.matmat(basis[:, j].T.contiguous()).T
        alpha[:, j] = (basis[:, j] * w).sum(dim=1)
        if j == steps - 1:
            break
        for _ in range(2):
            coefficients = torch.einsum("pjn,pn->pj", basis[:, : j + 1], w)
            w = w - torch.einsum("pjn,pj->pn", basis[:, : j + 1], coefficients)
        norm = w.norm(dim=1)
        scale = torch.maximum(scale, alpha[:, j].abs() + norm)
        lengths = torch.where((lengths == steps) & (norm <= tol * scale), j + 1, lengths)
        live = lengths == steps
        beta[:, j] = torch.where(live, norm, 0)
        basis[:, j + 1] = torch.where(live[:, None], w / torch.where(live, norm, 1)[:, None], 0)
    return alpha, beta, lengths


def _gauss_quadrature(
    alpha: torch.Tensor, beta: torch.Tensor, lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes and weights of each probe's Gauss quadrature from its Lanczos tridiagonal."""
    steps = alpha.shape[1]
    tridiagonal = torch.diag_embed(alpha) + torch.diag_embed(beta, 1) + torch.diag_embed(beta, -1)
    nodes, vectors = torch.linalg.eigh(tridiagonal)
    weights = vectors[:, 0, :] ** 2
    for probe in torch.nonzero(lengths < steps).flatten().tolist():
        size = int(lengths[probe])
        sub_nodes, sub_vectors = torch.linalg.eigh(tridiagonal[probe, :size, :size])
        nodes[probe, :size], nodes[probe, size:] = sub_nodes, sub_nodes[-1]
        weights[probe, :size], weights[probe, size:] = sub_vectors[0] ** 2, 0
    return nodes, weights
