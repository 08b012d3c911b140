"""Small seeded trainers: networks to a target loss, and gradient descent on the spin glass."""

from hesskit.train.networks import TrainResult, adam, gradient_descent, sgd
from hesskit.train.spherical import SpinGlassRun, spherical_gradient_descent

__all__ = [
    # networks
    "TrainResult",
    "adam",
    "gradient_descent",
    "sgd",
    # spin glass
    "SpinGlassRun",
    "spherical_gradient_descent",
]
