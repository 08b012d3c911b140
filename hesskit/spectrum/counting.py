"""Count the outliers of a Hessian spectrum by several named rules, each with its strength.

A trained network's Hessian has a bulk near zero and a few outliers above it, about one
per class (Sagun, Bottou, LeCun 2016, arXiv:1611.07476; Sagun, Evci, Guney, Dauphin,
Bottou 2017, arXiv:1706.04454). Where the bulk ends is a judgement, so a study should
record the count of every rule that applies, not one:

- :func:`largest_log_gap`: split at the largest gap of the log-spectrum. No threshold to
  tune, but one dominant outlier pulls the split up to it.
- :func:`lowest_log_gap`: split at the lowest gap of at least ``min_gap`` (the rule of
  :func:`hesskit.spectrum.split`); keeps widely spread outliers together.
- :func:`class_mean_subspace`: count the leading eigenvectors needed to span the class
  means of the per-sample gradients (Papyan 2019, arXiv:1901.08244), which span the
  outliers; needs eigenvectors and :func:`hesskit.spectrum.class_mean_gradients`.

:func:`count_outliers` runs them all; :func:`near_zero_fraction` is the project's one
definition of an eigenvalue "near zero".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hesskit import _checks

RULES = ("largest_log_gap", "lowest_log_gap", "class_mean_subspace")
"""The names of the counting rules, in the order :func:`count_outliers` returns them."""

_F64 = torch.float64


@dataclass(frozen=True)
class OutlierCount:
    """The outlier count of one rule.

    Attributes:
        rule: the rule's name, one of :data:`RULES`.
        count: the number of outliers.
        score: the rule's strength: the deciding log-gap (natural log) for the log rules,
            the captured fraction of the class means' energy for the subspace rule.
        edge: the bulk edge for the log rules: the geometric midpoint of the deciding gap
            (every outlier is above it, every bulk value at or below it), ``lambda_1``
            when there is no outlier; None for the subspace rule.
        capped: True when the count is the largest the rule could return under its limit
            (``max_outliers``, or the number of eigenvectors), so the answer is a lower
            bound.
    """

    rule: str
    count: int
    score: float
    edge: float | None
    capped: bool


def largest_log_gap(
    eigenvalues: Any, *, floor: float = 1e-3, max_outliers: int | None = None
) -> OutlierCount:
    """Outliers above the largest gap of the log-spectrum.

    Sort descending, ``l_1 >= l_2 >= ... >= l_n``; map each value to
    ``x_i = log(max(l_i, floor * l_1))``, so every value at or below the floor (the zero,
    negative and tiny eigenvalues) is one level; the count is the ``k`` maximising
    ``x_k - x_{k+1}`` (the first such ``k`` on ties). Every value above the floor is
    examined, so the last gap considered is the one from the smallest value above the
    floor down to the floor; there is no hidden limit. An explicit ``max_outliers`` limits
    the search to ``k <= max_outliers``; ``capped`` is then True when the largest gap is
    the last one examined and more lie beyond it.

    The rule has no significance threshold: any spectrum that is not flat above the floor
    gets at least one outlier, and ``score`` (the deciding gap) says how clear the split
    is. Known failure: one dominant outlier, ``l_1 / l_2 > l_k / l_{k+1}`` for the true
    count ``k``, puts the split after ``l_1`` (e.g. 100, 10, 9, 8, 7 over a bulk at 1
    gives 1, not 5); :func:`lowest_log_gap` and :func:`class_mean_subspace` do not fail
    this way. The count is invariant to a positive scaling of the spectrum.

    Args:
        eigenvalues: a non-empty 1-D tensor, array or sequence of real numbers, any order.
        floor: relative floor in (0, 1), a fraction of the largest eigenvalue.
        max_outliers: the most outliers to look for (>= 1); None (default) for no limit.

    Returns:
        The :class:`OutlierCount` of rule ``"largest_log_gap"``; count 0 (edge ``l_1``,
        score 0) when ``l_1 <= 0``, there is a single value, or every examined gap is zero.

    Raises:
        TypeError: if ``eigenvalues`` is not real numbers, or a keyword has a wrong type.
        ValueError: if ``eigenvalues`` is not 1-D, is empty or holds NaN/inf, or a
            keyword is out of range.

    Example:
        >>> bulk = [1.0 - 0.05 * i for i in range(10)]
        >>> result = largest_log_gap([100.0, 10.0, 9.0, 8.0, 7.0, *bulk])
        >>> result.count, round(result.score, 3), round(result.edge, 2), result.capped
        (1, 2.303, 31.62, False)
        >>> largest_log_gap([20.0, 8.0, *bulk]).count
        2
    """
    values = _sorted_eigenvalues(eigenvalues)
    floor = _check_relative("floor", floor)
    cap = None
    if max_outliers is not None:
        cap = _checks.check_int_in_range("max_outliers", max_outliers, low=1)
    logs, gaps, truncated = _log_gaps(values, floor, cap)
    if len(gaps) == 0 or float(gaps.max()) <= 0:
        return OutlierCount("largest_log_gap", 0, 0.0, float(values[0]), False)
    count = int(torch.argmax(gaps)) + 1
    return _gap_count("largest_log_gap", logs, gaps, count, truncated)


def lowest_log_gap(
    eigenvalues: Any,
    *,
    min_gap: float = 1.0,
    floor: float = 1e-3,
    max_outliers: int | None = None,
) -> OutlierCount:
    """Outliers above the lowest gap of the log-spectrum that is at least ``min_gap``.

    The rule of :func:`hesskit.spectrum.split` (Sagun et al. 2016, 2017 describe the
    bulk-and-outliers shape; the rule is hesskit's): sort descending, map each value to
    ``x_i = log(max(l_i, floor * l_1))`` and take the *largest* ``k <= max_outliers`` with
    ``x_k - x_{k+1} >= min_gap``, or 0 if no gap is that large (or ``l_1 <= 0``). Taking
    the lowest significant gap keeps widely spread outliers (say 5x and 50x the bulk
    edge) together, and is immune to one dominant outlier; the price is the threshold
    ``min_gap``, which a bulk edge softer than ``exp(min_gap)`` slips under. Only the top
    ``max_outliers + 1`` values are examined, so the sparse low end of a bulk, dense in
    absolute but not in log terms, is never mistaken for a gap; ``capped`` is True when
    the count equals that limit and more values lie beyond it.

    Args:
        eigenvalues: a non-empty 1-D tensor, array or sequence of real numbers, any order.
        min_gap: the least log-ratio (natural log, > 0) that separates outliers from the
            bulk; default 1.0, a factor ``e ~ 2.7``.
        floor: relative floor in (0, 1), a fraction of the largest eigenvalue.
        max_outliers: the most outliers to look for (>= 1). Default ``min(n // 2, 100)``,
            ``n`` the number of eigenvalues (as in ``split``).

    Returns:
        The :class:`OutlierCount` of rule ``"lowest_log_gap"``. ``score`` is the deciding
        gap; with no outlier it is the largest examined gap (below ``min_gap``, 0 when
        none was examined) and ``edge`` is ``l_1``.

    Raises:
        TypeError: if ``eigenvalues`` is not real numbers, or a keyword has a wrong type.
        ValueError: if ``eigenvalues`` is not 1-D, is empty or holds NaN/inf, or a
            keyword is out of range.

    Example:
        >>> bulk = [1.0 - 0.05 * i for i in range(10)]
        >>> result = lowest_log_gap([100.0, 10.0, 9.0, 8.0, 7.0, *bulk])
        >>> result.count, round(result.score, 3), round(result.edge, 3), result.capped
        (5, 1.946, 2.646, False)
        >>> lowest_log_gap([100.0, 10.0, 9.0, 8.0, 7.0, *bulk], min_gap=2.0).count
        1
    """
    values = _sorted_eigenvalues(eigenvalues)
    min_gap = _checks.check_positive_float("min_gap", min_gap)
    floor = _check_relative("floor", floor)
    return _lowest_log_gap(values, min_gap, floor, _max_outliers(max_outliers, len(values)))


def _max_outliers(max_outliers: Any, n: int) -> int:
    """Return ``max_outliers`` (an int >= 1) or, for None, ``min(n // 2, 100)``."""
    if max_outliers is None:
        return min(n // 2, 100)
    return _checks.check_int_in_range("max_outliers", max_outliers, low=1)


def _lowest_log_gap(values: torch.Tensor, min_gap: float, floor: float, cap: int) -> OutlierCount:
    """The lowest-significant-gap rule on descending float64 ``values``, checked arguments.

    The one implementation of the rule, shared with :func:`hesskit.spectrum.split`.

    Returns:
        The rule's :class:`OutlierCount`.
    """
    logs, gaps, truncated = _log_gaps(values, floor, cap)
    significant = torch.nonzero(gaps >= min_gap).flatten()
    if len(significant) == 0:
        score = float(gaps.max()) if len(gaps) else 0.0
        return OutlierCount("lowest_log_gap", 0, score, float(values[0]), False)
    return _gap_count("lowest_log_gap", logs, gaps, int(significant[-1]) + 1, truncated)


def _log_gaps(
    values: torch.Tensor, floor: float, cap: int | None
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Clamped logs of the examined top values, their consecutive gaps, and truncation.

    The gaps examined are ``x_k - x_{k+1}`` for ``k`` up to the last value above the
    floor (the gap down to the floor level) or ``n - 1``, whichever comes first, and at
    most ``cap``; below the floor every gap is zero, so nothing is lost. ``truncated``
    says that ``cap`` cut the search short.

    Returns:
        ``(logs, gaps, truncated)``.
    """
    top = float(values[0])
    if len(values) < 2 or top <= 0:
        empty = values[:0]
        return empty, empty, False
    level = floor * top
    full = min(int((values > level).sum()), len(values) - 1)
    examined = full if cap is None else min(cap, full)
    logs = torch.log(values[: examined + 1].clamp_min(level))
    return logs, logs[:-1] - logs[1:], examined < full


def _gap_count(
    rule: str, logs: torch.Tensor, gaps: torch.Tensor, count: int, truncated: bool
) -> OutlierCount:
    """The :class:`OutlierCount` of a log rule that splits after the ``count``-th value.

    Returns:
        The rule's :class:`OutlierCount`.
    """
    edge = math.exp(float(logs[count - 1] + logs[count]) / 2)
    capped = truncated and count == len(gaps)
    return OutlierCount(rule, count, float(gaps[count - 1]), edge, capped)


def class_mean_subspace(
    eigenvectors: Any, class_means: Any, *, fraction: float = 0.9
) -> OutlierCount:
    r"""The fewest leading eigenvectors whose span holds ``fraction`` of the class means.

    Papyan (2019, "Measurements of three-level hierarchical structure in the outliers in
    the spectrum of deepnet Hessians", ICML 2019, arXiv:1901.08244): the outliers of the
    Hessian are spanned by the ``c`` class means of the per-sample gradients, so the
    number of outliers is the dimension of the leading eigenspace that holds them. With
    ``V`` the orthonormal top eigenvectors, sorted by descending eigenvalue, and ``M`` the
    class means,

    .. math::

        \text{count} = \min \{ j : \|V_{:, :j}^\top M\|_F^2 / \|M\|_F^2
        \geq \text{fraction} \}.

    The criterion is energy-weighted on purpose: near a minimum the class means sum to
    about zero (the full gradient vanishes), so they span ``c - 1`` strong directions
    plus a near-null one dominated by noise, which an unweighted span would count. If
    ``fraction`` is not reached with all ``m`` vectors, the count is ``m`` and ``capped``
    is True: compute more eigenvectors. The comparison allows a rounding slack of
    ``4 m eps`` (``eps`` of the inputs' dtype), so ``fraction=1`` works for means that
    lie exactly in the span.

    Args:
        eigenvectors: ``(n, m)`` tensor or array with orthonormal columns, the eigenvectors
            of the ``m`` largest eigenvalues in descending order of eigenvalue.
        class_means: ``(n, c)`` tensor or array, one class-mean gradient per column (the
            ``loss_means`` of :func:`hesskit.spectrum.class_mean_gradients`), not all zero.
        fraction: the share of the class means' squared Frobenius norm to capture, in
            (0, 1]; default 0.9.

    Returns:
        The :class:`OutlierCount` of rule ``"class_mean_subspace"``: ``score`` is the
        captured fraction at the count, ``edge`` is None.

    Raises:
        TypeError: if an input is not real numbers, or ``fraction`` is not a number.
        ValueError: if a shape is wrong, the row counts differ, an input holds NaN/inf,
            the columns of ``eigenvectors`` are not orthonormal, ``class_means`` is zero,
            or ``fraction`` is not in (0, 1].

    Example:
        >>> import torch
        >>> basis = torch.eye(4, dtype=torch.float64)  # eigenvectors e_1 .. e_4
        >>> means = torch.tensor([[3.0, -3.0], [0.0, 1.0], [0.0, 0.0], [0.1, 0.0]])
        >>> result = class_mean_subspace(basis, means)
        >>> result.count, round(result.score, 3), result.edge, result.capped
        (1, 0.947, None, False)
        >>> class_mean_subspace(basis, means, fraction=0.99).count
        2
    """
    vectors, means, fraction, eps = _subspace_inputs(eigenvectors, class_means, fraction)
    return _class_mean_subspace(vectors, means, fraction, eps)


def _subspace_inputs(
    eigenvectors: Any, class_means: Any, fraction: Any
) -> tuple[torch.Tensor, torch.Tensor, float, float]:
    """Validated float64 eigenvectors and class means, ``fraction``, and the inputs' eps.

    Returns:
        ``(vectors, means, fraction, eps)``.

    Raises:
        TypeError: if an input is not real numbers.
        ValueError: if a shape, the rows, the orthonormality or the means are wrong.
    """
    vectors, eps_vectors = _as_float64("eigenvectors", eigenvectors, ndim=2)
    means, eps_means = _as_float64("class_means", class_means, ndim=2)
    fraction = _check_fraction(fraction)
    if vectors.shape[0] != means.shape[0]:
        msg = (
            f"eigenvectors {tuple(vectors.shape)} and class_means {tuple(means.shape)} must "
            "have the same number of rows (parameters); pass vectors in the same flat layout"
        )
        raise ValueError(msg)
    _checks.check_same_dtype_device("class_means", means, dtype=None, device=vectors.device)
    eps = max(eps_vectors, eps_means)
    _check_orthonormal(vectors, eps)
    if not bool(means.any()):
        msg = "class_means is all zeros: there is no class-mean energy to capture"
        raise ValueError(msg)
    return vectors, means, fraction, eps


def _class_mean_subspace(
    vectors: torch.Tensor, means: torch.Tensor, fraction: float, eps: float
) -> OutlierCount:
    """The subspace rule on checked float64 inputs (``eps``: the sources' rounding unit).

    Returns:
        The rule's :class:`OutlierCount`.
    """
    total = means.square().sum()
    captured = ((vectors.T @ means).square().sum(dim=1).cumsum(0) / total).cpu()
    m = vectors.shape[1]
    slack = 4 * m * eps  # rounding of m accumulated squared projections, relative
    reached = torch.nonzero(captured >= fraction - slack).flatten()
    count = int(reached[0]) + 1 if len(reached) else m
    score = float(captured[count - 1])
    return OutlierCount("class_mean_subspace", count, score, None, len(reached) == 0)


EDGE_WINDOW = 10
"""Default ``window`` of :func:`edge_gap`: bulk eigenvalues whose mean log-spacing sets the
scale a gap is measured against."""
EDGE_CONTRAST = 3.0
"""Default ``min_contrast`` of :func:`edge_gap`: a gap must be this many times the bulk's mean
log-spacing below it. Level repulsion makes a gap of four mean spacings inside a bulk rare
(Wigner's surmise puts it near ``exp(-4 pi)``), while the outliers' gap in the paper's
setup at k = 20, a ratio of about 1.3 over a bulk of thousands of eigenvalues, clears it."""


def edge_gap(
    eigenvalues: Any,
    *,
    window: int = EDGE_WINDOW,
    min_contrast: float = EDGE_CONTRAST,
    floor: float = 1e-3,
    max_outliers: int | None = None,
) -> OutlierCount:
    r"""Outliers above the lowest gap that stands out against the bulk's spacing below it.

    Sagun et al. (2017, arXiv:1706.04454, section 3.1, Table 1) count ``k`` outliers for
    ``k`` clusters up to ``k = 50``, where the gap to the bulk is a ratio of about 1.3: too
    small for a fixed log-gap threshold (:func:`lowest_log_gap`) and smaller than a
    dominant outlier's (:func:`largest_log_gap`). This rule measures each gap in units of
    the bulk's own eigenvalue spacing just below it, the top of the remaining spectrum
    being the bulk edge's estimate: sort descending, ``x_i = log(max(l_i, floor * l_1))``,
    and for each candidate count ``j``

    .. math::

        c_j = \frac{x_j - x_{j+1}}{(x_{j+1} - x_{j+1+w}) / w},

    the gap over the mean log-spacing of the ``w = window`` values below it. The count is
    the ``j`` with the largest contrast, 0 when no ``c_j`` reaches ``min_contrast``. A gap
    to a dense bulk has a large contrast however small the ratio (1.3 over a bulk whose
    top values are 1% apart is a contrast of about 26), a spectrum that thins out smoothly
    has every ``c_j`` near 1 and counts 0, and a gap inside a bulk's sparse top, a few
    times its neighbours, loses to the outliers' gap. Known failure: one outlier far above
    many outliers packed closer than the bulk's top (its contrast is measured against the
    outliers' spacing) takes the count; :func:`agreed_count`, which asks the class means
    which gap is the outliers', does not fail so. The count is invariant to a positive
    scaling of the spectrum. Unlike :func:`class_mean_subspace`, it needs an actual gap:
    alignment alone counts nothing.

    Args:
        eigenvalues: the top of the spectrum (or all of it): a 1-D tensor, array or
            sequence of real numbers, any order, at least ``window + 2`` values.
        window: the bulk values (>= 2) whose mean spacing scales each gap.
        min_contrast: the least ``c_j`` (> 1) that counts as a gap.
        floor: relative floor in (0, 1), a fraction of the largest eigenvalue; a
            candidate whose ``window`` values below reach it is not examined (the bulk's
            spacing is not measured there: for a bulk at zero, use
            :func:`lowest_log_gap`).
        max_outliers: the largest count to consider (>= 1); default and limit
            ``n - window - 1``, ``n`` the number of eigenvalues, so compute at least
            ``k + window + 1`` eigenvalues to count ``k``.

    Returns:
        The :class:`OutlierCount` of rule ``"edge_gap"``: ``score`` is ``c`` at the
        count (the largest ``c_j`` examined when the count is 0), ``edge`` the geometric
        midpoint of the deciding gap (``l_1`` when the count is 0), ``capped`` True when
        the count is the largest one examined.

    Raises:
        TypeError: if ``eigenvalues`` is not real numbers, or a keyword has a wrong type.
        ValueError: if ``eigenvalues`` is not 1-D, holds NaN/inf or fewer than
            ``window + 2`` values, its largest value is not positive, or a keyword is out
            of range.

    Example:
        >>> bulk = [1.0 - 0.01 * i for i in range(40)]
        >>> result = edge_gap([100.0, 10.0, 9.0, 8.0, 7.0, *bulk])
        >>> result.count, round(result.score, 1), result.capped
        (5, 184.7, False)
        >>> edge_gap(bulk).count  # no gap
        0
    """
    values = _sorted_eigenvalues(eigenvalues)
    window = _checks.check_int_in_range("window", window, low=2)
    min_contrast = _checks.check_positive_float("min_contrast", min_contrast)
    if min_contrast <= 1:
        msg = f"min_contrast must be > 1 (a gap larger than the bulk's spacing), got {min_contrast}"
        raise ValueError(msg)
    floor = _check_relative("floor", floor)
    limit = len(values) - window - 1
    if limit < 1:
        msg = (
            f"edge_gap needs at least window + 2 = {window + 2} eigenvalues, got {len(values)}; "
            "compute more eigenvalues or pass a smaller window"
        )
        raise ValueError(msg)
    if float(values[0]) <= 0:
        msg = f"the largest eigenvalue must be positive to take logs, got {float(values[0])}"
        raise ValueError(msg)
    if max_outliers is not None:
        limit = min(limit, _checks.check_int_in_range("max_outliers", max_outliers, low=1))
    contrast, logs = _edge_contrast(values, window, floor, limit)
    best = float(contrast.max())
    if best < min_contrast:
        return OutlierCount("edge_gap", 0, best, float(values[0]), False)
    count = int(torch.argmax(contrast)) + 1
    edge = math.exp(float(logs[count - 1] + logs[count]) / 2)
    return OutlierCount("edge_gap", count, float(contrast[count - 1]), edge, count == limit)


def _edge_contrast(
    values: torch.Tensor, window: int, floor: float, limit: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The contrasts ``c_j`` of :func:`edge_gap` for ``j = 1..limit``, and the clamped logs.

    Returns:
        ``(contrast, logs)``: ``c_j`` (inf for a gap over a flat bulk; 0 for no gap or
        a window that reaches the floor, where the bulk's spacing is not measured) and
        the logs of the values clamped at ``floor * l_1``.
    """
    level = floor * float(values[0])
    logs = torch.log(values.clamp_min(level))
    gaps = logs[:limit] - logs[1 : limit + 1]
    spacing = (logs[1 : limit + 1] - logs[1 + window : limit + 1 + window]) / window
    contrast = torch.where(spacing > 0, gaps / spacing.clamp_min(1e-300), math.inf)
    measured = (gaps > 0) & (values[1 + window : limit + 1 + window] > level)
    return torch.where(measured, contrast, 0.0), logs


def agreed_count(
    eigenvalues: Any,
    *,
    eigenvectors: Any,
    class_means: Any,
    gauss_newton: Any = None,
    window: int = EDGE_WINDOW,
    min_contrast: float = EDGE_CONTRAST,
    floor: float = 1e-3,
) -> OutlierCount:
    """The outlier count on which the gaps of ``H`` and ``G`` and the class means agree.

    The outliers of a trained classifier's Hessian ``H`` come from its Gauss-Newton part
    ``G`` and are spanned by the class means of the per-sample gradients (Papyan 2019,
    arXiv:1901.08244; Sagun et al. 2017, arXiv:1706.04454, section 3.1). A candidate
    count ``j`` is accepted when three views say the same:

    1. ``H`` has a gap after ``j``: its :func:`edge_gap` contrast ``c_j`` (the gap over the
       bulk's mean log-spacing below it) is at least ``min_contrast``;
    2. ``G`` has such a gap after ``j - 1``, ``j`` or ``j + 1`` (when ``gauss_newton`` is
       given; the softmax's ``k - 1`` against the class means' ``k``);
    3. the class means need the top ``j`` eigenvectors, or one more (the softmax's gap at
       ``k - 1`` below ``k`` class means): :func:`class_mean_subspace` at fraction
       ``1 - 1/(2j)`` counts ``j`` or ``j + 1``, not fewer (then the gap holds more
       outliers than the class means explain) nor more. That fraction is
       calibrated for every ``j``: means spread evenly over ``j`` directions need all
       ``j`` of them (``j - 1`` hold ``1 - 1/j``), where the fixed fraction 0.9 stops at
       ``ceil(0.9 j)`` (18 at j = 20, 45 at j = 50).

    The count is the largest accepted ``j`` (the lowest gap all three views see), or 0
    when none is accepted. So a gap the class means do not point at (a second group of
    outliers below them, a sparse bulk's top) does not decide, a dominant outlier above
    the others does not either, and a spectrum without a gap counts 0 however well the
    class means align with its top eigenvectors.

    Args:
        eigenvalues: the top Hessian eigenvalues (at least ``window + 2``), paired with
            ``eigenvectors``' columns.
        eigenvectors: ``(n, m)`` orthonormal eigenvectors of ``eigenvalues``.
        class_means: ``(n, c)`` class-mean gradients (:func:`class_mean_gradients`).
        gauss_newton: None, or the top eigenvalues of the Gauss-Newton matrix (at least
            ``window + 2``).
        window: as in :func:`edge_gap`.
        min_contrast: as in :func:`edge_gap`.
        floor: as in :func:`edge_gap`.

    Returns:
        The :class:`OutlierCount` of rule ``"agreed_count"``: ``score`` is ``c`` at the
        count (the largest ``c_j`` of ``H`` when the count is 0), ``edge`` the geometric
        midpoint of the deciding gap (``l_1`` when 0), ``capped`` True when the count is
        the largest one examined or the class means were not captured by all the
        eigenvectors.

    Raises:
        TypeError: as :func:`edge_gap` and :func:`class_mean_subspace`.
        ValueError: as :func:`edge_gap` and :func:`class_mean_subspace`, and when the
            number of eigenvectors differs from the number of eigenvalues.

    Example:
        >>> import torch
        >>> basis = torch.eye(60, dtype=torch.float64)  # eigenvectors e_1 .. e_60
        >>> values = [9.0, 8.0, 7.0, *torch.linspace(1, 0.5, 57).tolist()]
        >>> means = basis[:, :3] @ torch.eye(3, dtype=torch.float64)  # one per outlier
        >>> agreed_count(values, eigenvectors=basis, class_means=means).count
        3
    """
    # validates the eigenvalues and the keywords
    hessian = edge_gap(eigenvalues, window=window, min_contrast=min_contrast, floor=floor)
    values, _ = _as_float64("eigenvalues", eigenvalues, ndim=1)
    vectors, means, _, eps = _subspace_inputs(eigenvectors, class_means, 1.0)
    if vectors.shape[1] != len(values):
        msg = (
            f"eigenvectors has {vectors.shape[1]} columns but there are {len(values)} "
            "eigenvalues; pass the eigenpairs together"
        )
        raise ValueError(msg)
    order = torch.argsort(values.to(vectors.device), descending=True)
    sorted_values = values[order.cpu()]
    limit = len(values) - window - 1
    contrast, logs = _edge_contrast(sorted_values, window, floor, limit)
    accepted = (contrast >= min_contrast) & _subspace_agrees(vectors[:, order], means, eps, limit)
    if gauss_newton is not None:
        ggn, _ = _as_float64("gauss_newton", gauss_newton, ndim=1)
        accepted &= _gap_near(ggn, limit, window, min_contrast, floor)
    if not bool(accepted.any()):
        return OutlierCount("agreed_count", 0, hessian.score, float(sorted_values[0]), False)
    count = int(torch.nonzero(accepted).flatten()[-1]) + 1
    edge = math.exp(float(logs[count - 1] + logs[count]) / 2)
    return OutlierCount("agreed_count", count, float(contrast[count - 1]), edge, count == limit)


def _subspace_agrees(
    vectors: torch.Tensor, means: torch.Tensor, eps: float, limit: int
) -> torch.Tensor:
    """Per ``j = 1..limit``: does the subspace rule at ``1 - 1/(2j)`` count ``j`` or ``j + 1``?

    Returns:
        A boolean tensor of length ``limit``.
    """
    captured = ((vectors.T @ means).square().sum(dim=1).cumsum(0) / means.square().sum()).cpu()
    slack = 4 * vectors.shape[1] * eps
    j = torch.arange(1, limit + 1, dtype=_F64)
    targets = 1 - 1 / (2 * j) - slack
    # the subspace count at each target: the first i with captured[i - 1] >= target
    counts = torch.searchsorted(captured.contiguous(), targets.contiguous()) + 1
    return (counts - j >= 0) & (counts - j <= 1)


def _gap_near(
    values: torch.Tensor, limit: int, window: int, min_contrast: float, floor: float
) -> torch.Tensor:
    """Per ``j = 1..limit``: has ``values`` an edge-gap after ``j - 1``, ``j`` or ``j + 1``?

    Returns:
        A boolean tensor of length ``limit``.

    Raises:
        ValueError: as :func:`edge_gap`.
    """
    # the same checks as the Hessian's eigenvalues
    edge_gap(values, window=window, min_contrast=min_contrast, floor=floor)
    values = values.sort(descending=True).values
    own = len(values) - window - 1
    contrast, _ = _edge_contrast(values, window, floor, own)
    gap = torch.zeros(limit + 2, dtype=torch.bool)
    shared = min(own, limit + 1)
    gap[1 : shared + 1] = contrast[:shared] >= min_contrast
    return gap[:-2] | gap[1:-1] | gap[2:]


def count_outliers(
    eigenvalues: Any,
    *,
    eigenvectors: Any = None,
    class_means: Any = None,
    floor: float = 1e-3,
    min_gap: float = 1.0,
    fraction: float = 0.9,
) -> dict[str, OutlierCount]:
    """The outlier count of every rule that applies, keyed by rule name.

    The two log rules always apply (each with its default ``max_outliers``); the subspace
    rule only when both ``eigenvectors`` and ``class_means`` are given. Record them all:
    where they agree the count is robust, where they differ the spectrum says which
    failure mode is at play (a dominant outlier, a soft bulk edge).

    Args:
        eigenvalues: a non-empty 1-D tensor, array or sequence of real numbers, any order.
        eigenvectors: None, or the ``(n, m)`` orthonormal eigenvectors of ``eigenvalues``,
            column ``i`` paired with ``eigenvalues[i]`` (so ``m == len(eigenvalues)``);
            they are sorted together by descending eigenvalue.
        class_means: None, or the ``(n, c)`` class-mean gradients.
        floor: relative floor of the log rules, in (0, 1).
        min_gap: least significant log-gap of :func:`lowest_log_gap`.
        fraction: captured share of :func:`class_mean_subspace`, in (0, 1].

    Returns:
        ``{rule name: OutlierCount}`` in the order of :data:`RULES`, the subspace rule
        only when it applies.

    Raises:
        TypeError: if an input is not real numbers, or a keyword has a wrong type.
        ValueError: if only one of ``eigenvectors`` and ``class_means`` is given, the
            number of eigenvectors differs from the number of eigenvalues, or any rule
            rejects its input.

    Example:
        >>> bulk = [1.0 - 0.05 * i for i in range(10)]
        >>> counts = count_outliers([100.0, 10.0, 9.0, 8.0, 7.0, *bulk])
        >>> {rule: result.count for rule, result in counts.items()}
        {'largest_log_gap': 1, 'lowest_log_gap': 5}
    """
    values, _ = _as_float64("eigenvalues", eigenvalues, ndim=1)
    results = {
        "largest_log_gap": largest_log_gap(values, floor=floor),
        "lowest_log_gap": lowest_log_gap(values, min_gap=min_gap, floor=floor),
    }
    if (eigenvectors is None) != (class_means is None):
        msg = (
            "eigenvectors and class_means go together (the subspace rule needs both); "
            "pass both or neither"
        )
        raise ValueError(msg)
    if eigenvectors is not None:
        vectors, means, fraction, eps = _subspace_inputs(eigenvectors, class_means, fraction)
        if vectors.shape[1] != len(values):
            msg = (
                f"eigenvectors has {vectors.shape[1]} columns but there are {len(values)} "
                "eigenvalues; pass the eigenpairs together, or call class_mean_subspace "
                "directly with the top eigenvectors"
            )
            raise ValueError(msg)
        order = torch.argsort(values.to(vectors.device), descending=True)
        results["class_mean_subspace"] = _class_mean_subspace(
            vectors[:, order], means, fraction, eps
        )
    return results


NEAR_ZERO = 1e-3
"""Default threshold of :func:`near_zero_fraction`, relative to ``max |lambda|``: the order of
the negative eigenvalues against the outliers near a minimum (Sagun et al. 2017, section 3)."""


def near_zero_fraction(eigenvalues: Any, *, relative: float = NEAR_ZERO) -> float:
    """The fraction of eigenvalues with ``|lambda| <= relative * max |lambda|``.

    The project's one definition of "near zero". Relative, not absolute, because a
    Hessian's scale is arbitrary: it changes with the loss's scale, the data's scale and
    the parametrisation, while the shape of its spectrum (a bulk at zero, a few outliers)
    does not; relative to the largest magnitude the fraction is invariant to scaling.
    Compute the spectrum in float64 when ``relative`` is small: in float32 an exact zero
    eigenvalue comes out as rounding noise of about ``1e-7 * max |lambda|`` or more
    (Hessian-vector products and Lanczos both round), so thresholds under about ``1e-5``
    count noise, not structure.

    Args:
        eigenvalues: a non-empty 1-D tensor, array or sequence of real numbers.
        relative: the threshold as a fraction of the largest magnitude, in (0, 1).

    Returns:
        The fraction in [0, 1]; 1.0 for an all-zero spectrum.

    Raises:
        TypeError: if ``eigenvalues`` is not real numbers or ``relative`` not a number.
        ValueError: if ``eigenvalues`` is not 1-D, is empty or holds NaN/inf, or
            ``relative`` is not in (0, 1).

    Example:
        >>> near_zero_fraction([-1e-9, 0.0, 2e-4, 0.5, 1.0])
        0.6
    """
    values, _ = _as_float64("eigenvalues", eigenvalues, ndim=1)
    relative = _check_relative("relative", relative)
    magnitudes = values.abs()
    near = magnitudes <= relative * float(magnitudes.max())
    return float(near.sum()) / len(values)


def _sorted_eigenvalues(eigenvalues: Any) -> torch.Tensor:
    """``eigenvalues`` validated, as float64, sorted descending.

    Returns:
        The sorted float64 tensor.
    """
    return _as_float64("eigenvalues", eigenvalues, ndim=1)[0].sort(descending=True).values


def _as_float64(name: str, value: Any, *, ndim: int) -> tuple[torch.Tensor, float]:
    """``value`` as a finite, non-empty float64 tensor of ``ndim`` dims, and its source eps.

    Accepts real torch tensors (kept on their device), numpy arrays and (nested) sequences
    of numbers. The eps is that of the source dtype (float64's for integers and
    sequences), for rounding slacks.

    Returns:
        ``(tensor, eps)``.

    Raises:
        TypeError: if ``value`` is not real numbers.
        ValueError: if it is not finite, empty or of another dimension.
    """
    if isinstance(value, torch.Tensor):
        if value.is_complex() or value.dtype == torch.bool:
            msg = f"{name} must hold real numbers, got a tensor of dtype {value.dtype}"
            raise TypeError(msg)
        source = value.dtype if value.is_floating_point() else _F64
        tensor = value.detach().to(_F64)
    else:
        source, tensor = _F64, _numpy_as_float64(name, value)
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            source = {2: torch.float16, 4: torch.float32}.get(value.dtype.itemsize, _F64)
    shape = "(n,)" if ndim == 1 else "(n, m)"
    if tensor.ndim != ndim or tensor.numel() == 0:
        msg = f"{name} must be a non-empty {ndim}-D array {shape}, got shape {tuple(tensor.shape)}"
        raise ValueError(msg)
    if not bool(torch.isfinite(tensor).all()):
        msg = f"{name} must be finite, but it holds NaN or inf"
        raise ValueError(msg)
    return tensor, float(torch.finfo(source).eps)


def _numpy_as_float64(name: str, value: Any) -> torch.Tensor:
    """A numpy array or a sequence of real numbers as a float64 CPU tensor.

    Returns:
        The float64 CPU tensor.

    Raises:
        TypeError: if ``value`` is not real numbers.
    """
    if not isinstance(value, (np.ndarray, Sequence)) or isinstance(value, (str, bytes)):
        msg = (
            f"{name} must be a torch.Tensor, a numpy array or a sequence of real numbers, "
            f"got {type(value).__name__}"
        )
        raise TypeError(msg)
    array = np.asarray(value)
    if array.dtype.kind not in "fiu":
        msg = f"{name} must hold real numbers, got an array of dtype {array.dtype}"
        raise TypeError(msg)
    return torch.from_numpy(array.astype(np.float64))


def _check_orthonormal(vectors: torch.Tensor, eps: float) -> None:
    """Raise unless ``V^T V = I`` to ``10 sqrt(eps)`` (eigensolvers' vectors pass easily).

    Raises:
        ValueError: if the columns are not orthonormal, or there are more columns than rows.
    """
    m = vectors.shape[1]
    if m > vectors.shape[0]:
        msg = f"eigenvectors has more columns ({m}) than rows ({vectors.shape[0]})"
        raise ValueError(msg)
    gram = vectors.T @ vectors
    error = float((gram - torch.eye(m, dtype=_F64, device=vectors.device)).abs().max())
    tolerance = 10 * math.sqrt(eps)  # loose: Ritz vectors are orthonormal to ~eps * m
    if error > tolerance:
        msg = (
            f"eigenvectors must have orthonormal columns, but max |V^T V - I| = {error:.2e} "
            f"> {tolerance:.1e}; pass the eigenvectors of a symmetric eigensolver "
            "(hesskit.eigsh(...).eigenvectors or torch.linalg.eigh)"
        )
        raise ValueError(msg)


def _check_relative(name: str, value: Any) -> float:
    """Return ``value`` if it is a number in (0, 1).

    Returns:
        ``value`` as a float.

    Raises:
        ValueError: if it is not in (0, 1).
    """
    value = _checks.check_positive_float(name, value)
    if value >= 1:
        msg = f"{name} must be in (0, 1) (a fraction of the largest eigenvalue), got {value}"
        raise ValueError(msg)
    return value


def _check_fraction(fraction: Any) -> float:
    """Return ``fraction`` if it is a number in (0, 1].

    Returns:
        ``fraction`` as a float.

    Raises:
        ValueError: if it is not in (0, 1].
    """
    fraction = _checks.check_positive_float("fraction", fraction)
    if fraction > 1:
        msg = f"fraction must be in (0, 1] (a share of the class means' energy), got {fraction}"
        raise ValueError(msg)
    return fraction
