"""The one table of which package each peer's solver, product or estimator needs.

A leaf module (it imports nothing of the suite), so that the workloads, the peers'
adapters and every benchmark can consult it without an import circle. The names are the
``params`` values of the benchmarks (``peer:...``); hesskit's own solvers and the
torch-only baselines need nothing beyond hesskit's dependencies and are not listed.
``benchmarks/install_peers.sh`` installs the packages.
"""

from __future__ import annotations

import importlib.util

PACKAGES: dict[str, str] = {
    # products and top-k eigenvalues (bench_operators, bench_eigen)
    "peer:pyhessian": "pyhessian",
    "peer:eigenthings": "hessian_eigenthings",
    "peer:curvlinops": "curvlinops",
    "peer:backpack": "backpack",
    "peer:backpack+scipy": "backpack",
    "peer:curvlinops+scipy": "curvlinops",
    "peer:eigenthings-lanczos-m50": "hessian_eigenthings",
    "peer:eigenthings-lanczos-default": "hessian_eigenthings",
    "peer:eigenthings-power": "hessian_eigenthings",
    "peer:pyhessian-power-default": "pyhessian",
    "peer:pyhessian-power-tol1e-6": "pyhessian",
    # traces (bench_trace)
    "peer:curvlinops-hutchinson": "curvlinops",
    "peer:curvlinops-hutchpp": "curvlinops",
    "peer:curvlinops-xtrace": "curvlinops",
    "peer:eigenthings-hutch++": "hessian_eigenthings",
    "peer:pyhessian-hutchinson": "pyhessian",
}
"""Benchmark name -> the importable module it needs."""


def missing(name: str) -> str | None:
    """The module that ``name`` needs and that is not installed, or None (also for a name
    that needs nothing)."""
    package = PACKAGES.get(name)
    if package is None or importlib.util.find_spec(package) is not None:
        return None
    return package
