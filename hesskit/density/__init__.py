"""Spectral densities by stochastic Lanczos quadrature (Ubaru, Chen, Saad 2017)."""

from hesskit.density.result import SpectralDensity
from hesskit.density.slq import memory_estimate, spectral_density

__all__ = ["SpectralDensity", "memory_estimate", "spectral_density"]
