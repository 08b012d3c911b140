"""Data parallelism over ``torch.distributed``: every rank holds a shard, sums agree on all.

With ``group=`` (a ``torch.distributed`` process group) an :class:`~hesskit.Objective`, and
so every curvature operator and the landscape paths built on it, is the objective of the
*union* of the ranks' shards: each rank passes its own data, the loss, gradient and every
product are the sample-weighted sums over all ranks (one ``all_reduce`` of the ``(n, k)``
block per product), and the sample counts are summed once, at construction, so shards may
differ in size. The algorithms (``eigsh``, ``spectral_density``, ``trace``) then run
unchanged on every rank: they see the same products and draw the same probes from the same
seed, so they return the same bits on every rank of one kind of hardware with one thread
count (tested with gloo). Where the ranks' floating point differs, a solver's stopping test
can decide differently on two ranks, and one is left waiting for the timeout;
:func:`broadcast` hands out rank 0's result, it does not make the runs agree.

No rank is left waiting in a collective (the design of this module):

- a rank whose local work fails (bad data, a non-finite loss or product, a data set that
  changed) still joins the collective, with a failure flag in the same buffer, so every
  rank learns of it from the one ``all_reduce`` it makes anyway; the ranks then exchange
  the message in a second collective (only on failure) and all raise the same error;
- at construction one small collective agrees on what every rank must share (number of
  parameters, dtype, device type, the parameters' values) and sums the sample counts;
- every summed block carries a checksum of each rank's input block and parameters, so
  ranks that pass different vectors (a generator seeded with the rank), or whose models
  drifted apart after construction (an update on one rank only), raise instead of
  summing products of different vectors or models. (The parameters are copied for it
  only when their version counters change.)

The constructors' and ``interpolate``'s arguments are checked on every rank together
(:meth:`~hesskit.Objective.on_every_rank`); the algorithms' (``eigsh``'s ``k``, ``v0``, ...)
are not: one bad on one rank only raises there, and the others wait as below.

What this cannot catch is a rank that dies or never calls: the others wait for the
process group's ``timeout`` (``torch.distributed.init_process_group(timeout=...)``); set
it to a few times the longest product, not the 10-30 minute defaults.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from hesskit.data import as_rows, position_weights

T = TypeVar("T")

# the bytes of an error message that reach the other ranks
_MESSAGE_BYTES = 2048
_ERRORS: dict[str, type[Exception]] = {"ValueError": ValueError, "TypeError": TypeError}


def check_group(group: Any) -> dist.ProcessGroup | None:
    """Return ``group`` if it is a process group this process belongs to (or None).

    Raises:
        TypeError: if ``group`` is neither None nor a ``torch.distributed.ProcessGroup``.
        ValueError: if ``torch.distributed`` is not initialised or this process is not a
            member of ``group``.
    """
    if group is None:
        return None
    if not dist.is_available() or not dist.is_initialized():
        msg = (
            "group needs torch.distributed initialised: call "
            "torch.distributed.init_process_group(...) (torchrun sets the environment), "
            "then pass group=torch.distributed.group.WORLD or a new_group(...)"
        )
        raise ValueError(msg)
    # new_group(...) returns this placeholder on the ranks outside the group
    if group is dist.GroupMember.NON_GROUP_MEMBER:
        msg = "group does not contain this process: pass a group it is a member of"
        raise ValueError(msg)
    if not isinstance(group, dist.ProcessGroup):
        msg = f"group must be a torch.distributed.ProcessGroup or None, got {type(group).__name__}"
        raise TypeError(msg)
    return group


class Reducer:
    """Sums of per-rank tensors over ``group`` in which every rank learns of any failure.

    Args:
        group: a process group this process belongs to.
    """

    def __init__(self, group: dist.ProcessGroup) -> None:
        self.group = group
        self.rank = dist.get_rank(group)
        self.size = dist.get_world_size(group)
        backend = str(dist.get_backend(group))
        # nccl reduces CUDA tensors only; gloo (and 'cpu:gloo,cuda:nccl') reduce CPU ones
        self._host_device = (
            torch.device("cuda", torch.cuda.current_device())
            if "nccl" in backend and "gloo" not in backend
            else torch.device("cpu")
        )
        self.backend = backend

    def check_device(self, device: torch.device) -> None:
        """Raise if the group's backend cannot reduce tensors on ``device``.

        Raises:
            ValueError: if ``device`` is a CPU and the backend reduces CUDA tensors only
                (nccl).
        """
        if device.type == "cpu" and self._host_device.type != "cpu":
            msg = (
                f"group uses the {self.backend} backend, which reduces CUDA tensors only, but "
                "the model is on the CPU: create the group with backend='gloo' "
                "(torch.distributed.new_group(backend='gloo'))"
            )
            raise ValueError(msg)

    def gather(self, facts: Callable[[], Sequence[float]], *, width: int) -> torch.Tensor:
        """Run ``facts`` on every rank; return the ``(size, width)`` table of every rank's.

        One collective: each rank's ``width`` floats (float64) fill its row of a table
        summed over the group, with a failure flag beside them.

        Returns:
            A ``(size, width)`` float64 tensor on the CPU; row ``r`` holds rank ``r``'s facts.

        Raises:
            ValueError: (or TypeError, or RuntimeError for any other error) on every rank,
                if ``facts`` raised on some rank; the message names that rank.
        """
        table = torch.zeros(self.size, width + 1, dtype=torch.float64, device=self._host_device)
        error: Exception | None = None
        try:
            table[self.rank, :width] = torch.tensor(list(facts()), dtype=torch.float64)
        except Exception as caught:  # re-raised on every rank below
            error = caught
            table[self.rank, width] = 1.0
        dist.all_reduce(table, group=self.group)
        self._raise_if_failed(table[:, width].tolist(), error)
        return table[:, :width].cpu()

    def sum(
        self,
        compute: Callable[[], torch.Tensor],
        *,
        shape: tuple[int, ...],
        dtype: torch.dtype,
        device: torch.device,
        same: Sequence[torch.Tensor] = (),
    ) -> torch.Tensor:
        """``sum`` over the ranks of each rank's ``compute()`` (of ``shape``), the same on all.

        One ``all_reduce`` of ``numel + 3 * size`` entries: the local result, then per rank
        a failure flag and a checksum (signed, absolute) of the tensors in ``same``, which
        must be equal on every rank (the block of a product, a point ``theta``).

        Returns:
            The sum over the group, a tensor of ``shape`` and ``dtype`` on ``device``, equal on
            every rank.

        Raises:
            ValueError: on every rank, if ``compute`` failed on some rank (the error names
                the rank; a TypeError stays one, any other error becomes a RuntimeError)
                or ``same`` differs between ranks.
        """
        numel = math.prod(shape)
        status = torch.zeros(3, self.size, dtype=dtype, device=device)
        error: Exception | None = None
        try:
            local = compute().reshape(-1)
            if local.numel() != numel:  # (a buffer of another size would block the others)
                msg = f"this rank's share has {local.numel()} entries, not {numel}"
                raise ValueError(msg)
            if same:
                status[1:, self.rank] = torch.stack(checksums(same))
        except Exception as caught:  # re-raised on every rank below
            error = caught
            local = torch.zeros(numel, dtype=dtype, device=device)
            status[0, self.rank] = 1.0
        buffer = torch.cat([local, status.reshape(-1)])  # one copy: the product, then status
        dist.all_reduce(buffer, group=self.group)
        flags, signed, absolute = buffer[numel:].view(3, self.size).tolist()  # one host sync
        self._raise_if_failed(flags, error)
        _check_same(signed, absolute, dtype)
        return buffer[:numel].view(shape)

    def _raise_if_failed(self, flags: list[float], error: Exception | None) -> None:
        """Raise on every rank if a flag is set; the failing ranks' messages go to all."""
        failed = [rank for rank, flag in enumerate(flags) if flag != 0]
        if not failed:
            return
        text = None if error is None else f"{type(error).__name__}: {error}"
        first = self._messages(text, device=self._host_device)[failed[0]]
        kind, _, message = first.partition(": ")
        others = f" (and on ranks {failed[1:]})" if len(failed) > 1 else ""
        kept = kind in _ERRORS
        msg = f"on rank {failed[0]} of {self.size}{others}: {message if kept else first}"
        raise _ERRORS.get(kind, RuntimeError)(msg) from error

    def _messages(self, text: str | None, *, device: torch.device) -> list[str]:
        """Every rank's ``text`` (truncated to ``_MESSAGE_BYTES``): one more collective.

        Returns:
            One string per rank, in rank order; empty for a rank that passed None.
        """
        table = torch.zeros(self.size, _MESSAGE_BYTES, dtype=torch.uint8, device=device)
        if text is not None:
            data = text.encode()[:_MESSAGE_BYTES]
            table[self.rank, : len(data)] = torch.tensor(list(data), dtype=torch.uint8)
        dist.all_reduce(table, group=self.group)
        rows = table.cpu().tolist()
        return [bytes(row).rstrip(b"\0").decode(errors="replace") for row in rows]


def checksums(tensors: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """``sum w^T t`` and ``sum w^T |t|`` over ``tensors`` (0-d, float64, on their device).

    ``w`` are fixed irregular positive weights over at most ``_CHECKED_ROWS`` evenly
    strided rows: vectors of two ranks that differ (another seed, another point) differ
    in every row, so a sample of rows sees it at a cost that does not grow with ``n``
    (a full pass cost 40% of a product on a 1e5-parameter MLP with 64 samples per rank).
    Equal tensors give equal checksums, bit for bit on one kind of hardware. Left on the
    device: packing them costs no host synchronisation.

    Returns:
        ``(signed, absolute)``: two 0-d float64 tensors.
    """
    signed, absolute = [], []
    for tensor in tensors:
        rows = as_rows(tensor.detach())
        rows = rows[:: max(1, rows.shape[0] // _CHECKED_ROWS)]
        weights = position_weights(rows.shape[0], rows.dtype, rows.device)
        signed.append((weights @ rows).sum(dtype=torch.float64))
        absolute.append((weights @ rows.abs()).sum(dtype=torch.float64))
    return torch.stack(signed).sum(), torch.stack(absolute).sum()


_CHECKED_ROWS = 4096


def _check_same(signed: list[float], absolute: list[float], dtype: torch.dtype) -> None:
    """Raise if the ranks' checksums differ by more than round-off.

    Raises:
        ValueError: if the signed checksums differ by more than ``sqrt(eps)`` times the
            largest absolute checksum.
    """
    tolerance = math.sqrt(torch.finfo(dtype).eps) * max(absolute)
    if max(signed) - min(signed) <= tolerance:
        return
    msg = (
        "the ranks passed different vectors (checksums per rank: "
        f"{', '.join(f'{s:.6g}' for s in signed)}): every rank must make the same call with "
        "the same arguments, the same theta, the same seed (generator=0, not a generator "
        "seeded with the rank), and hold the same parameters (a model updated on one rank "
        "only)"
    )
    raise ValueError(msg)


NUM_FACTS = 6
"""The length of :func:`objective_facts`."""
_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_DEVICE_TYPES = ("cpu", "cuda")


def objective_facts(objective: Any) -> list[float]:
    """What :func:`check_same_objective` compares: samples, ``n``, dtype, device, values.

    ``objective`` is a built :class:`~hesskit.Objective` (this rank's shard).

    Returns:
        ``[num_samples, n, dtype code, device code, signed checksum, absolute checksum]`` of
        this rank's objective, as floats (code -1 for a dtype or device type hesskit does not
        list).
    """
    signed, absolute = checksums([objective.parameters()])
    device = objective.device.type
    return [
        objective.dataset.num_samples,
        objective.num_parameters,
        _DTYPES.index(objective.dtype) if objective.dtype in _DTYPES else -1,
        _DEVICE_TYPES.index(device) if device in _DEVICE_TYPES else -1,
        float(signed),
        float(absolute),
    ]


def check_same_objective(facts: torch.Tensor) -> tuple[int, ...]:
    """Every rank's number of samples, after checking that the ranks share the model.

    ``facts`` holds one row of :func:`objective_facts` per rank, the same on every rank,
    so every rank takes the same decision.

    Returns:
        The number of samples of each rank's shard, in rank order.

    Raises:
        ValueError: if the ranks differ in the number of parameters, their device type or
            their values (beyond round-off).
        TypeError: if they differ in dtype.
    """
    columns = facts.T.tolist()
    samples, sizes, dtypes, devices = columns[:4]
    if len(set(sizes)) > 1:
        msg = (
            f"the ranks' objectives have different numbers of parameters ({_per_rank(sizes)}): "
            "every rank must pass the same model and the same params="
        )
        raise ValueError(msg)
    if len(set(dtypes)) > 1:
        names = [str(_DTYPES[int(code)]) if code >= 0 else "other" for code in dtypes]
        msg = f"the ranks' parameters have different dtypes ({_per_rank(names)}); use one"
        raise TypeError(msg)
    if len(set(devices)) > 1:
        names = [_DEVICE_TYPES[int(code)] if code >= 0 else "other" for code in devices]
        msg = f"the ranks' parameters are on different kinds of device ({_per_rank(names)})"
        raise ValueError(msg)
    try:
        _check_same(columns[4], columns[5], _DTYPES[int(dtypes[0])])
    except ValueError as error:
        msg = (
            "the ranks' models have different parameter values: initialise them with the "
            "same seed or load the same checkpoint on every rank (or broadcast rank 0's "
            "state_dict) before building the operator"
        )
        raise ValueError(msg) from error
    return tuple(int(count) for count in samples)


def _per_rank(values: Sequence[Any]) -> str:
    return ", ".join(f"rank {rank}: {value}" for rank, value in enumerate(values))


def check_sampler_group(data: Any, ranks: int) -> None:
    """Raise if ``data`` is sharded by a ``DistributedSampler`` over another number of ranks.

    Raises:
        ValueError: if the sampler's ``num_replicas`` is not ``ranks``, the number of
            ranks the objective sums over (1 without a group).
    """
    sampler = getattr(data, "sampler", None)
    if not isinstance(data, DataLoader) or not isinstance(sampler, DistributedSampler):
        return
    if sampler.num_replicas != ranks:
        msg = (
            f"data is sharded by a DistributedSampler over {sampler.num_replicas} ranks, but "
            f"the objective sums over {ranks}: pass group= (the group the sampler shards "
            "over), or its curvature is that of this rank's shard alone"
        )
        raise ValueError(msg)


def shard(dataset: Dataset, group: dist.ProcessGroup | None = None) -> Subset:
    """This rank's shard of ``dataset``: samples ``rank, rank + size, ...``, no padding.

    Unlike ``DistributedSampler`` (which repeats samples so every rank gets as many),
    every sample lands on exactly one rank; the shards may differ in size by one, which
    hesskit's sample weighting handles exactly.

    Returns:
        A ``Subset`` of ``dataset``: every sample without torch.distributed (and no group),
        else samples ``rank, rank + size, ...`` of ``group`` (the default group if None).

    Example:
        >>> import torch, hesskit.distributed
        >>> data = torch.utils.data.TensorDataset(torch.arange(5.0))
        >>> len(hesskit.distributed.shard(data))  # without torch.distributed: everything
        5
    """
    if group is None and not (dist.is_available() and dist.is_initialized()):
        return Subset(dataset, range(len(dataset)))  # type: ignore[arg-type]
    rank, size = dist.get_rank(group), dist.get_world_size(group)
    return Subset(dataset, range(rank, len(dataset), size))  # type: ignore[arg-type]


def broadcast(result: T, group: dist.ProcessGroup | None = None) -> T:
    """``result`` (any picklable object: an ``EigenResult``, a density) as rank 0 has it.

    For ranks whose floating point may differ in the last bits; on one kind of hardware
    with one thread count every rank already has the same bits.

    Returns:
        Rank 0's ``result``, on every rank of ``group`` (the default group if None).
    """
    objects = [result]
    source = dist.get_global_rank(group, 0) if group is not None else 0
    dist.broadcast_object_list(objects, src=source, group=group)
    return objects[0]
