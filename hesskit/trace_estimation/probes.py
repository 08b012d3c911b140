"""Random probe vectors for stochastic trace and density estimation."""

from __future__ import annotations

import torch

from hesskit import _checks


def rademacher(
    n: int,
    k: int,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    generator: torch.Generator | int | None = None,
) -> torch.Tensor:
    """Return an ``(n, k)`` block of independent Rademacher (+-1) entries.

    Rademacher probes minimise the variance of Hutchinson's estimator among i.i.d. probes
    with unit-variance entries (Hutchinson 1989; Avron & Toledo 2011, J. ACM 58(2)).

    Args:
        n: number of rows (the operator's dimension).
        k: number of probes (columns).
        dtype: floating dtype of the result.
        device: device of the result (default: CPU).
        generator: a ``torch.Generator``, an int seed, or None (seed 0).

    Example:
        >>> block = rademacher(4, 2, generator=0)
        >>> block.shape, bool((block.abs() == 1).all())
        (torch.Size([4, 2]), True)
    """
    device = torch.device("cpu") if device is None else torch.device(device)
    gen = _checks.make_generator(generator, device)
    bits = torch.randint(0, 2, (n, k), generator=gen, device=device)
    return bits.to(dtype) * 2 - 1
