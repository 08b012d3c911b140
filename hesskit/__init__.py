"""hesskit: curvature of neural-network loss surfaces on the GPU and the CPU."""

from hesskit.operators import (
    DenseOperator,
    FunctionHessian,
    GaussNewton,
    GradientCovariance,
    LinearOperator,
    ModelHessian,
    as_operator,
    dense,
    ggn,
    gradient_covariance,
    hessian,
)

__all__ = [
    # operators
    "DenseOperator",
    "FunctionHessian",
    "GaussNewton",
    "GradientCovariance",
    "LinearOperator",
    "ModelHessian",
    "as_operator",
    "dense",
    "ggn",
    "gradient_covariance",
    "hessian",
]
