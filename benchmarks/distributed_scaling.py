"""Two gloo processes against one: time per product, per top-10 solve, all-reduce share.

``python -m benchmarks.distributed_scaling [--sizes 1e4 1e5 1e6 1e7] [--repeats 5]``

Not an asv benchmark (asv runs one process): it spawns its own worlds of one and two
processes (one torch thread each, file rendezvous) and prints a table and a JSON line.

1. The digits workload W2 (64-128-128-10 ReLU MLP, 26,122 parameters, float32) on all
   1,797 samples: one process holds them all, or two ranks hold 899 and 898 with
   ``group=``. Best time of a Hessian-vector product (and of one on a rank's shard
   without a group: the compute a rank does) and of ``eigsh(H, 10)``.
2. The all-reduce's share of a distributed product as a function of ``n``: a 64-h-h-10
   tanh MLP with ``h`` chosen for ``n`` parameters, 64 samples per rank, two ranks. Per
   ``n``: the product on the rank's shard alone (no group), the same with ``group=``,
   and a bare ``dist.all_reduce`` of ``n`` floats; share = all-reduce / group product.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

import hesskit
from hesskit.train import trained_digits_network

F = nn.functional


def _best_time(action, repeats: int, group) -> float:
    """Best wall time of ``action()`` after one warm-up, the ranks started together.

    The best, not the median: on a shared machine other jobs only ever add time.
    """
    action()
    times = []
    for _ in range(repeats):
        if group is not None:
            dist.barrier(group)
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def _digits_timings(rank: int, world: int, group, repeats: int) -> dict[str, float]:
    model, X, Y = trained_digits_network("W2", steps=0, dtype=torch.float32)
    data = (X[rank::world], Y[rank::world])
    H = hesskit.hessian(model, F.cross_entropy, data, group=group)
    v = torch.randn(H.shape[0], generator=torch.Generator().manual_seed(0))
    solve = {}

    def top10() -> None:
        solve["result"] = hesskit.eigsh(H, 10, generator=0)

    alone = hesskit.hessian(model, F.cross_entropy, data)  # this rank's shard, no group
    return {
        "shard_product_s": _best_time(lambda: alone @ v, repeats, group),
        "product_s": _best_time(lambda: H @ v, repeats, group),
        "top10_s": _best_time(top10, max(1, repeats // 3), group),
        "top10_matvecs": solve["result"].num_matvecs,
        "lambda_max": float(solve["result"].eigenvalues[0]),
    }


def _mlp(n: int) -> nn.Module:
    """A 64-h-h-10 tanh MLP with about ``n`` parameters (h^2 + 76 h + 10 = n)."""
    width = max(1, round((-76 + math.sqrt(76**2 + 4 * (n - 10))) / 2))
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(64, width), nn.Tanh(), nn.Linear(width, width), nn.Tanh(), nn.Linear(width, 10)
    )


def _share_timings(rank: int, group, sizes: list[int], repeats: int) -> list[dict[str, float]]:
    gen = torch.Generator().manual_seed(rank)
    X, Y = torch.randn(64, 64, generator=gen), torch.randint(0, 10, (64,), generator=gen)
    return [_share_row(_mlp(target), X, Y, group, repeats) for target in sizes]


def _share_row(model: nn.Module, X, Y, group, repeats: int) -> dict[str, float]:
    local = hesskit.hessian(model, F.cross_entropy, (X, Y))
    sharded = hesskit.hessian(model, F.cross_entropy, (X, Y), group=group)
    n = local.shape[0]
    v = torch.randn(n, generator=torch.Generator().manual_seed(0))
    buffer = torch.randn(n)
    return {
        "n": n,
        "local_product_s": _best_time(lambda: local @ v, repeats, group),
        "group_product_s": _best_time(lambda: sharded @ v, repeats, group),
        "all_reduce_s": _best_time(lambda: dist.all_reduce(buffer, group=group), repeats, group),
    }


def _worker(rank: int, world: int, init: str, out: str, sizes: list[int], repeats: int) -> None:
    torch.set_num_threads(1)
    group = None
    if world > 1:
        dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=world)
        group = dist.group.WORLD
    result: dict[str, object] = {"digits": _digits_timings(rank, world, group, repeats)}
    if world > 1:
        result["share"] = _share_timings(rank, group, sizes, repeats)
        dist.destroy_process_group()
    torch.save(result, Path(out) / f"{world}-{rank}.pt")


def _world(world: int, sizes: list[int], repeats: int) -> dict:
    """Run ``world`` ranks of :func:`_worker`; rank 0's result."""
    with tempfile.TemporaryDirectory() as tmp:
        mp.start_processes(
            _worker,
            args=(world, str(Path(tmp) / "rendezvous"), tmp, sizes, repeats),
            nprocs=world,
            start_method="spawn",
        )
        return torch.load(Path(tmp) / f"{world}-0.pt", weights_only=False)


def main() -> None:
    """Measure, print a table and one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e4, 1e5, 1e6, 1e7])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes]
    one, two = _world(1, sizes, args.repeats), _world(2, sizes, args.repeats)
    a, b = one["digits"], two["digits"]
    print(f"{'W2, 1797 digits, float32, 1 thread/process':<44} 1 process  2 processes  speedup")
    rows = [
        ("time per product [ms]", 1e3 * a["product_s"], 1e3 * b["product_s"]),
        ("  a rank's product on its shard alone [ms]", float("nan"), 1e3 * b["shard_product_s"]),
        ("time per top-10 solve [s]", a["top10_s"], b["top10_s"]),
    ]
    for label, first, second in rows:
        print(f"{label:<44} {first:9.2f} {second:12.2f} {first / second:8.2f}")
    print(f"{'products per top-10 solve':<44} {a['top10_matvecs']:9d} {b['top10_matvecs']:12d}")
    print("two ranks, 64 samples each: n, product alone, with group=, all_reduce [ms], share")
    for row in two["share"]:
        share = row["all_reduce_s"] / row["group_product_s"]
        print(f"  {row['n']:>9,} {1e3 * row['local_product_s']:10.2f} "
              f"{1e3 * row['group_product_s']:10.2f} {1e3 * row['all_reduce_s']:10.3f} "
              f"{share:7.1%}")  # fmt: skip
    print(json.dumps({"one": one, "two": two}))


if __name__ == "__main__":
    main()
