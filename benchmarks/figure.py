"""The README's figure of one recorded asv run: top-10 eigenvalue time of every solver that
met the accuracy target, relative to the cached-graph + ARPACK baseline (the reference of
every ratio, ``shared/performance.md``), on W1-W3.

``python -m benchmarks.figure OUT.png [RESULTS.json]``; without a results file it reads the
newest under ``.asv/results`` (as ``benchmarks.summary`` does). Nothing here runs a
benchmark.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .summary import BASELINE as REFERENCE
from .summary import HESSKIT_EIGSH, TOP10_TIME, WORKLOADS, Run, newest_results

# The solvers drawn (the baseline is the line at 1): hesskit's default, the other
# do-it-yourself drivers and the peers' solvers that a user would run with their defaults
# or a Krylov space of 50.
SHOWN = (
    HESSKIT_EIGSH,
    "scipy.eigsh(op.to_scipy())[auto]",
    "peer:double-backward+scipy",
    "peer:torch.func+scipy",
    "peer:curvlinops+scipy",
    "peer:backpack+scipy",
    "peer:eigenthings-lanczos-m50",
)


def relative_times(run: Run) -> dict[str, dict[str, float]]:
    """Per solver in ``SHOWN``, per workload: its time over ``REFERENCE``'s time.

    Workloads where either time is missing (skipped, or the accuracy gate withheld it)
    are left out, so a solver that missed its accuracy never appears as fast.
    """
    references = {workload: run.get(TOP10_TIME, workload, REFERENCE) for workload in WORKLOADS}
    ratios: dict[str, dict[str, float]] = {}
    for solver in SHOWN:
        row = {}
        for workload, reference in references.items():
            time = run.get(TOP10_TIME, workload, solver)
            if time is not None and reference is not None:
                row[workload] = time / reference
        if row:
            ratios[solver] = row
    return ratios


def draw(ratios: dict[str, dict[str, float]], out: Path) -> None:
    """Grouped horizontal bars, one group per workload, on a log axis with the baseline's 1
    marked (left of it: faster than the baseline)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    solvers = list(ratios)
    height = 0.8 / len(solvers)
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for i, solver in enumerate(solvers):
        positions = [w - 0.4 + (i + 0.5) * height for w in range(len(WORKLOADS))]
        values = [ratios[solver].get(workload, float("nan")) for workload in WORKLOADS]
        widths = [value - 1.0 for value in values]  # from the baseline's 1 to the ratio
        ax.barh(positions, widths, left=1.0, height=height, label=solver.removeprefix("peer:"))
    ax.set_xscale("log")
    ticks = [0.5, 0.75, 1, 1.5, 2, 3, 4, 6]
    ax.set_xticks(ticks, [f"{t:g}x" for t in ticks])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    low = min(0.7, *(min(row.values()) * 0.9 for row in ratios.values()))
    ax.set_xlim(low, max(6.0, *(max(row.values()) * 1.1 for row in ratios.values())))
    ax.axvline(1.0, color="black", linewidth=0.8, label=f"{REFERENCE} (= 1)")
    ax.set_yticks(range(len(WORKLOADS)), WORKLOADS)
    ax.invert_yaxis()
    ax.set_xlabel(f"top-10 time / {REFERENCE} time (log scale; accuracy-gated)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit("usage: python -m benchmarks.figure OUT.png [RESULTS.json]")
    path = Path(argv[1]) if len(argv) > 1 else newest_results()
    draw(relative_times(Run.load(path)), Path(argv[0]))


if __name__ == "__main__":
    main(sys.argv[1:])
