"""Top eigenvalues, trace and spectral density of a digits model, data split across ranks.

Run with ``torchrun --nproc-per-node 2 examples/distributed_spectrum.py`` (any number of
processes; on GPUs each rank takes ``cuda:LOCAL_RANK`` and the group uses NCCL). Every
rank trains the same seeded 64-32-10 tanh network, takes its shard of the 1,797 digits
(``hesskit.distributed.shard``: no sample repeated, shards of unequal size are fine),
and builds the Hessian of the mean loss over *all* samples with ``group=``. The
algorithms run on every rank and return the same bits on every rank, which the script
checks; rank 0 prints.
"""

from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, TensorDataset

import hesskit
from hesskit.distributed import shard
from hesskit.train import trained_digits_network


def main() -> None:
    """Build the sharded Hessian, run eigsh, trace and SLQ, print on rank 0."""
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    # a timeout a few times the longest product: a dead rank fails the others in minutes
    dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(minutes=5))
    group, rank = dist.group.WORLD, dist.get_rank()
    device = torch.device("cuda", torch.cuda.current_device()) if cuda else torch.device("cpu")

    model, X, Y = trained_digits_network("W1", steps=200, device=device)  # same on every rank
    loader = DataLoader(shard(TensorDataset(X, Y), group), batch_size=256)
    H = hesskit.hessian(model, torch.nn.functional.cross_entropy, loader, group=group)

    top = hesskit.eigsh(H, 5, generator=0)
    trace = hesskit.trace(H, 90, method="hutch++", generator=0)
    density = hesskit.spectral_density(H, num_probes=8, num_steps=30, generator=0)

    mine = torch.cat([top.eigenvalues, trace.estimate.reshape(1), density.nodes.flatten()])
    every = [torch.empty_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(every, mine)
    same = all(torch.equal(every[0], other) for other in every)
    if rank == 0:
        sizes = ", ".join(map(str, H.objective.shard_sizes))
        world = dist.get_world_size()
        print(f"{world} rank{'s' * (world > 1)} ({dist.get_backend()}), shards of {sizes} samples")
        print(f"Hessian of the mean loss over {H.objective.num_samples} samples, n = {H.shape[0]}")
        print("top-5 eigenvalues:", [round(v, 4) for v in top.eigenvalues.tolist()])
        print(f"  converged: {top.converged}, {top.num_matvecs} products")
        estimate, stderr = float(trace.estimate), float(trace.stderr)
        print(f"trace (Hutch++, 90 products): {estimate:.3f} +- {stderr:.3f}")
        outliers = density.quadrature(lambda x: (x > 0.01 * top.eigenvalues[0]).to(x.dtype))
        print(
            f"SLQ ({density.num_matvecs} products): trace {float(density.trace_estimate()):.3f}, "
            f"about {float(outliers):.0f} of {H.shape[0]} eigenvalues above 1% of the top one"
        )
        print("same bits on every rank:", same)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
