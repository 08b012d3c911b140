"""Stochastic trace estimation: Hutchinson (1989) and Hutch++ (Meyer et al. 2021)."""

from hesskit.trace_estimation.estimators import METHODS, TraceEstimate, trace
from hesskit.trace_estimation.probes import rademacher

__all__ = ["METHODS", "TraceEstimate", "rademacher", "trace"]
