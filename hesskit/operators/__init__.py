"""Curvature operators of (model, loss, data) or of a function f(theta), and the protocol."""

from hesskit.operators.base import DenseOperator, LinearOperator, as_operator, dense

__all__ = ["DenseOperator", "LinearOperator", "as_operator", "dense"]
