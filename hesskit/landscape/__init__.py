"""Loss landscapes: the loss along paths, on planes and lines, and symmetric networks.

The loss along paths between solutions, on planes and lines through a solution, and
symmetric copies of a network (a permutation of its hidden units).
"""

from hesskit.landscape.paths import LinearPath, interpolate
from hesskit.landscape.plane import LossPlane, LossProfile, plane, plot_plane, profile
from hesskit.landscape.symmetry import permute_hidden_units

__all__ = [
    "LinearPath",
    "LossPlane",
    "LossProfile",
    "interpolate",
    "permute_hidden_units",
    "plane",
    "plot_plane",
    "profile",
]
