"""The command line's figures.

The spectral density with its outliers, the top eigenvalues, and a sweep's sharpness,
trace and outlier count over the checkpoints.

Drawn with matplotlib's object-oriented API on an Agg canvas (no pyplot, no global backend
switched), small PNGs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from hesskit.density import SpectralDensity

DPI = 110


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def density_figure(record: dict[str, Any], path: Path) -> None:
    """The SLQ density on a log scale, the outliers as red lines, the top eigenvalues as ticks."""
    part = record["density"]
    nodes = torch.tensor(part["nodes"], dtype=torch.float64)
    weights = torch.tensor(part["weights"], dtype=torch.float64)
    density = SpectralDensity(nodes, weights, part["num_matvecs"], record["num_parameters"])
    grid = density.grid(num_points=600)
    values = density.density(grid)
    fig = _figure(6.4, 3.4)
    ax = fig.add_subplot()
    ax.plot(grid.numpy(), values.numpy(), color="C0", label="density (SLQ)")
    ax.set_yscale("log")
    ax.set_ylim(float(values.max()) * 1e-4, float(values.max()) * 3)
    split = record["outliers"]
    if split is not None and not split["at_cap"]:
        for index, value in enumerate(split["outliers"]):
            label = f"outliers ({split['num_outliers']})" if index == 0 else None
            ax.axvline(value, color="C3", linewidth=1, label=label)
        ax.axvline(split["edge"], color="C3", linestyle=":", linewidth=1, label="bulk edge")
    if record["top"] is not None:
        top = record["top"]["eigenvalues"]
        ax.plot(top, [ax.get_ylim()[0]] * len(top), "|", color="k", ms=10, label="top (Lanczos)")
    ax.set_xlabel("Hessian eigenvalue")
    ax.set_ylabel("density")
    ax.set_title(_title(record), fontsize=9)
    ax.legend(fontsize=8)
    fig.savefig(path)


def eigenvalues_figure(record: dict[str, Any], path: Path) -> None:
    """The top (and bottom) eigenvalues by rank, with their residual norms as error bars."""
    fig = _figure(6.4, 3.0)
    ax = fig.add_subplot()
    for part, marker in (("top", "o"), ("bottom", "s")):
        result = record[part]
        if result is not None:
            ranks = range(1, len(result["eigenvalues"]) + 1)
            ax.errorbar(
                ranks, result["eigenvalues"], yerr=result["residuals"], fmt=marker, label=part
            )
    ax.axhline(0, color="0.6", linewidth=0.8)
    ax.set_xlabel("rank")
    ax.set_ylabel("eigenvalue")
    ax.set_title(_title(record), fontsize=9)
    ax.legend(fontsize=8)
    fig.savefig(path)


def sweep_figure(rows: list[dict[str, Any]], path: Path) -> bool:
    """Plot lambda_max, the trace and the outlier count over the checkpoints, in sweep order.

    Nothing is drawn where the records hold none of them (``--top 0 --bottom K``).

    A count at the rule's cap is a lower bound: an open marker, "N or more" in the legend.

    Returns:
        True if the figure was written to ``path``; False (and no file) where the records
        hold none of the three.
    """
    from matplotlib.ticker import MaxNLocator

    panels = [
        ("lambda_max", "lambda_max"),
        ("trace", "trace"),
        ("num_outliers", "outliers\n(log-gap rule)"),
    ]
    panels = [(key, label) for key, label in panels if any(r[key] is not None for r in rows)]
    if not panels:
        return False
    fig = _figure(6.4, 1.0 + 1.5 * len(panels))
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    positions = list(range(len(rows)))
    for ax, (key, label) in zip(axes, panels, strict=True):
        values = [float("nan") if r[key] is None else r[key] for r in rows]
        ax.plot(positions, values, "o-", ms=4)
        ax.set_ylabel(label)
        if key == "num_outliers":
            _mark_lower_bounds(ax, positions, values, rows)
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylim(-0.5, max([v for v in values if v == v] + [1]) + 0.5)  # (NaN: skipped)
        elif all(v > 0 for v in values if v == v):
            ax.set_yscale("log")
    axes[-1].set_xticks(positions, [r["checkpoint"] for r in rows], rotation=45, ha="right")
    axes[-1].set_xlabel("checkpoint")
    fig.savefig(path)
    return True


def _mark_lower_bounds(
    ax: Any, positions: list[int], values: list[float], rows: list[dict[str, Any]]
) -> None:
    """Redraw the counts at the rule's cap as open markers, over the filled ones."""
    capped = [
        (x, v) for x, v, r in zip(positions, values, rows, strict=True) if r["outliers_at_cap"]
    ]
    if capped:
        xs, ys = zip(*capped, strict=True)
        ax.plot(xs, ys, "o", ms=5, color="C0", mfc="white", label="N or more (the rule's cap)")
        ax.legend(fontsize=8)


def _title(record: dict[str, Any]) -> str:
    name = Path(record["checkpoint"]).name if record["checkpoint"] else record["model"]
    return f"{name}: {record['num_parameters']:,} parameters, {record['num_samples']:,} samples"
