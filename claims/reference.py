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

SAGUN2017_NEGATIVE_EIGENVALUE = Reference(
    value=-7e-5,
    source=_SEGDB + ", section 3 (the spectrum at the end of training)",
    note=(
        "the negative eigenvalues that remain at the end of training, about -7e-5 against "
        "outliers of about 8e-2 (a ratio of about 1e-3); as transcribed in the project's "
        "shared/claims.md. NOT read off the paper: on 2026-12-06 the stored copies of the "
        "paper that could be searched gave only its abstract and introduction, and a "
        "figure's values cannot be read from text, so the number is unverified and no "
        "claim takes its level from it"
    ),
)
"""Sagun et al. (2017): the size of the negative eigenvalues left at the end of training."""

_CKLKT = (
    "Cohen, Kaur, Li, Kolter, Talwalkar (2021), Gradient descent on neural networks "
    "typically occurs at the edge of stability, ICLR 2021, arXiv:2103.00065"
)

COHEN2021_EDGE = Reference(
    value=1.0,
    source=_CKLKT + ", abstract and Figure 1 caption",
    note=(
        "lambda_max * eta / 2 at the edge of stability: the sharpness 'hovers just above' "
        "2/eta (abstract), 'right at, or just above, this value' (Figure 1); the paper gives "
        "no tolerance, so a claim's band around 1 is that claim's own choice"
    ),
)
"""The edge of stability of Cohen et al. (2021): sharpness times step size over 2."""

COHEN2021_SETUP = Reference(
    value=5000,
    source=_CKLKT + ", section 3, Figure 1",
    note=(
        "training samples of the main setting: a 5,000-sample subset of CIFAR-10, a "
        "fully connected tanh network with two hidden layers, the squared loss on one-hot "
        "targets, full-batch GD at several step sizes (the width, 200, is transcribed from "
        "the paper's appendix from memory and was not re-checked against the text)"
    ),
)
"""The main experimental setting of Cohen et al. (2021)."""

_DPGCGB = (
    "Dauphin, Pascanu, Gulcehre, Cho, Ganguli, Bengio (2014), Identifying and attacking "
    "the saddle point problem in high-dimensional non-convex optimization, NeurIPS 2014, "
    "arXiv:1406.2572"
)
_PB = (
    "Pennington, Bahri (2017), Geometry of neural network loss surfaces via random matrix "
    "theory, ICML 2017 (PMLR 70)"
)

DAUPHIN2014_INDEX_GROWS = Reference(
    value=1.0,
    source=_DPGCGB + ", section 4, figure 1",
    note=(
        "qualitative (value 1 = 'yes'): the critical points that Newton's method finds on "
        "small MLPs (down-sampled MNIST and CIFAR-10) lie on a rising curve of training "
        "error against index, the fraction of negative Hessian eigenvalues; no number is "
        "transcribed (the figure was not re-read here)"
    ),
)
"""Dauphin et al. (2014): the index of critical points rises with their training error."""

PENNINGTON2017_INDEX_EXPONENT = Reference(
    value=1.5,
    source=_PB + ", abstract and the section on the index of critical points",
    note=(
        "for critical points of small index the index grows as |epsilon - epsilon_c|^(3/2), "
        "epsilon the energy (loss) and epsilon_c the energy where the index vanishes; "
        "predicted by their random-matrix model and supported by their simulations "
        "(abstract: 'the number of negative eigenvalues scales like the 3/2 power of the "
        "energy')"
    ),
)
"""Pennington and Bahri (2017): the exponent of the index against the energy above epsilon_c."""

PENNINGTON2017_WIDTH = Reference(
    value=16,
    source=_PB + ", experiments section",
    note=(
        "single-hidden-layer tanh networks of width n = 16, also the input and output "
        "dimension, on standard normal random inputs and targets (a memorisation task), "
        "critical points found by minimising the squared gradient norm; transcribed from a "
        "third-party summary of the paper's experimental setup, not from the paper itself"
    ),
)
"""Pennington and Bahri (2017): the width of their single-hidden-layer networks."""
