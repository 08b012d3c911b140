"""The GPU check of ``shared/performance.md`` in one table (``benchmarks/gpu_check.sh``).

GPU time comes in minutes, so this is one script, not the asv suite: for wide MLPs
(``_workloads.wide_problem``) it times hesskit's top-10 ``eigsh`` against the reference
every ratio is taken against (cached-graph products + SciPy's ARPACK, which copies every
product to the host), a block of 8 products against 8 single ones, and SLQ with and
without a stored basis; then the top-10 and an SLQ density of a ResNet-18-sized CNN on
synthetic CIFAR-sized data, with peak device memory. Every timed call synchronises the
device; each time is the best of ``--repeat`` runs after one warm-up.

``python -m benchmarks.gpu_table --device cuda`` prints the markdown table;
``--device cpu --sizes 1e3 --no-resnet`` is the smoke test the test suite runs.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from . import _peers
from . import _workloads as w

K = 10
TOL = 1e-6


def best_time(fn: Callable[[], object], device, repeat: int) -> tuple[float, object]:
    """The best wall time of ``fn()`` over ``repeat`` runs after a warm-up, and its result."""
    result = fn()
    w.synchronize(device)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        w.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best, result


def peak_bytes(fn: Callable[[], object], device) -> int | None:
    """Peak device memory allocated during ``fn()`` (None on the CPU)."""
    t = w.torch()
    if device.type != "cuda":
        fn()
        return None
    t.cuda.synchronize(device)
    t.cuda.reset_peak_memory_stats(device)
    fn()
    t.cuda.synchronize(device)
    return int(t.cuda.max_memory_allocated(device))


def wide_rows(size: str, samples: int, device, repeat: int) -> list[list[str]]:
    """Top-10 vs the baseline, block of 8 vs singles, SLQ modes, on one wide MLP."""
    import hesskit

    model, X, Y = w.wide_problem(size, samples, device=device)
    H = hesskit.hessian(model, w.loss_fn(), (X, Y))
    ours_time, ours = best_time(lambda: hesskit.eigsh(H, K, tol=TOL, generator=0), device, repeat)
    baseline = _peers.TOP_K[_peers.BASELINE]
    base_time, (_, base_products) = best_time(lambda: baseline(model, X, Y, K, TOL), device, repeat)
    block = w.probe(H.shape[0], 8, device=device)
    ratio = (
        w.interleaved_ratio(
            lambda: H.matmat(block), lambda: H.matmat(block[:, :1]), repeat=5, device=device
        )
        / 8
    )
    rows = [
        [
            f"top-10 eigsh vs `{_peers.BASELINE}`, n = {size}, {samples} samples",
            f"{ours_time * 1e3:.1f} ms / {ours.num_matvecs} vs {base_time * 1e3:.1f} ms / "
            f"{base_products}",
            f"{base_time / ours_time:.2f}x",
            ">= 3x at n >= 1e6",
        ],
        [f"block of 8 / 8 singles, n = {size}", f"{ratio:.2f}", "", "<= 0.3"],
    ]
    for mode in ("full", "none"):

        def density(mode=mode):
            return hesskit.spectral_density(H, generator=0, reorthogonalize=mode)

        seconds, _ = best_time(density, device, max(1, repeat // 2))
        memory = peak_bytes(density, device)
        shown = "" if memory is None else f", peak {memory / 2**30:.2f} GiB"
        rows.append(
            [f"SLQ 8 x 90, reorthogonalize={mode!r}, n = {size}", f"{seconds:.2f} s{shown}", "", ""]
        )
    return rows


def resnet_rows(device, samples: int) -> list[list[str]]:
    """Top-10 and SLQ of a ResNet-18-sized CNN (11M parameters) on synthetic CIFAR data."""
    import hesskit

    t = w.torch()
    from torchvision.models import resnet18

    gen = t.Generator().manual_seed(0)
    t.manual_seed(0)
    model = resnet18(num_classes=10).to(device).eval()
    X = t.randn(samples, 3, 32, 32, generator=gen).to(device)
    Y = t.randint(0, 10, (samples,), generator=gen).to(device)
    H = hesskit.hessian(model, w.loss_fn(), (X, Y))
    n = H.shape[0]
    rows = []
    top_memory = peak_bytes(lambda: hesskit.eigsh(H, K, tol=1e-4, generator=0), device)
    seconds, top = best_time(lambda: hesskit.eigsh(H, K, tol=1e-4, generator=0), device, 1)
    rows.append(
        [
            f"ResNet-18 (n = {n:,}), {samples} CIFAR-sized samples: top-10 at tol 1e-4",
            f"{seconds:.2f} s / {top.num_matvecs}, peak {top_memory / 2**30:.2f} GiB",
            "",
            "report",
        ]
    )
    for mode, groups in (("none", None), ("full", 2)):

        def density(mode=mode, groups=groups):
            return hesskit.spectral_density(
                H, generator=0, reorthogonalize=mode, probes_per_group=groups
            )

        start = time.perf_counter()
        memory = peak_bytes(density, device)
        seconds = time.perf_counter() - start
        estimate = hesskit.density.memory_estimate(n, reorthogonalize=mode, probes_per_group=groups)
        rows.append(
            [
                f"ResNet-18 SLQ 8 x 90, reorthogonalize={mode!r}, groups={groups}",
                f"{seconds:.1f} s, peak {memory / 2**30:.2f} GiB "
                f"(estimate of the Lanczos vectors {estimate / 2**30:.2f} GiB)",
                "",
                "report",
            ]
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    """Print the GPU check's table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--sizes", nargs="+", default=["1e6", "1e7"])
    parser.add_argument("--samples", type=int, default=2048)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--resnet-samples", type=int, default=512)
    parser.add_argument("--no-resnet", action="store_true")
    args = parser.parse_args(argv)
    t = w.torch()
    t.set_num_threads(1)
    device = t.device(args.device)
    name = t.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device: {name}; torch {t.__version__}")
    print("| what | measured (time / products) | ratio | target |")
    print("| --- | --- | --- | --- |")
    rows = [
        row for size in args.sizes for row in wide_rows(size, args.samples, device, args.repeat)
    ]
    if not args.no_resnet:
        rows += resnet_rows(device, args.resnet_samples)
    for row in rows:
        print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
