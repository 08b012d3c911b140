"""The claims' one home for figures: saving, and the drawings several claims share.

matplotlib is imported inside each function (the Agg backend), so importing a claim
module stays cheap and never opens a display.
"""

from __future__ import annotations

import pathlib


def pyplot():
    """matplotlib's pyplot on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, report_dir: pathlib.Path | None, name: str) -> None:
    """Write ``figure`` as ``report_dir/name.png`` when a report folder was asked for."""
    if report_dir is not None:
        figure.savefig(report_dir / f"{name}.png", dpi=120, bbox_inches="tight")
    pyplot().close(figure)
