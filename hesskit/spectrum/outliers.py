"""Split a spectrum into a bulk and outliers at a gap on the log scale.

The Hessian of a trained network has a bulk of eigenvalues concentrated near zero and a
few outliers far above it, about one per class (Sagun, Bottou, LeCun 2016,
arXiv:1611.07476; Sagun, Evci, Guney, Dauphin, Bottou 2017, arXiv:1706.04454).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from hesskit import _checks
from hesskit.density.result import SpectralDensity
from hesskit.spectrum.counting import _check_relative, _lowest_log_gap, _max_outliers

RULES = ("lowest_log_gap",)


@dataclass(frozen=True)
class SpectrumSplit:
    """A spectrum split into outliers and bulk.

    Attributes:
        outliers: the outlying eigenvalues, sorted descending.
        bulk: the remaining eigenvalues (for a density, its Ritz values), sorted descending.
        edge: the threshold: every outlier is above it, every bulk value at or below it.
        num_outliers: ``len(outliers)``.
    """

    outliers: torch.Tensor
    bulk: torch.Tensor
    edge: float
    num_outliers: int


def split(
    eigenvalues: torch.Tensor | SpectralDensity,
    *,
    rule: str = "lowest_log_gap",
    max_outliers: int | None = None,
    min_gap: float = 1.0,
    floor: float = 1e-3,
) -> SpectrumSplit:
    """Split eigenvalues into a bulk and the outliers above it (Sagun et al. 2016, 2017).

    Rule ``"lowest_log_gap"``, the rule of :func:`hesskit.spectrum.lowest_log_gap` (which also
    says whether the count hit ``max_outliers``): sort descending and take the top
    ``max_outliers + 1`` values ``l_1 >= l_2 >= ...``; map each to
    ``x_i = log(max(l_i, floor * l_1))`` and form the gaps ``x_i - x_{i+1}``. The
    outliers are ``l_1 .. l_k`` for the *lowest* gap ``k`` with ``x_k - x_{k+1} >= min_gap``,
    or none if no gap is that large (or ``l_1 <= 0``).
    Why this rule: (1) clamping at ``floor * l_1`` makes every value at or below the floor
    (the zero, tiny negative and tiny positive eigenvalues of a Hessian) count as the floor,
    so ``1e-9`` next to ``1e-6`` makes no gap, while a bulk lying entirely under the floor
    still leaves a gap below the outliers; (2) taking the lowest significant gap, not the
    largest, keeps widely spread outliers (say 5x and 50x the bulk edge) together, since
    the gaps between outliers never decide the split; (3) only the top ``max_outliers + 1``
    values are examined, so the sparse low end of a bulk, dense in absolute but not in
    log terms, is never mistaken for a gap. ``edge`` is the geometric midpoint of the
    deciding gap, ``exp((x_k + x_{k+1}) / 2)``; with no outliers it is ``l_1``.

    A :class:`~hesskit.density.SpectralDensity` is split probe by probe, on the Ritz
    values that carry weight: an outlier is a converged Ritz value that every probe finds
    (its ``n * weight`` mass is about one eigenvalue, but that mass is a noisy chi-square
    sample, so counts come from Ritz values, not from mass). ``num_outliers`` is the median
    of the probes' counts, ``outliers`` the mean over the probes with that count of their
    top Ritz values, ``edge`` the median of those probes' edges, and ``bulk`` every
    weighted Ritz value at or below ``edge``.

    Args:
        eigenvalues: a 1-D float tensor of eigenvalues, or a ``SpectralDensity``.
        rule: only ``"lowest_log_gap"`` (named as its counting function).
        max_outliers: the most outliers to look for (>= 1). Default ``min(n // 2, 100)``,
            ``n`` the number of eigenvalues (of Ritz values per probe for a density).
        min_gap: the least log-ratio (natural log, > 0) that separates outliers from the
            bulk; default 1.0, a factor ``e ~ 2.7``.
        floor: relative floor in (0, 1), a fraction of the largest eigenvalue.

    Returns:
        The :class:`SpectrumSplit` of the eigenvalues or the density.

    Raises:
        TypeError: if ``eigenvalues`` is neither a float tensor nor a ``SpectralDensity``.
        ValueError: for a tensor that is not 1-D, is empty or holds NaN/inf, a density
            whose nodes or weights hold NaN/inf, or a bad keyword.

    Example:
        >>> import torch
        >>> bulk = torch.linspace(0.5, 1.0, 50, dtype=torch.float64)
        >>> result = split(torch.cat([bulk, torch.tensor([8.0, 20.0], dtype=torch.float64)]))
        >>> result.num_outliers, result.outliers.tolist(), round(result.edge, 3)
        (2, [20.0, 8.0], 2.828)
    """
    _checks.check_choice("rule", rule, RULES)
    min_gap = _checks.check_positive_float("min_gap", min_gap)
    floor = _check_relative("floor", floor)
    if isinstance(eigenvalues, SpectralDensity):
        return _split_density(_check_density(eigenvalues), max_outliers, min_gap, floor)
    values = _check_eigenvalues(eigenvalues).sort(descending=True).values
    cap = _max_outliers(max_outliers, len(values))
    num, edge = _log_gap(values, cap, min_gap, floor)
    return SpectrumSplit(values[:num], values[num:], edge, num)


def _log_gap(values: torch.Tensor, cap: int, min_gap: float, floor: float) -> tuple[int, float]:
    """Number of outliers and edge of descending ``values`` by the log-gap rule.

    The rule is :func:`hesskit.spectrum.lowest_log_gap`'s one implementation, in float64.

    Returns:
        ``(count, edge)``.
    """
    result = _lowest_log_gap(values.to(torch.float64), min_gap, floor, cap)
    assert result.edge is not None  # edge is None only for the subspace rule
    return result.count, result.edge


def _split_density(
    density: SpectralDensity, max_outliers: int | None, min_gap: float, floor: float
) -> SpectrumSplit:
    """The log-gap rule on each probe's weighted Ritz values, combined across probes.

    Returns:
        The combined :class:`SpectrumSplit`.
    """
    cap = _max_outliers(max_outliers, density.nodes.shape[1])
    probes = []
    for nodes, weights in zip(density.nodes, density.weights, strict=True):
        ritz = nodes[weights > 0].sort(descending=True).values
        probes.append((ritz, *_log_gap(ritz, cap, min_gap, floor)))
    counts = torch.tensor([count for _, count, _ in probes])
    num = int(counts.median())
    agreeing = [(ritz, edge) for ritz, count, edge in probes if count == num]
    outliers = torch.stack([ritz[:num] for ritz, _ in agreeing]).mean(dim=0)
    edge = float(torch.tensor([edge for _, edge in agreeing]).median())
    pooled = torch.cat([ritz for ritz, _, _ in probes])
    bulk = pooled[pooled <= edge].sort(descending=True).values
    return SpectrumSplit(outliers, bulk, edge, num)


def _check_eigenvalues(eigenvalues: Any) -> torch.Tensor:
    """Return ``eigenvalues`` if it is a non-empty, finite 1-D floating-point tensor.

    Without the finiteness check, NaN and +inf sort to the top and the rule silently finds
    no outliers, with edge NaN or inf; a -inf silently joins the bulk.

    Returns:
        ``eigenvalues`` unchanged.

    Raises:
        TypeError: if it is not a floating-point tensor.
        ValueError: if it is not 1-D, is empty or holds NaN/inf.
    """
    if not isinstance(eigenvalues, torch.Tensor) or not eigenvalues.is_floating_point():
        msg = (
            "eigenvalues must be a 1-D floating-point torch.Tensor or a "
            f"hesskit.density.SpectralDensity, got {type(eigenvalues).__name__}"
        )
        raise TypeError(msg)
    if eigenvalues.ndim != 1 or eigenvalues.numel() == 0:
        msg = f"eigenvalues must be a non-empty 1-D tensor, got shape {tuple(eigenvalues.shape)}"
        raise ValueError(msg)
    finite = torch.isfinite(eigenvalues)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        msg = (
            f"eigenvalues must be finite, but it holds NaN or inf ({bad} of "
            f"{eigenvalues.numel()} values); check the operator or model that produced them"
        )
        raise ValueError(msg)
    return eigenvalues


def _check_density(density: SpectralDensity) -> SpectralDensity:
    """Return ``density`` if its nodes and weights are finite (as from a finite operator).

    Returns:
        ``density`` unchanged.

    Raises:
        ValueError: if its nodes or weights hold NaN/inf.
    """
    if not all(bool(torch.isfinite(part).all()) for part in (density.nodes, density.weights)):
        msg = (
            "eigenvalues must be finite, but the SpectralDensity's nodes or weights hold NaN "
            "or inf; the operator's products were not finite"
        )
        raise ValueError(msg)
    return density
