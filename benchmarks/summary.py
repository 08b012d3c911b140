"""Markdown tables of one recorded asv run: every target of shared/performance.md with its
measured value, and hesskit against the baselines and peers.

``python -m benchmarks.summary [RESULTS.json]`` prints them; without an argument it reads
the newest results file under ``.asv/results``. Record one with
``asv run -E existing:same --set-commit-hash $(git rev-parse HEAD)``. Nothing here runs a
benchmark: it only reads asv's results (through asv's own loader).
"""

from __future__ import annotations

import ast
import itertools
import math
import sys
from collections.abc import Callable
from pathlib import Path

from benchmarks import _peers

RESULTS = Path(__file__).resolve().parents[1] / ".asv" / "results"
WORKLOADS = ("W1", "W2", "W3")
PEER = "peer:"
TOP10_TIME = "bench_eigen.TopEigenvalues.time_top10"
HESSKIT_EIGSH = "hesskit.eigsh[auto]"  # hesskit's default solver, the one the targets judge
BASELINE = _peers.BASELINE  # cached-graph products + ARPACK: the reference of every ratio


class Run:
    """The results of one asv run, looked up by benchmark name and parameter values."""

    def __init__(self, values: dict[str, dict[tuple, float]]) -> None:
        self.values = values

    @classmethod
    def load(cls, path: Path) -> Run:
        """Read an asv results file (``results/<machine>/<commit>-<env>.json``)."""
        from asv.results import Results

        results = Results.load(str(path))
        values = {}
        for key in results.get_all_result_keys():
            params = [
                [ast.literal_eval(p) for p in axis] for axis in results.get_result_params(key)
            ]
            combos = itertools.product(*params) if params else [()]
            measured = results.get_result_value(key, results.get_result_params(key))
            values[key] = {
                combo: value
                for combo, value in zip(combos, measured, strict=True)
                if value is not None and not (isinstance(value, float) and math.isnan(value))
            }
        return cls(values)

    def get(self, name: str, *combo) -> float | None:
        """The value of benchmark ``name`` (``module.Class.method``) at ``combo``, or None."""
        return self.values.get(name, {}).get(tuple(combo))

    def combos(self, name: str) -> list[tuple]:
        """The parameter combinations of ``name`` that have a value."""
        return list(self.values.get(name, {}))


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def fmt(value: float | None, spec: str = ".3g", unit: str = "") -> str:
    """A number for a table cell; n/a when missing."""
    return "n/a" if value is None else f"{value:{spec}}{unit}"


def seconds(value: float | None) -> str:
    """A duration with a readable unit."""
    if value is None:
        return "n/a"
    if value < 1e-3:
        return f"{value * 1e6:.0f} us"
    if value < 1:
        return f"{value * 1e3:.3g} ms"
    return f"{value:.3g} s"


def solver_table(run: Run, benchmark: str, workloads: tuple[str, ...]) -> list[str]:
    """Solvers of ``benchmark`` (``module.Class``) on ``workloads``: time / products /
    worst error over lambda_1."""
    name = benchmark + "."
    solvers = dict.fromkeys(s for _, s in run.combos(name + "track_products"))
    rows = []
    for solver in solvers:
        cells = []
        for workload in workloads:
            time = run.get(name + "time_top10", workload, solver)
            products = run.get(name + "track_products", workload, solver)
            error = run.get(name + "track_error_over_lambda1", workload, solver)
            if products is None:
                cells.append("skipped")
                continue
            shown = seconds(time) if time is not None else "(misses accuracy)"
            cells.append(f"{shown} / {products:.0f} / {fmt(error, '.1e')}")
        rows.append([f"`{solver}`", *cells])
    return table(["solver", *workloads], rows)


def fastest_peer(run: Run, workload: str) -> tuple[str | None, float | None]:
    """The peer with the shortest top-10 time on ``workload`` (accuracy-gated)."""
    times = {s: t for (w, s), t in run.values.get(TOP10_TIME, {}).items() if w == workload}
    peers = {s: t for s, t in times.items() if s.startswith(PEER)}
    if not peers:
        return None, None
    solver = min(peers, key=peers.get)
    return solver, peers[solver]


def products_per_gradient(run: Run) -> list[str]:
    """One product over all digits, in gradients (W1-W3), hesskit's methods and peers."""
    name = "bench_operators.DigitsProduct.track_gradients_per_product"
    methods = dict.fromkeys(m for _, m in run.combos(name) if m != "gradient")
    rows = [[f"`{m}`", *(fmt(run.get(name, w, m), ".2f") for w in WORKLOADS)] for m in methods]
    gradient = "bench_operators.DigitsProduct.time_product"
    times = [seconds(run.get(gradient, w, "gradient")) for w in WORKLOADS]
    return table(["method", *WORKLOADS], [["one gradient (time)", *times], *rows])


def scaling(run: Run, device: str) -> list[str]:
    """Products over the data (in gradients) and eigsh on wide MLPs, by n and samples."""
    product = "bench_operators.ProductScaling."
    eigsh = "bench_eigen.EigshScaling."
    methods = dict.fromkeys(m for _, _, m, d in run.combos(product + "time_product") if d == device)
    methods.pop("gradient", None)
    sizes = dict.fromkeys(n for n, *_ in run.combos(product + "time_product"))
    rows = []
    for n, samples in itertools.product(sizes, (256, 2048)):
        gradient = run.get(product + "time_product", n, samples, "gradient", device)
        if gradient is None:
            continue
        ratios = [
            fmt(run.get(product + "track_gradients_per_product", n, samples, m, device), ".2f")
            for m in methods
        ]
        rows.append(
            [
                n,
                str(samples),
                seconds(gradient),
                *ratios,
                seconds(run.get(eigsh + "time_eigsh", n, samples, device)),
                fmt(run.get(eigsh + "track_products", n, samples, device), ".0f"),
                fmt(run.get(eigsh + "track_overhead_fraction", n, samples, device), ".2f"),
            ]
        )
    header = ["n", "samples", "gradient", *(f"`{m}`" for m in methods)]
    return table([*header, "eigsh top-10", "products", "Lanczos overhead"], rows)


def blocks(run: Run) -> list[str]:
    """Time of a block of 8 columns / 8 single products."""
    name = "bench_operators.DigitsBlock.track_block_over_singles"
    methods = dict.fromkeys(m for _, m, _ in run.combos(name))
    rows = [
        [f"`{m}`", *(fmt(run.get(name, w, m, 8), ".2f") for w in ("W1", "W2"))] for m in methods
    ]
    return table(["method", "W1", "W2"], rows)


def memory(run: Run, device: str) -> list[str]:
    """Memory one product adds, over 1, 4, 16 batches of 2,048 samples."""
    name = "bench_operators.ProductMemory." + (
        "track_cuda_peak_bytes" if device == "cuda" else "track_rss_growth_bytes"
    )
    methods = dict.fromkeys(m for _, m, d in run.combos(name) if d == device)
    rows = [
        [f"`{m}`", *(fmt(_mib(run.get(name, b, m, device)), ".0f", " MiB") for b in (1, 4, 16))]
        for m in methods
    ]
    return table(["method", "1 batch", "4 batches", "16 batches"], rows)


def _mib(value: float | None) -> float | None:
    return None if value is None else value / 2**20


def solvers_on_w1(run: Run, module: str, metric: str, label: str) -> list[str]:
    """Density or trace solvers on W1: time, accuracy metric (and products)."""
    name = f"bench_{module}."
    prefix = {"density": "DensityDigits", "trace": "TraceDigits"}[module]
    timed = f"{name}{prefix}.time_{module}"
    rows = []
    for (solver,) in run.combos(f"{name}{prefix}.{metric}"):
        products = run.get(f"{name}{prefix}.track_products", solver)
        cells = [f"`{solver}`", seconds(run.get(timed, solver))]
        cells += [fmt(run.get(f"{name}{prefix}.{metric}", solver), ".2e")]
        if module == "density":
            cells.append(fmt(products, ".0f"))
        rows.append(cells)
    header = ["solver", "time", label] + (["products"] if module == "density" else [])
    return table(header, rows)


def targets(run: Run) -> list[str]:
    """Each target of shared/performance.md, its measured value and whether it is met."""
    rows = []

    def add(what: str, value: float | None, bound: float, spec: str, *, at_least=False) -> None:
        met = None if value is None else (value >= bound if at_least else value <= bound)
        verdict = "n/a" if met is None else ("yes" if met else "**no**")
        rows.append([what, f"{'>=' if at_least else '<='} {bound:g}", fmt(value, spec), verdict])

    product = "bench_operators.ProductScaling.track_gradients_per_product"
    for method, bound in (("double_backward", 2.5), ("auto", 2.5), ("cached_graph", 1.0)):
        values = [
            v
            for (n, _, m, device), v in run.values.get(product, {}).items()
            if m == method and device == "cpu" and float(n) >= 1e5
        ]
        add(
            f"product / gradient, `{method}`, n >= 1e5 (CPU, worst)",
            max(values, default=None),
            bound,
            ".2f",
        )
    block = "bench_operators.DigitsBlock.track_block_over_singles"
    ratios = [v for (_, _, k), v in run.values.get(block, {}).items() if k == 8]
    best = min(ratios) if ratios else None
    add("block of 8 / 8 singles (CPU, best method)", best, 1.0, ".2f")
    products = "bench_eigen.TopEigenvalues.track_products"
    for workload in WORKLOADS:
        ours = run.get(TOP10_TIME, workload, HESSKIT_EIGSH)
        baseline = run.get(TOP10_TIME, workload, BASELINE)
        speedup = None if ours is None or baseline is None else baseline / ours
        add(f"top-10 speed-up over `{BASELINE}`, {workload}", speedup, 1, ".2f", at_least=True)
        ours = run.get(products, workload, HESSKIT_EIGSH)
        theirs = run.get(products, workload, BASELINE)
        ratio = None if ours is None or theirs is None else ours / theirs
        add(f"top-10 products / `{BASELINE}`'s, {workload}", ratio, 1, ".2f")
    for workload in WORKLOADS:
        ours = run.get(TOP10_TIME, workload, HESSKIT_EIGSH)
        peer, theirs = fastest_peer(run, workload)
        speedup = None if ours is None or theirs is None else theirs / ours
        add(
            f"top-10 speed-up over the fastest peer, {workload} (`{peer}`)",
            speedup,
            2,
            ".2f",
            at_least=True,
        )
    for workload in WORKLOADS:
        lanczos = run.get(products, workload, HESSKIT_EIGSH)
        power = run.get(products, workload, "hesskit.power_iteration[auto]")
        if lanczos is not None and power is not None:  # power iteration runs on W1 only
            add(f"eigsh / power-iteration products, {workload}", lanczos / power, 0.2, ".3f")
    overhead = "bench_eigen.EigshScaling.track_overhead_fraction"
    for (n, samples, device), value in run.values.get(overhead, {}).items():
        if float(n) >= 1e5:
            add(f"Lanczos overhead, n = {n}, {samples} samples ({device})", value, 0.10, ".2f")
    density = "bench_density.DensityDigits.track_wasserstein_over_range"
    distance = run.get(density, "hesskit.spectral_density")
    add("SLQ Wasserstein-1 / range, W1, default budget", distance, 0.01, ".1e")
    growth = "bench_operators.ProductMemory.track_rss_growth_bytes"
    for method in ("auto", "double_backward"):
        one, sixteen = run.get(growth, 1, method, "cpu"), run.get(growth, 16, method, "cpu")
        change = None if one is None or sixteen is None else sixteen / one - 1
        add(f"memory of a product, 16 batches vs 1, `{method}` (CPU)", change, 0.05, "+.1%")
    return table(["target", "bound", "measured", "met"], rows)


SECTIONS: list[tuple[str, Callable[[Run], list[str]]]] = [
    ("Targets", targets),
    (
        "Top-10 eigenvalues: time / products / worst error over lambda_1",
        lambda run: solver_table(run, "bench_eigen.TopEigenvalues", WORKLOADS),
    ),
    (
        "Block solvers, float64 top-10: time / products / worst error over lambda_1",
        lambda run: solver_table(run, "bench_eigen.BlockSolvers", ("W1", "repeated")),
    ),
    ("One product over all 1,797 digits, in gradients", products_per_gradient),
    ("A block of 8 columns / 8 single products", blocks),
    ("Scaling on wide MLPs (CPU)", lambda run: scaling(run, "cpu")),
    ("Scaling on wide MLPs (CUDA)", lambda run: scaling(run, "cuda")),
    ("Memory one product adds (CPU: peak RSS growth)", lambda run: memory(run, "cpu")),
    ("Memory one product adds (CUDA: peak allocated)", lambda run: memory(run, "cuda")),
    (
        "Spectral density of W1 (8 probes x 90 steps)",
        lambda run: solvers_on_w1(run, "density", "track_wasserstein_over_range", "W1 / range"),
    ),
    (
        "Trace of W1 (99 products)",
        lambda run: solvers_on_w1(run, "trace", "track_relative_error", "relative error"),
    ),
]


def newest_results() -> Path:
    """The most recently written results file under ``.asv/results``."""
    files = [p for p in RESULTS.glob("*/*.json") if p.name != "machine.json"]
    if not files:
        msg = f"no asv results under {RESULTS}: record a run first (see benchmarks/README.md)"
        raise SystemExit(msg)
    return max(files, key=lambda p: p.stat().st_mtime)


def main(argv: list[str]) -> None:
    """Print every section that has data."""
    path = Path(argv[0]) if argv else newest_results()
    run = Run.load(path)
    print(f"<!-- from {path.name} -->")
    for title, section in SECTIONS:
        lines = section(run)
        if len(lines) > 2:
            print(f"\n### {title}\n")
            print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:])
