"""Progress reports of long computations, counted in operator products.

``eigsh``, ``spectral_density``, ``trace`` and ``landscape.plane`` take ``progress=``:

- ``None`` or ``False``: no report (the default);
- ``True``: a tqdm bar on stderr with products done, rate and ETA; tqdm turns it off when
  stderr is not a terminal;
- a callable ``progress(done, total)``: called after every product (every loss evaluation
  for ``plane``) with the work done so far and the budget. ``total`` is a bound: an
  eigensolver that converges early stops below it.

The callback is what the command line uses (one bar per part, off with ``--quiet``), and
what a user's own logger or notebook widget can hook into.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

Callback = Callable[[int, int], None]
"""``progress(done, total)``: work done so far and the budget it counts towards."""


class ProgressBar:
    """A tqdm bar driven as a progress callback; :meth:`close` shows the work actually done.

    Args:
        desc: the bar's label.
        unit: what is counted.
        disable: True hides the bar; None (default) hides it when stderr is not a terminal.
    """

    def __init__(self, desc: str, *, unit: str = "products", disable: bool | None = None):
        from tqdm import tqdm

        self._bar = tqdm(desc=desc, unit=unit, disable=disable, leave=True, dynamic_ncols=True)

    def __call__(self, done: int, total: int) -> None:
        """Move the bar to ``done`` of ``total``."""
        if self._bar.total != total:
            self._bar.total = total
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        """End the bar at the work done (an early stop shows as complete, not as 5%)."""
        self._bar.total = self._bar.n
        self._bar.refresh()
        self._bar.close()


def _ignore(done: int, total: int) -> None:
    """The callback of ``progress=None``: nothing."""


@contextlib.contextmanager
def reporting(progress: Any, desc: str, *, unit: str = "products") -> Iterator[Callback]:
    """The callback for a ``progress=`` argument, and a bar's cleanup when it made one.

    Yields:
        The callback ``report(done, total)``: a no-op for None or False, a tqdm bar's update
        for True, ``progress`` itself for a callable. A bar made here is closed on exit.

    Raises:
        TypeError: if ``progress`` is neither None, a bool nor a callable.
    """
    if progress is None or progress is False:
        yield _ignore
    elif progress is True:
        bar = ProgressBar(desc, unit=unit)
        try:
            yield bar
        finally:
            bar.close()
    elif callable(progress):
        yield progress
    else:
        msg = (
            "progress must be None, True/False or a callable progress(done, total), got "
            f"{type(progress).__name__} {progress!r}"
        )
        raise TypeError(msg)
