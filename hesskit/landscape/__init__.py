"""The loss along paths between solutions, and symmetric copies of networks."""

from hesskit.landscape.paths import LinearPath, interpolate
from hesskit.landscape.symmetry import permute_hidden_units

__all__ = [
    "LinearPath",
    "interpolate",
    "permute_hidden_units",
]
