"""Reference numbers from the literature, each with its provenance. No other module inlines one.

Energies are per spin, ``H/N``, for the pure spherical p-spin glass of
:class:`hesskit.problems.SphericalSpinGlass`:
``H(w) = N^{-(p-1)/2} sum J_{i1..ip} w_{i1}...w_{ip}``, ``|w|^2 = N``, i.i.d. standard normal
``J``, so that ``E[H(w)^2] = N`` and ``E[H(w) H(w')] = N (w.w'/N)^p`` (the normalisation of
Auffinger, Ben Arous and Černý 2013, and of Sagun et al. 2014, arXiv:1412.6615).

Each entry is a :class:`Reference`; look them up by ``p`` in :data:`THRESHOLD_ENERGY`
and :data:`GROUND_STATE_ENERGY`. The numbers that only the claims use (Sagun et al.
2017) live next to them, in ``claims/reference.py``.
"""

from __future__ import annotations

from typing import NamedTuple


class Reference(NamedTuple):
    """A number from a paper.

    Attributes:
        value: the number, in the units stated by the dict it lives in.
        source: the paper (authors, year, venue or arXiv id, section).
        note: how it was obtained and how precise it is.
    """

    value: float
    source: str
    note: str


_ABC = (
    "Auffinger, Ben Arous, Černý (2013), Random matrices and complexity of spin glasses, "
    "Comm. Pure Appl. Math. 66(2):165-201, arXiv:1003.1129, section 2"
)

THRESHOLD_ENERGY: dict[int, Reference] = {
    3: Reference(
        value=-1.633,
        source=_ABC,
        note=(
            "-E_inf(p) = -2 sqrt((p-1)/p) = -2 sqrt(2/3) = -1.63299...; below it the critical "
            "points are exponentially dominated by local minima; the band that gradient "
            "descent reaches in Sagun et al. (2014, arXiv:1412.6615) sits near it"
        ),
    ),
    4: Reference(
        value=-1.732,
        source=_ABC,
        note="-E_inf(4) = -2 sqrt(3/4) = -sqrt(3) = -1.73205...",
    ),
}
"""Threshold energy per spin ``-E_inf(p)``, keyed by ``p``."""

GROUND_STATE_ENERGY: dict[int, Reference] = {
    3: Reference(
        value=-1.657,
        source=_ABC + "; equality with the ground state: Subag (2017), arXiv:1504.02251",
        note=(
            "-E_0(p), the zero of the complexity of local minima Theta_{0,p}(u) of "
            "Auffinger et al. (2013); hesskit's tests recompute the root with "
            "scipy.optimize.brentq: -1.65700 (3 decimals kept)"
        ),
    ),
    4: Reference(
        value=-1.794,
        source=_ABC + "; equality with the ground state: Subag (2017), arXiv:1504.02251",
        note=(
            "-E_0(4), the zero of Theta_{0,4}(u), recomputed by hesskit's tests with "
            "scipy.optimize.brentq: -1.79409 (3 decimals kept)"
        ),
    ),
}
"""Ground-state (minimum) energy per spin ``-E_0(p)`` as ``N -> infinity``, keyed by ``p``."""
