"""Curvature operators of (model, loss, data) or of a function f(theta), and the protocol."""

from hesskit.operators.base import (
    DenseOperator,
    IdentityOperator,
    LinearCombination,
    LinearOperator,
    as_operator,
    dense,
)
from hesskit.operators.ggn import GaussNewton, ggn
from hesskit.operators.gradient_covariance import (
    GradientCovariance,
    MeanGradientOuterProduct,
    gradient_covariance,
)
from hesskit.operators.hessian import FunctionHessian, ModelHessian, hessian

__all__ = [
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
]
