"""Seed lists of the claims, shifted by ``--claims-seed-offset`` to re-run on fresh seeds.

Every module keeps its seeds as fixed, pre-registered lists (claim seeds and pilot seeds
apart). :func:`fresh` maps them to the same lists at another offset: offset 0 is the
pre-registered run, offset ``m`` adds ``m * SEED_STRIDE`` to every seed. Every seed of the
suite is below ``SEED_STRIDE``, so the seeds of two offsets never meet and every quantity
drawn from a seed -- data, initialisation, couplings, minibatch order -- is new.
"""

from __future__ import annotations

from collections.abc import Iterable

SEED_STRIDE = 1_000_000_000
"""The distance between the seed sets of consecutive offsets."""

PREREGISTERED_OFFSETS = (0, 1, 2)
"""The seed offsets at which every decision was run and written down as the claim's
``expected`` outcome: a different decision there fails its test. At any other offset a
different decision is recorded (and the merged table calls it ``undecided``), but the
test does not fail: a fresh seed set gives a decision, never an error."""


def fresh(seeds: Iterable[int], offset: int) -> tuple[int, ...]:
    """``seeds`` shifted to the seed set of ``offset`` (0 returns them unchanged).

    Example:
        >>> fresh((10, 11), 0), fresh((10, 11), 2)
        ((10, 11), (2000000010, 2000000011))
    """
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        msg = f"offset must be an int >= 0 (--claims-seed-offset), got {offset!r}"
        raise ValueError(msg)
    return tuple(int(seed) + offset * SEED_STRIDE for seed in seeds)


def stream(seed: int, role: int) -> int:
    """An independent seed for one ``role`` of a run (data, initialisation, minibatch
    order, a random subspace...), derived from the run's ``seed`` by NumPy's
    ``SeedSequence`` so that the roles' random streams do not overlap, as ``seed + c`` or
    two generators seeded with ``seed`` would.

    Example:
        >>> stream(0, 1) != stream(0, 2) != stream(1, 1)
        True
    """
    import numpy as np

    return int(np.random.SeedSequence([int(seed), int(role)]).generate_state(1)[0])
