"""Ready-made, seeded problems.

Data, loss and model factories, the digits networks of the benchmarks, and the spherical
spin glass. Nothing here trains (:mod:`hesskit.train` does), so the problems never import
the trainers.

Reference numbers from the literature (threshold and ground-state energies) live in
:mod:`hesskit.problems.reference`, each with its provenance.
"""

from hesskit.problems import reference
from hesskit.problems.base import Problem, mean_squared_error, mlp
from hesskit.problems.datasets import digits, gaussian_mixture, teacher_student
from hesskit.problems.digits_networks import DIGITS_ARCHITECTURES, digits_architecture
from hesskit.problems.spin_glass import SphericalSpinGlass

__all__ = [
    # problems of networks
    "Problem",
    "digits",
    "gaussian_mixture",
    "mean_squared_error",
    "mlp",
    "teacher_student",
    # the digits networks W1-W3 of the benchmarks, demo and tests (trained by
    # hesskit.train.trained_digits_network)
    "DIGITS_ARCHITECTURES",
    "digits_architecture",
    # random landscapes
    "SphericalSpinGlass",
    "reference",
]
