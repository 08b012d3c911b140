"""Small seeded trainers: networks to a target loss, and gradient descent on the spin glass."""

from hesskit.train.digits import trained_digits_network
from hesskit.train.networks import TrainResult, adam, gradient_descent, sgd
from hesskit.train.spherical import SpinGlassRun, spherical_gradient_descent

__all__ = [
    # networks
    "TrainResult",
    "adam",
    "gradient_descent",
    "sgd",
    # the digits networks W1-W3 of the benchmarks, demo and tests
    "trained_digits_network",
    # spin glass
    "SpinGlassRun",
    "spherical_gradient_descent",
]
