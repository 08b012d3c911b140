"""A short demonstration on real data: the Hessian spectrum of a digits MLP.

Trains a 64-32-10 tanh MLP on scikit-learn's digits (1,797 real 8x8 images that ship with
scikit-learn; the benchmarks' workload W1, :func:`hesskit.train.trained_digits_network`,
in float64), then prints the Hessian's top eigenvalues (thick-restart Lanczos), its trace
(Hutch++), the bulk/outlier split and the spectral density (stochastic Lanczos
quadrature), checked against the dense spectrum. Run it with ``python -m hesskit.demo``;
``--plot density.png`` also draws the density (needs matplotlib).
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

import hesskit
from hesskit.train import trained_digits_network


def main(argv: list[str] | None = None) -> None:
    """Print the spectrum of the digits MLP's Hessian; optionally plot its density."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", metavar="PNG", help="save the spectral density figure here")
    args = parser.parse_args(argv)

    model, X, Y = trained_digits_network("W1")  # float64, seed 0, 200 Adam steps
    loss = nn.functional.cross_entropy(model(X), Y).item()
    H = hesskit.hessian(model, nn.functional.cross_entropy, (X, Y))
    print(f"digits MLP: {H.shape[0]} parameters, {len(X)} samples, train loss {loss:.4f}")

    start = time.perf_counter()
    top = hesskit.eigsh(H, 10, tol=1e-8, generator=0)
    seconds = time.perf_counter() - start
    print(f"top-10 eigenvalues ({top.num_matvecs} products, {seconds:.2f} s):")
    print("  " + " ".join(f"{v:.4g}" for v in top.eigenvalues.tolist()))

    exact = torch.linalg.eigvalsh(hesskit.dense(H))
    error = ((top.eigenvalues - exact.flip(0)[:10]).abs() / exact.abs().max()).max()
    print(f"  max error vs dense eigvalsh, relative to lambda_max: {error:.1e}")

    trace = hesskit.trace(H, 150, method="hutch++", generator=0)
    print(f"trace: Hutch++ {trace.estimate:.4f} +- {trace.stderr:.4f}, exact {exact.sum():.4f}")

    parts = hesskit.spectrum.split(exact)
    print(f"bulk/outliers (dense spectrum): {parts.num_outliers} outliers above {parts.edge:.3g}")

    density = hesskit.spectral_density(H, num_probes=8, num_steps=90, generator=0)
    grid = density.grid(num_points=400)
    values = density.density(grid)
    threshold = 1e-3 * float(exact.abs().max())
    estimate = density.quadrature(lambda x: (x.abs() < threshold).to(x.dtype)) / H.shape[0]
    exact_fraction = (exact.abs() < threshold).double().mean()
    print(f"spectral density: {density.num_matvecs} products; fraction of |lambda| < 1e-3 max:")
    print(f"  SLQ {estimate:.3f}, exact {exact_fraction:.3f}")
    if args.plot:
        _plot(grid, values, exact, args.plot)
        print(f"figure written to {args.plot}")


def _plot(grid: torch.Tensor, values: torch.Tensor, exact: torch.Tensor, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.hist(exact.numpy(), bins=200, density=True, alpha=0.4, label="dense eigvalsh")
    ax.plot(grid.numpy(), values.numpy(), label="SLQ (8 probes, 90 steps)")
    ax.set_yscale("log")
    ax.set_ylim(1e-2, 2 * float(values.max()))
    ax.set_xlabel("eigenvalue")
    ax.set_ylabel("density")
    ax.set_title("Hessian spectrum of a trained digits MLP (2,410 parameters)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
