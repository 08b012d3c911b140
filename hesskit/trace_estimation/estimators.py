"""Stochastic trace estimation from matrix-vector products: Hutchinson and Hutch++.

References:
    M. F. Hutchinson (1989), "A stochastic estimator of the trace of the influence matrix
    for Laplacian smoothing splines", Comm. Statist. Simulation Comput. 18(3).
    R. A. Meyer, C. Musco, C. Musco, D. P. Woodruff (2021), "Hutch++: optimal stochastic
    trace estimation", SOSA, arXiv:2010.09649.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from hesskit import _checks
from hesskit.operators.base import LinearOperator, as_operator, in_work_dtype
from hesskit.progress import Callback, reporting
from hesskit.trace_estimation.probes import rademacher

METHODS = ("hutchinson", "hutch++")


@dataclass(frozen=True)
class TraceEstimate:
    """A stochastic estimate of ``tr A``.

    Attributes:
        estimate: the estimate, a 0-d tensor of the work dtype on the operator's device.
        stderr: its estimated standard error (0-d tensor; NaN when only one random sample
            was drawn, since a spread cannot be estimated from one sample).
        num_matvecs: operator-vector products actually used.
        method: ``"hutchinson"`` or ``"hutch++"``.
    """

    estimate: torch.Tensor
    stderr: torch.Tensor
    num_matvecs: int
    method: str


def trace(
    op: Any,
    num_matvecs: int,
    *,
    method: str = "hutchinson",
    generator: torch.Generator | int | None = None,
    progress: bool | Callback | None = None,
    work_dtype: torch.dtype | None = None,
) -> TraceEstimate:
    """Estimate ``tr A`` with a budget of ``num_matvecs`` operator-vector products.

    ``"hutchinson"`` (Hutchinson 1989) averages ``z^T A z`` over ``num_matvecs`` Rademacher
    probes pushed through the operator in one block; its variance is
    ``2 (||A||_F^2 - sum_i A_ii^2) / num_matvecs``. ``"hutch++"`` (Meyer et al. 2021)
    spends a third of the budget on a sketch ``Q = qr(A S)``, a third on the exact
    ``tr(Q^T A Q)``, and the rest on Hutchinson for the deflated
    ``(I - QQ^T) A (I - QQ^T)``; its error falls like ``1/num_matvecs`` instead of
    ``1/sqrt(num_matvecs)`` when the spectrum decays. Its ``stderr`` is that of the
    deflated Hutchinson part (the sketched part is exact given ``Q``).

    Args:
        op: a symmetric :class:`~hesskit.LinearOperator` or a square tensor.
        num_matvecs: the budget of products (>= 1; >= 3 for ``"hutch++"``).
        method: ``"hutchinson"`` or ``"hutch++"``.
        generator: a ``torch.Generator``, an int seed, or None (seed 0).
        progress: None, True (a tqdm bar) or a callable ``progress(done, total)``
            (:mod:`hesskit.progress`), called after each block product: Hutchinson pushes
            all its probes through in one block, Hutch++ in two blocks.
        work_dtype: the dtype of the probes, the sketch's QR and every reduction,
            ``torch.float32`` or ``torch.float64``; default float32 for a bf16 or fp16
            operator (whose products stay in its dtype), else the operator's dtype
            (:func:`hesskit.operators.base.in_work_dtype`).

    Returns:
        A :class:`TraceEstimate` in ``work_dtype``: the estimate, its standard error (NaN
        where it cannot be estimated from one sample), the products spent and the method.

    Raises:
        TypeError: if ``progress`` is not None, a bool or a callable, or ``work_dtype`` is
            not float32, float64 or None.
        ValueError: for a bad ``method`` or a budget too small for it, or a ``work_dtype``
            less precise than the operator.

    Example:
        >>> import torch
        >>> result = trace(torch.diag(torch.arange(1.0, 6.0)), 30, generator=0)
        >>> float(result.estimate)  # a diagonal matrix: Rademacher probes are exact
        15.0
    """
    op = in_work_dtype(as_operator(op), work_dtype)
    num_matvecs = _checks.check_int_in_range("num_matvecs", num_matvecs, low=1)
    method = _checks.check_choice("method", method, METHODS)
    gen = _checks.make_generator(generator, op.device)
    if method == "hutch++" and num_matvecs < 3:
        msg = (
            f"num_matvecs must be >= 3 for method='hutch++' (a third each for the sketch, "
            f"its products and the residual), got {num_matvecs}"
        )
        raise ValueError(msg)
    estimator = _hutchinson if method == "hutchinson" else _hutchpp
    with reporting(progress, f"trace ({method})") as report:
        return estimator(op, num_matvecs, gen, report)


def _mean_and_stderr(samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample mean and its standard error (NaN for a single sample).

    Returns:
        ``(mean, stderr)``, two 0-d tensors.
    """
    mean = samples.mean()
    if samples.numel() == 1:
        return mean, torch.full_like(mean, math.nan)
    return mean, samples.std() / math.sqrt(samples.numel())


def _hutchinson(
    op: LinearOperator, num_matvecs: int, gen: torch.Generator, report: Callback
) -> TraceEstimate:
    """Hutchinson's estimator with all Rademacher probes in one block.

    Returns:
        The :class:`TraceEstimate` of ``num_matvecs`` probes.
    """
    probes = rademacher(op.shape[0], num_matvecs, dtype=op.dtype, device=op.device, generator=gen)
    samples = (probes * op.matmat(probes)).sum(dim=0)
    report(num_matvecs, num_matvecs)
    estimate, stderr = _mean_and_stderr(samples)
    return TraceEstimate(estimate, stderr, num_matvecs, "hutchinson")


def _hutchpp(
    op: LinearOperator, num_matvecs: int, gen: torch.Generator, report: Callback
) -> TraceEstimate:
    """Hutch++ (Meyer et al. 2021, Algorithm 1) in two block products after the sketch.

    Returns:
        The :class:`TraceEstimate`: ``tr(Q^T A Q)`` plus the Hutchinson estimate of the
        deflated remainder, with the remainder's standard error.
    """
    n, third = op.shape[0], num_matvecs // 3
    sketch = rademacher(n, third, dtype=op.dtype, device=op.device, generator=gen)
    basis, _ = torch.linalg.qr(op.matmat(sketch))
    report(third, num_matvecs)
    probes = rademacher(n, num_matvecs - 2 * third, dtype=op.dtype, device=op.device, generator=gen)
    probes = probes - basis @ (basis.T @ probes)
    products = op.matmat(torch.cat([basis, probes], dim=1))
    rank = basis.shape[1]
    exact = (basis * products[:, :rank]).sum()
    residual, stderr = _mean_and_stderr((probes * products[:, rank:]).sum(dim=0))
    used = third + rank + probes.shape[1]
    report(used, num_matvecs)
    return TraceEstimate(exact + residual, stderr, used, "hutch++")
