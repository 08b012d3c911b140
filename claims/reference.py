"""Paper numbers that the sagun2017 claims use, each with its provenance.

The spin-glass energies that the library's own tests also use live in
:mod:`hesskit.problems.reference`; this module holds the numbers only the claims read.
"""

from __future__ import annotations

from hesskit.problems.reference import Reference

_SEGDB = (
    "Sagun, Evci, Güney, Dauphin, Bottou (2017), Empirical analysis of the Hessian of "
    "over-parametrized neural networks, arXiv:1706.04454"
)

SAGUN2017_OUTLIER_COUNTS: dict[tuple[int, int], Reference] = {
    (20, 1): Reference(
        value=4,
        source=_SEGDB + ", section 3.1, Table 1",
        note=(
            "outliers of the Hessian of a 100-30-30-k softmax network on k = 20 Gaussian "
            "clusters by the first of the paper's three counting rules; as transcribed in "
            "the project's shared/claims.md (the other rows of Table 1 are not transcribed)"
        ),
    ),
    (20, 2): Reference(
        value=21,
        source=_SEGDB + ", section 3.1, Table 1",
        note="the same network, k = 20, second counting rule (transcribed as above)",
    ),
    (20, 3): Reference(
        value=21,
        source=_SEGDB + ", section 3.1, Table 1",
        note=(
            "the same network, k = 20, third counting rule (transcribed as above); the rules "
            "disagree (4, 21, 21), so the paper supports a count within about one of k"
        ),
    ),
}
"""Outlier counts of Sagun et al. (2017), keyed by ``(k, counting rule 1..3)``."""
