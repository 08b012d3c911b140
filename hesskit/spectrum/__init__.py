"""Bulk and outliers of a spectrum (Sagun et al. 2016, arXiv:1611.07476; 2017, 1706.04454)."""

from hesskit.spectrum.outliers import RULES, SpectrumSplit, split

__all__ = ["RULES", "SpectrumSplit", "split"]
