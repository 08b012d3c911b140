"""Edge of stability on digits with :class:`hesskit.track.CurvatureMonitor`.

Full-batch gradient descent on 500 of scikit-learn's 8x8 digits (50 per class,
standardised), the squared loss on one-hot targets, a 64-64-10 tanh MLP (4,810 parameters,
float64), at two step sizes. Cohen et al. (2021, arXiv:2103.00065) find that lambda_max
rises until it reaches about 2 / lr and then hovers there. The monitor records lambda_max
every 5 steps warm-started from the previous top eigenvector; a second monitor measures
the same models from random start vectors, to count what the warm start saves.

    python examples/edge_of_stability.py docs/edge_of_stability_monitor.png
"""

from __future__ import annotations

import sys
import time

import torch
from torch import nn

from hesskit.problems import digits, mean_squared_error
from hesskit.track import CurvatureMonitor

STEP_SIZES = (2.0, 4 / 3)
STEPS = 1000
EVERY = 5


def run(lr: float) -> dict:
    """Full-batch GD at ``lr``; the warm and the cold monitor's records, and the losses."""
    problem = digits(samples_per_class=50, seed=0)
    data = (problem.inputs, nn.functional.one_hot(problem.targets, 10).double())
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 10)).double()
    path = f"edge_of_stability_lr{lr:.3g}.jsonl"
    warm = CurvatureMonitor(model, mean_squared_error, data, every=EVERY, path=path)
    cold = CurvatureMonitor(model, mean_squared_error, data, every=EVERY, warm_start=False)
    losses, seconds = [], 0.0
    for step in range(STEPS + 1):
        begin = time.perf_counter()
        warm(step)
        seconds += time.perf_counter() - begin
        cold(step)
        loss = mean_squared_error(model(data[0]), data[1])
        losses.append(loss.item())
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for parameter in model.parameters():
                parameter -= lr * parameter.grad
    return {"lr": lr, "warm": warm.records, "cold": cold.records, "losses": losses, "s": seconds}


def report(result: dict) -> str:
    """One line: the late-phase sharpness against 2 / lr, and the products per record."""
    warm, cold, lr = result["warm"], result["cold"], result["lr"]
    late = [r.lambda_max for r in warm if r.step >= STEPS // 2]
    per_warm = sum(r.num_matvecs for r in warm[1:]) / (len(warm) - 1)
    per_cold = sum(r.num_matvecs for r in cold[1:]) / (len(cold) - 1)
    agree = max(
        abs(w.lambda_max - c.lambda_max) / c.lambda_max for w, c in zip(warm, cold, strict=True)
    )
    return (
        f"lr {lr:.3g}: 2/lr {2 / lr:.3f}, late-phase lambda_max {sum(late) / len(late):.3f} "
        f"(x lr/2 = {sum(late) / len(late) * lr / 2:.3f}); products per record: warm "
        f"{per_warm:.1f}, cold {per_cold:.1f}; warm vs cold lambda_max within {agree:.1e}; "
        f"{len(warm)} records in {result['s']:.1f} s"
    )


def figure(results: list[dict], path: str) -> None:
    """Loss and lambda_max over the steps, 2 / lr dashed."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.2), dpi=110, layout="constrained")
    loss_ax, sharp_ax = fig.subplots(2, 1, sharex=True)
    for index, result in enumerate(results):
        color, lr = f"C{index}", result["lr"]
        loss_ax.plot(result["losses"], color=color, linewidth=0.8, label=f"lr = {lr:.3g}")
        steps = [r.step for r in result["warm"]]
        sharp_ax.plot(steps, [r.lambda_max for r in result["warm"]], color=color, linewidth=1)
        sharp_ax.axhline(2 / lr, color=color, linestyle="--", linewidth=0.8)
    loss_ax.set_yscale("log")
    loss_ax.set_ylabel("training loss")
    loss_ax.legend(fontsize=8)
    sharp_ax.set_ylabel("lambda_max (dashed: 2 / lr)")
    sharp_ax.set_xlabel("gradient-descent step")
    fig.savefig(path)


if __name__ == "__main__":
    torch.set_num_threads(1)
    results = [run(lr) for lr in STEP_SIZES]
    for result in results:
        print(report(result))
    figure(results, sys.argv[1] if len(sys.argv) > 1 else "edge_of_stability.png")
