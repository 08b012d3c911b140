"""hesskit: curvature of neural-network loss surfaces on the GPU and the CPU.

Layers (imports point down): the objective (the mean loss of a model over a data set
as a function of a flat parameter vector, with every check of model, loss and data) ->
operators (Hessian, GGN, gradient covariance of a model,
loss and data, or of f(theta)) -> algorithms on any symmetric operator (eigensolvers,
spectral density, trace) -> spectrum analysis (bulk vs outliers) and landscape paths
-> curvature during training (:mod:`hesskit.track`) -> ready-made problems and trainers
used by the claims suite; the command line (:mod:`hesskit.cli`) on top.
"""

from importlib.metadata import version as _version

from hesskit import landscape, problems, spectrum, track, train
from hesskit.density import SpectralDensity, spectral_density
from hesskit.eigen import EigenResult, eigsh, power_iteration
from hesskit.objective import Objective
from hesskit.operators import (
    DenseOperator,
    FunctionHessian,
    GaussNewton,
    GradientCovariance,
    IdentityOperator,
    LinearCombination,
    LinearOperator,
    MeanGradientOuterProduct,
    ModelHessian,
    as_operator,
    dense,
    ggn,
    gradient_covariance,
    hessian,
)
from hesskit.trace_estimation import TraceEstimate, trace

__version__ = _version("hesskit")
"""The installed version (one source: ``pyproject.toml``)."""

__all__ = [
    "__version__",
    # the objective and the operators on it
    "Objective",
    "DenseOperator",
    "FunctionHessian",
    "GaussNewton",
    "GradientCovariance",
    "IdentityOperator",
    "LinearCombination",
    "LinearOperator",
    "MeanGradientOuterProduct",
    "ModelHessian",
    "as_operator",
    "dense",
    "ggn",
    "gradient_covariance",
    "hessian",
    # eigensolvers
    "EigenResult",
    "eigsh",
    "power_iteration",
    # spectral density and trace
    "SpectralDensity",
    "TraceEstimate",
    "spectral_density",
    "trace",
    # bulk and outliers; loss along paths and planes; curvature during training;
    # ready-made problems and trainers
    "landscape",
    "problems",
    "spectrum",
    "track",
    "train",
]
