"""Eigensolvers for a few extreme eigenpairs: thick-restart Lanczos and the power baseline."""

from hesskit.eigen.lanczos import eigsh
from hesskit.eigen.power import power_iteration
from hesskit.eigen.result import EigenResult

__all__ = ["EigenResult", "eigsh", "power_iteration"]
