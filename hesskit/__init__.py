"""hesskit: curvature of neural-network loss surfaces on the GPU and the CPU."""

from hesskit.operators import DenseOperator, LinearOperator, as_operator, dense

__all__ = ["DenseOperator", "LinearOperator", "as_operator", "dense"]
