"""Bulk and outliers of a spectrum (Sagun et al. 2016, arXiv:1611.07476; 2017, 1706.04454).

Split a spectrum (:func:`split`), count its outliers by several named rules
(:func:`count_outliers`), and compute the class-mean gradients that span the outliers
(Papyan 2019, arXiv:1901.08244; :func:`class_mean_gradients`).
"""

from hesskit.spectrum.counting import (
    NEAR_ZERO,
    OutlierCount,
    agreed_count,
    class_mean_subspace,
    count_outliers,
    edge_gap,
    largest_log_gap,
    lowest_log_gap,
    near_zero_fraction,
)
from hesskit.spectrum.counting import RULES as COUNTING_RULES
from hesskit.spectrum.gradients import ClassMeanGradients, class_mean_gradients
from hesskit.spectrum.outliers import RULES, SpectrumSplit, split

__all__ = [
    # split into bulk and outliers
    "RULES",
    "SpectrumSplit",
    "split",
    # outlier counts by named rules
    "COUNTING_RULES",
    "OutlierCount",
    "class_mean_subspace",
    "count_outliers",
    "edge_gap",
    "agreed_count",
    "largest_log_gap",
    "lowest_log_gap",
    "NEAR_ZERO",
    "near_zero_fraction",
    # class-mean gradients (Papyan 2019)
    "ClassMeanGradients",
    "class_mean_gradients",
]
