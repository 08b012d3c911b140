"""``group=``: operators over torch.distributed shards equal the operator of their union.

One spawned pair of gloo processes (file rendezvous, one thread each, a join timeout so a
hang fails instead of blocking CI) runs every distributed scenario in :func:`_worker` and
saves what each rank saw; the tests compare the ranks bit for bit with each other and to
float64 round-off with the single-process operator of the union of the shards, built
here. The error scenarios record the exception each rank raised and how long it took.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import traceback
import warnings
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.func import functional_call
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

import hesskit
from hesskit import distributed

F = nn.functional
JOIN_TIMEOUT_S = 150  # the pair takes ~10-20 s on two busy cores
GROUP_TIMEOUT = timedelta(seconds=60)  # a rank stuck in a collective fails, never hangs
# the shards: rank 0 holds one batch of 3 samples, rank 1 two batches of 5 and 3
SHARDS = ((slice(0, 3),), (slice(3, 8), slice(8, 11)))
# products summed in another order than one process sums them: round-off of float64
ROUND_OFF = {"atol": 1e-12, "rtol": 1e-10}


def _problem(device: str = "cpu", seed: int = 0):
    """A seeded tanh MLP (43 parameters, float64) and 11 classification samples."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3)).double().to(device)
    gen = torch.Generator().manual_seed(1)
    X = torch.randn(11, 4, generator=gen, dtype=torch.float64).to(device)
    Y = torch.randint(0, 3, (11,), generator=gen).to(device)
    return model, X, Y


def _shard(rank: int, X: torch.Tensor, Y: torch.Tensor) -> list:
    return [(X[rows], Y[rows]) for rows in SHARDS[rank]]


def _everything(model, X, Y, batches, group, device) -> dict[str, torch.Tensor]:
    """Every quantity the tests compare, on ``batches`` (a shard with a group)."""
    loss = F.cross_entropy
    H = hesskit.hessian(model, loss, batches, group=group)
    a = hesskit.params.flatten_parameters(model).detach()
    out = {
        "hessian": hesskit.dense(H),
        "hessian_fwd": hesskit.dense(
            hesskit.hessian(model, loss, batches, group=group, method="forward_over_reverse")
        ),
        "matvec": H @ torch.linspace(-1, 1, H.shape[0], dtype=torch.float64, device=device),
        "ggn": hesskit.dense(hesskit.ggn(model, loss, batches, group=group)),
        "covariance": hesskit.dense(
            hesskit.gradient_covariance(model, loss, batches, group=group, centered=True)
        ),
        "loss": H.objective.loss(),
        "gradient": H.objective.gradient(),
        "path": hesskit.landscape.interpolate(
            model, loss, batches, a, 0.5 * a, num_points=4, group=group
        ).losses,
    }
    top = hesskit.eigsh(H, 3, generator=0)
    out["eigenvalues"], out["eigenvectors"] = top.eigenvalues, top.eigenvectors
    density = hesskit.spectral_density(H, num_probes=3, num_steps=12, generator=0)
    out["nodes"], out["weights"] = density.nodes, density.weights
    out["trace"] = hesskit.trace(H, 30, method="hutch++", generator=0).estimate
    return {name: value.detach().cpu() for name, value in out.items()}


def _failure(action) -> tuple[str, str, float]:
    """``(exception type, message, seconds until it was raised)`` of ``action()``."""
    start = time.perf_counter()
    try:
        action()
    except Exception as error:  # every rank's error is what the tests look at
        return type(error).__name__, str(error), time.perf_counter() - start
    return "none", "", time.perf_counter() - start


def _errors(rank: int, model, X, Y, group) -> dict[str, tuple[str, str, float]]:
    """The bad-input scenarios, each on one rank only (or sharded wrongly)."""
    loss = F.cross_entropy
    batches = _shard(rank, X, Y)
    nan = [(x, y) for x, y in batches]
    if rank == 1:
        nan[1] = (nan[1][0].clone().fill_(float("nan")), nan[1][1])
    as_float32 = [(x.float(), y) for x, y in batches] if rank == 1 else batches
    empty = [(X[:0], Y[:0])] if rank == 1 else batches
    dataset = TensorDataset(X, Y)
    padded = DataLoader(dataset, batch_size=4, sampler=DistributedSampler(dataset, 2, rank))
    other_model = _problem(seed=rank)[0]
    H = hesskit.hessian(model, loss, batches, group=group)
    reducer, nccl = distributed.Reducer(group), distributed.Reducer(group)
    nccl._host_device = torch.device("cuda", 0)  # what a pure nccl group reduces on
    one = torch.ones((), dtype=torch.float64)
    scalar = {"shape": (), "dtype": torch.float64, "device": torch.device("cpu")}
    scalar_pair = {**scalar, "shape": (2,)}
    only_rank_0 = dist.new_group([0])  # (every rank must call new_group)
    a = hesskit.params.flatten_parameters(model).detach()

    def bad(value: object) -> object:
        return value if rank == 1 else "auto" if isinstance(value, str) else False

    return {
        "nan": _failure(lambda: hesskit.eigsh(hesskit.hessian(model, loss, nan, group=group), 2)),
        "dtype": _failure(lambda: hesskit.hessian(model, loss, as_float32, group=group)),
        "empty": _failure(lambda: hesskit.ggn(model, loss, empty, group=group)),
        "padded": _failure(lambda: hesskit.hessian(model, loss, padded, group=group)),
        "seeds": _failure(lambda: hesskit.eigsh(H, 2, generator=rank)),
        "models": _failure(lambda: hesskit.hessian(other_model, loss, batches, group=group)),
        "theta": _failure(lambda: H.objective.loss(H.objective.parameters() + rank)),
        "drift": _failure(lambda: _drift_on_rank_1(model, loss, batches, group)),
        "group": _failure(lambda: hesskit.hessian(model, loss, batches, group="WORLD")),
        "size": _failure(lambda: reducer.sum(lambda: torch.zeros(2 + rank), **scalar_pair)),
        "other": _failure(lambda: reducer.sum(lambda: {}[rank] if rank else one, **scalar)),
        # one rank only, nothing collective: a group without this rank; nccl on the CPU
        "member": _failure(lambda: hesskit.hessian(model, loss, batches, group=only_rank_0)),
        "nccl": _failure(lambda: nccl.check_device(torch.device("cpu"))),
        # arguments checked after construction, before the first collective
        "method": _failure(
            lambda: hesskit.hessian(model, loss, batches, group=group, method=bad("newton"))
        ),
        "centered": _failure(
            lambda: hesskit.gradient_covariance(model, loss, batches, group=group, centered=bad(1))
        ),
        "path": _failure(
            lambda: hesskit.landscape.interpolate(
                model, loss, batches, a, a[: -rank or None], num_points=3, group=group
            )
        ),
    }


def _drift_on_rank_1(model, loss, batches, group) -> None:
    """A product after rank 1 alone changed a parameter in place (then restored)."""
    H = hesskit.hessian(model, loss, batches, group=group)
    first = next(model.parameters())
    saved = first.detach().clone()
    with torch.no_grad():
        if dist.get_rank(group) == 1:
            first.add_(1e-3)
    try:
        H @ torch.ones(H.shape[0], dtype=H.dtype)
    finally:
        with torch.no_grad():
            first.copy_(saved)


def _refresh_on_one_rank(model, batches, group) -> list[torch.Tensor]:
    """Two products of the centred covariance, the model bumped in place on rank 1 between.

    The bump (a multiply by one: same values, a new version) makes rank 1 alone see a
    stale mean gradient; its refresh is a collective, which every rank must then make.
    """
    C = hesskit.gradient_covariance(model, F.cross_entropy, batches, group=group, centered=True)
    v = torch.linspace(-1, 1, C.shape[0], dtype=torch.float64)
    first = C @ v
    if dist.get_rank(group) == 1:
        with torch.no_grad():
            next(model.parameters()).mul_(1.0)
    return [first, C @ v, C @ v]


def _sharded_loaders(rank: int, X, Y, group) -> dict[str, object]:
    """:func:`hesskit.distributed.shard` (no padding) and a dropping DistributedSampler."""
    dataset = TensorDataset(X, Y)
    shard = DataLoader(distributed.shard(dataset, group), batch_size=4)
    dropping = DataLoader(
        dataset, batch_size=4, sampler=DistributedSampler(dataset, 2, rank, drop_last=True)
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hesskit.hessian(_problem()[0], F.cross_entropy, dropping, group=group)
    H = hesskit.hessian(_problem()[0], F.cross_entropy, shard, group=group)
    return {
        "shard": hesskit.dense(H),
        "shard_sizes": H.objective.shard_sizes,
        "dropped_warning": [str(w.message) for w in caught],
        "broadcast": distributed.broadcast({"rank": rank}, group),
    }


def _worker(rank: int, world: int, init_file: str, out: str, device: str) -> None:
    """One rank: every scenario, results saved to ``out/rank{rank}.pt`` (or the error)."""
    torch.set_num_threads(1)
    backend = "nccl" if device == "cuda" and torch.cuda.device_count() >= world else "gloo"
    if device == "cuda":
        torch.cuda.set_device(rank % torch.cuda.device_count())
        device = f"cuda:{torch.cuda.current_device()}"
    dist.init_process_group(
        backend, init_method=f"file://{init_file}", rank=rank, world_size=world,
        timeout=GROUP_TIMEOUT,
    )  # fmt: skip
    try:
        model, X, Y = _problem(device)
        group = dist.group.WORLD
        results: dict[str, object] = {"backend": backend}
        results["values"] = _everything(model, X, Y, _shard(rank, X, Y), group, device)
        if device == "cpu":
            results["errors"] = _errors(rank, model, X, Y, group)
            results["refresh"] = _refresh_on_one_rank(model, _shard(rank, X, Y), group)
            results.update(_sharded_loaders(rank, X, Y, group))
        torch.save(results, Path(out) / f"rank{rank}.pt")
    except Exception:
        (Path(out) / f"rank{rank}.error").write_text(traceback.format_exc())
        raise
    finally:
        dist.destroy_process_group()


def _run_pair(tmp: Path, device: str = "cpu") -> list[dict]:
    """Spawn two ranks of :func:`_worker`; fail (never hang) if one does not finish."""
    context = mp.get_context("spawn")
    args = (2, str(tmp / "rendezvous"), str(tmp), device)
    processes = [context.Process(target=_worker, args=(rank, *args)) for rank in range(2)]
    for process in processes:
        process.start()
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    hung = [process.pid for process in processes if process.is_alive()]
    for process in processes:
        if process.is_alive():
            process.kill()
    assert not hung, f"distributed workers {hung} still running after {JOIN_TIMEOUT_S} s"
    errors = [p.read_text() for p in sorted(tmp.glob("rank*.error"))]
    assert not errors, "\n".join(errors)
    assert [process.exitcode for process in processes] == [0, 0]
    return [torch.load(tmp / f"rank{rank}.pt", weights_only=False) for rank in range(2)]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    """What each of the two ranks saw (the pair runs once for the whole module)."""
    return _run_pair(tmp_path_factory.mktemp("distributed"))


@pytest.fixture(scope="module")
def single() -> dict[str, torch.Tensor]:
    """The same quantities in one process on the union of the shards (same batches)."""
    model, X, Y = _problem()
    batches = _shard(0, X, Y) + _shard(1, X, Y)
    return _everything(model, X, Y, batches, None, "cpu")


def _union_hessian_truth() -> torch.Tensor:
    """Dense float64 truth: ``torch.func.hessian`` of the mean loss over all 11 samples."""
    model, X, Y = _problem()
    names = [name for name, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    flat = hesskit.params.flatten_parameters(model).detach()

    def loss(theta):
        tensors = dict(zip(names, torch.split(theta, [s.numel() for s in shapes]), strict=True))
        tensors = {n: t.reshape(s) for (n, t), s in zip(tensors.items(), shapes, strict=True)}
        return F.cross_entropy(functional_call(model, tensors, (X,)), Y)

    return torch.func.hessian(loss)(flat)


def test_products_equal_the_single_process_operator_of_the_union(ranks, single):
    for name in ("hessian", "hessian_fwd", "matvec", "ggn", "covariance", "loss", "gradient"):
        torch.testing.assert_close(ranks[0]["values"][name], single[name], **ROUND_OFF)
    torch.testing.assert_close(ranks[0]["values"]["hessian"], _union_hessian_truth(), **ROUND_OFF)
    torch.testing.assert_close(ranks[0]["values"]["path"], single["path"], **ROUND_OFF)


def test_every_result_is_bitwise_equal_on_every_rank(ranks):
    first, second = ranks[0]["values"], ranks[1]["values"]
    assert first.keys() == second.keys()
    different = [name for name in first if not torch.equal(first[name], second[name])]
    assert not different, f"ranks differ in {different}"


def test_algorithms_equal_the_single_process_results(ranks, single):
    values = ranks[0]["values"]
    for name in ("eigenvalues", "nodes", "weights", "trace"):
        torch.testing.assert_close(values[name], single[name], atol=1e-10, rtol=1e-9)
    # eigenvectors up to sign
    overlap = (values["eigenvectors"] * single["eigenvectors"]).sum(0).abs()
    torch.testing.assert_close(overlap, torch.ones(3, dtype=torch.float64), atol=1e-8, rtol=0)


ERRORS = {
    # scenario: (type on every rank, what the message must say)
    "nan": ("ValueError", r"on rank 1 of 2: the loss or its curvature product is not finite on "
            r"data batch 1"),
    "dtype": ("TypeError", r"on rank 1 of 2: data batch 0 .*float32"),
    "empty": ("ValueError", r"on rank 1 of 2: data is empty"),
    "padded": ("ValueError", r"on rank 0 of 2 \(and on ranks \[1\]\): .*DistributedSampler "
               r"that pads the 11 samples to 12 .*hesskit.distributed.shard"),
    "seeds": ("ValueError", r"the ranks passed different vectors .*same seed"),
    "models": ("ValueError", r"different parameter values"),
    "theta": ("ValueError", r"the ranks passed different vectors .*same theta"),
    "drift": ("ValueError", r"the ranks passed different vectors .*same parameters"),
    "group": ("TypeError", r"group must be a torch.distributed.ProcessGroup"),
    "size": ("ValueError", r"on rank 1 of 2: this rank's share has 3 entries, not 2"),
    "other": ("RuntimeError", r"on rank 1 of 2: KeyError: 1"),
    "method": ("ValueError", r"on rank 1 of 2: method must be one of"),
    "centered": ("TypeError", r"on rank 1 of 2: centered must be"),
    "path": ("ValueError", r"on rank 1 of 2: theta_b must have"),
}  # fmt: skip
ONE_RANK_ERRORS = {
    "member": ("ValueError", r"group does not contain this process"),
    "nccl": ("ValueError", r"reduces CUDA tensors only, but the model is on the CPU.*gloo"),
}


@pytest.mark.parametrize("scenario", sorted(ERRORS))
def test_bad_input_on_one_rank_raises_the_same_error_on_every_rank(ranks, scenario):
    kind, pattern = ERRORS[scenario]
    seen = [rank["errors"][scenario] for rank in ranks]
    for name, message, seconds in seen:
        assert name == kind, message
        assert re.search(pattern, message), message
        assert seconds < 10, f"{scenario} took {seconds:.1f} s to raise"
    assert seen[0][1] == seen[1][1], "the ranks raised different messages"


@pytest.mark.parametrize("scenario", sorted(ONE_RANK_ERRORS))
def test_a_group_this_rank_cannot_use_is_refused(ranks, scenario):
    kind, pattern = ONE_RANK_ERRORS[scenario]
    name, message, _ = ranks[1]["errors"][scenario]
    assert name == kind, message
    assert re.search(pattern, message), message


def test_unpadded_shard_equals_the_union_and_a_dropping_sampler_warns(ranks, single):
    torch.testing.assert_close(ranks[0]["shard"], single["hessian"], **ROUND_OFF)
    assert ranks[0]["shard_sizes"] == ranks[1]["shard_sizes"] == (6, 5)
    for rank in ranks:
        assert any("1 of the 11 samples are on no rank" in m for m in rank["dropped_warning"])


def test_a_refresh_one_rank_needs_is_made_by_every_rank(ranks):
    products = [rank["refresh"] for rank in ranks]
    assert all(torch.equal(a, b) for a, b in zip(*products, strict=True))
    for first, *later in products:
        for product in later:
            torch.testing.assert_close(product, first, **ROUND_OFF)


def test_broadcast_gives_rank_0s_object(ranks):
    assert [rank["broadcast"] for rank in ranks] == [{"rank": 0}, {"rank": 0}]


def test_group_without_torch_distributed_is_refused():
    model, X, Y = _problem()
    with pytest.raises(ValueError, match="group needs torch.distributed initialised"):
        hesskit.hessian(model, F.cross_entropy, (X, Y), group=object())


def test_a_distributed_sampler_without_group_is_refused():
    model, X, Y = _problem()
    dataset = TensorDataset(X[:10], Y[:10])
    loader = DataLoader(dataset, batch_size=4, sampler=DistributedSampler(dataset, 2, 0))
    with pytest.raises(ValueError, match="sharded by a DistributedSampler over 2 ranks"):
        hesskit.hessian(model, F.cross_entropy, loader)


def _facts(**changes) -> torch.Tensor:
    """Two ranks' rows of :func:`hesskit.distributed.objective_facts`, rank 1 changed."""
    row = {"samples": 3.0, "n": 43.0, "dtype": 3.0, "device": 0.0, "signed": 5.0, "abs": 9.0}
    other = {**row, **changes}
    return torch.tensor([list(row.values()), list(other.values())], dtype=torch.float64)


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"n": 44.0}, ValueError, r"different numbers of parameters \(rank 0: 43.0, rank 1: 44"),
        ({"dtype": 2.0}, TypeError, r"different dtypes \(rank 0: torch.float64, rank 1: torch.f"),
        ({"device": 1.0}, ValueError, r"different kinds of device \(rank 0: cpu, rank 1: cuda"),
        ({"signed": 5.1}, ValueError, r"different parameter values"),
    ],
)
def test_check_same_objective_names_what_differs(changes, error, match):
    with pytest.raises(error, match=match):
        distributed.check_same_objective(_facts(**changes))


def test_check_same_objective_sums_nothing_and_returns_the_shard_sizes():
    assert distributed.check_same_objective(_facts(samples=8.0)) == (3, 8)


@pytest.mark.gpu
def test_cuda_path_equals_cpu(tmp_path, single):
    """nccl where there are two GPUs; on one GPU, gloo with CUDA tensors (skipped without)."""
    ranks = _run_pair(tmp_path, device="cuda")
    assert ranks[0]["backend"] == ("nccl" if torch.cuda.device_count() >= 2 else "gloo")
    first, second = ranks[0]["values"], ranks[1]["values"]
    for name in first:
        assert torch.equal(first[name], second[name]), name
    for name in ("hessian", "ggn", "loss", "gradient", "eigenvalues"):
        torch.testing.assert_close(first[name], single[name], atol=1e-10, rtol=1e-9)


def test_checksums_see_another_vector_in_a_strided_sample_of_rows():
    gen = torch.Generator().manual_seed(0)
    v, w = torch.randn(100_003, 2, generator=gen), torch.randn(100_003, 2, generator=gen)
    assert distributed.checksums([v])[0] == distributed.checksums([v.clone()])[0]
    assert distributed.checksums([v])[0] != distributed.checksums([w])[0]
    signed, absolute = distributed.checksums([v])
    assert 0 < abs(float(signed)) < float(absolute)


def test_example_runs_with_torchrun():
    """The README's command on two gloo processes (``torchrun`` is ``torch.distributed.run``)."""
    root = Path(__file__).resolve().parents[1]
    torchrun = [sys.executable, "-m", "torch.distributed.run"]
    command = [*torchrun, "--nproc-per-node", "2", "examples/distributed_spectrum.py"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        command, cwd=root, capture_output=True, text=True, timeout=JOIN_TIMEOUT_S, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 ranks (gloo), shards of 899, 898 samples" in done.stdout
    assert "same bits on every rank: True" in done.stdout
