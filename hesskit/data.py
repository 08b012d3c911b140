"""A data set as a re-iterable sequence of ``(inputs, targets)`` batches, checked on every pass.

An objective averages over the whole data set, so every product of a curvature operator
reads the data once more. Accepted forms:

- one batch: a tuple ``(inputs, targets)`` whose targets are a tensor or whose inputs are
  a dict, or a list ``[x, y]`` of two tensors; inputs are a tensor, a tuple/list of
  tensors (the model's positional arguments) or a dict of tensors (its keyword
  arguments), so ``((x, z), y)`` is one batch of a two-input model;
- any re-iterable of such batches (a list, a ``torch.utils.data.DataLoader``). A one-shot
  iterator (a generator) is materialised into a list, since it could be read only once.
  One batch with several targets, ``((x, z), (y1, y2))``, reads as two batches: wrap it
  in a list, ``[((x, z), (y1, y2))]``.

Every pass after the first is checked against the first: the same number of batches, the
same sizes and the same samples. For a list or tuple of batches the same tensors, not
modified in place (their identities and version counters: free); for any other source an
order-independent fingerprint (``sum_i |x_i . w|`` over samples, with fixed weights ``w``
over the positions within a sample: one matrix-vector product per tensor, compared to
round-off once per pass; it sees a changed, dropped or flipped sample, a dropped sample
down to about one in 10^5 in float32). A source that is
consumed, drops different samples on every pass (a shuffled ``DataLoader`` with
``drop_last=True``) or augments at random raises instead of giving a different matrix
on every product.

A shuffled ``DataLoader`` without ``drop_last`` is fine (a mean does not depend on the
order), but it draws from torch's global random generator on every product; give it its
own, ``DataLoader(..., shuffle=True, generator=torch.Generator().manual_seed(0))``, to keep
the caller's random stream untouched.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, DistributedSampler, SequentialSampler

from hesskit import _checks

Batch = tuple[Any, Any]


@dataclass
class Dataset:
    """Batches of a data set with their sample counts, re-read and re-checked on every pass.

    Attributes:
        source: the re-iterable the batches come from.
        batch_sizes: the number of samples in each batch, in iteration order.
        signatures: for a list or tuple, each batch's tensors as (identity, version);
            None for another source.
        fingerprint: for another source, :func:`_fingerprint` summed over the first
            pass, and its relative tolerance; None for a list or tuple.
    """

    source: Iterable[Batch]
    batch_sizes: tuple[int, ...]
    signatures: tuple[tuple[tuple[int, int], ...], ...] | None
    fingerprint: tuple[float, float] | None

    @property
    def num_samples(self) -> int:
        """Total number of samples."""
        return sum(self.batch_sizes)

    def weighted_batches(self, total: int | None = None) -> Iterator[tuple[int, float, Any, Any]]:
        """Yield ``(index, n_b / N, inputs, targets)`` so batch means average to the mean.

        ``N`` is ``total`` if given (all ranks' samples, for a shard), else this data's.

        Raises:
            ValueError: at the end of a pass that differs from the first in its number of
                batches, a batch's size or its samples.
        """
        total = self.num_samples if total is None else total
        expected = len(self.batch_sizes)
        fingerprint: torch.Tensor | None = None
        index = -1
        for index, (inputs, targets) in enumerate(self.source):
            size = batch_size(inputs)
            if index >= expected or size != self.batch_sizes[index]:
                first = self.batch_sizes[index] if index < expected else "no batch"
                _raise_changed(f"batch {index} holds {size} samples (first pass: {first})")
            if self.signatures is not None:
                if _signature(inputs, targets) != self.signatures[index]:
                    _raise_changed(f"batch {index} was replaced or modified in place")
            else:
                part = _fingerprint(inputs, targets)  # stays on the device: one sync per pass
                fingerprint = part if fingerprint is None else fingerprint + part
            yield index, size / total, inputs, targets
        if index + 1 != expected:
            _raise_changed(f"it yielded {index + 1} batches (first pass: {expected})")
        reference = self.fingerprint
        if (
            fingerprint is not None
            and reference is not None
            and not _same_fingerprint(float(fingerprint), *reference)
        ):
            _raise_changed("it yielded other samples than on the first pass")


def _raise_changed(what: str) -> None:
    msg = (
        f"data changed between passes: {what}. Every product reads the data again, so it "
        "must yield the same samples on every pass: pass a list of batches or a DataLoader "
        "without drop_last and without random augmentation, not a one-shot iterable"
    )
    raise ValueError(msg)


def _same_fingerprint(value: float, reference: float, rtol: float) -> bool:
    if not math.isfinite(reference):  # NaN or inf in the data: the finiteness checks report it
        return not math.isfinite(value)
    return abs(value - reference) <= rtol * max(abs(reference), 1e-300)


def _signature(inputs: Any, targets: Any) -> tuple[tuple[int, int], ...]:
    """The batch's tensors as (identity, version counter): the same objects, unmodified.

    Inference tensors keep no version counter; only their identity is compared.

    Returns:
        One ``(id(t), version)`` pair per tensor of the batch, in order; the version is -1
        for an inference tensor.
    """
    tensors = tensors_of((inputs, targets))
    return tuple((id(t), -1 if t.is_inference() else t._version) for t in tensors)


def _fingerprint(inputs: Any, targets: Any) -> torch.Tensor:
    """``sum_i |x_i . w|`` over the batch's samples and tensors, in float64 on the device.

    ``w`` weights the positions within a sample (fixed, irregular), so the fingerprint does
    not depend on the order of the samples but does see a sample changed, dropped, or
    permuted within itself (a flipped image). One matrix-vector product per tensor, in the
    tensor's precision (float32 at least), accumulated in float64.

    Returns:
        The fingerprint, a 0-d float64 tensor on the batch's device.
    """
    parts = []
    for tensor in tensors_of((inputs, targets)):
        rows = as_rows(tensor)
        parts.append((rows @ position_weights(rows.shape[1], rows.dtype, rows.device)).abs())
    return torch.cat(parts).sum(dtype=torch.float64)


def _fingerprint_rtol(inputs: Any, targets: Any) -> float:
    """The round-off of :func:`_fingerprint` between passes that order samples differently.

    Returns:
        The relative tolerance: 64 eps of the least precise tensor's row dtype.
    """
    return max(64 * torch.finfo(as_rows(t).dtype).eps for t in tensors_of((inputs, targets)))


def as_rows(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` as ``(samples, features)`` in float32 or float64 (bool and ints: float64).

    Returns:
        The 2-D view (or copy) of ``tensor``; a 0-d tensor becomes ``(1, 1)``.
    """
    rows = tensor.reshape(tensor.shape[0], -1) if tensor.ndim else tensor.reshape(1, 1)
    if not rows.is_floating_point():
        return rows.to(torch.float64)
    return rows if rows.dtype == torch.float64 else rows.to(torch.float32)


@functools.lru_cache(maxsize=64)
def position_weights(size: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``size`` fixed irregular weights in [1, 2) (golden-ratio steps): order-sensitive sums.

    Returns:
        A ``(size,)`` tensor of ``dtype`` on ``device``: ``1 + frac(i * (sqrt(5) - 1) / 2)``.
    """
    golden = (math.sqrt(5) - 1) / 2
    positions = torch.arange(size, dtype=torch.float64)
    return (1 + (positions * golden) % 1).to(dtype=dtype, device=device)


def batch_size(inputs: Any) -> int:
    """Number of samples in a batch: the leading size of its (first) input tensor.

    Returns:
        The leading size of the first tensor in ``inputs``.
    """
    return int(tensors_of(inputs)[0].shape[0])


def tensors_of(part: Any) -> list[torch.Tensor]:
    """Every tensor in a tensor, or a nest of tuples, lists and dicts of them, in order.

    Returns:
        The tensors, depth first in the order of the containers (a dict's insertion order).
    """
    if isinstance(part, torch.Tensor):
        return [part]
    if isinstance(part, Mapping):
        return [t for value in part.values() for t in tensors_of(value)]
    if isinstance(part, (tuple, list)):
        return [t for value in part for t in tensors_of(value)]
    return []


def map_tensors(fn: Callable[[torch.Tensor], torch.Tensor], part: Any) -> Any:
    """``part`` with ``fn`` applied to every tensor, keeping its (named) tuples, lists, dicts.

    Returns:
        A new structure of the same shape (named tuples stay named tuples, mappings become
        dicts); leaves that are not tensors are kept as they are.
    """
    if isinstance(part, torch.Tensor):
        return fn(part)
    if isinstance(part, Mapping):
        return {key: map_tensors(fn, value) for key, value in part.items()}
    if isinstance(part, (tuple, list)):
        values = [map_tensors(fn, value) for value in part]
        return type(part)(*values) if hasattr(part, "_fields") else type(part)(values)
    return part


def as_dataset(data: Any, *, dtype: torch.dtype, device: torch.device) -> tuple[Dataset, Batch]:
    """Validate ``data`` against the model's dtype and device; count and fingerprint it.

    Returns:
        The :class:`Dataset` and a probe batch for one-off checks of the loss: the first
        batch with at least two samples (else the first).

    Raises:
        TypeError: if ``data`` is not a pair or an iterable of pairs, or a floating tensor
            has another dtype than the model.
        ValueError: if ``data`` is empty, a tensor is on another device than the model, a
            batch's targets do not have one row per sample, or ``data`` is a shuffled
            ``DataLoader`` that drops a different incomplete batch on every pass.
    """
    _check_loader(data)
    source = _as_reiterable(data)
    in_memory = isinstance(source, (list, tuple))
    if in_memory and any(t.is_inference() for t in tensors_of(list(source))):
        source = [normal_tensors(batch) for batch in source]  # copied once, not every pass
    sizes: list[int] = []
    signatures = []
    fingerprint, rtol = 0.0, 0.0
    probe: Batch | None = None
    for index, batch in enumerate(source):
        inputs, targets = _check_pair(batch, index)
        for tensor in tensors_of((inputs, targets)):
            kind = dtype if tensor.is_floating_point() else None
            name = f"data batch {index}"
            _checks.check_same_dtype_device(name, tensor, dtype=kind, device=device)
        sizes.append(_check_sample_counts(inputs, targets, index))
        if in_memory:
            signatures.append(_signature(inputs, targets))
        else:
            fingerprint += float(_fingerprint(inputs, targets))
            rtol = max(rtol, _fingerprint_rtol(inputs, targets))
        if probe is None or (batch_size(probe[0]) < 2 <= sizes[-1]):
            probe = (inputs, targets)
    if probe is None or sum(sizes) == 0:
        msg = "data is empty: it yielded no batch with at least one sample"
        raise ValueError(msg)
    if in_memory:
        return Dataset(source, tuple(sizes), tuple(signatures), None), probe
    return Dataset(source, tuple(sizes), None, (fingerprint, rtol)), probe


def normal_tensors(batch: Any) -> Any:
    """``batch`` with inference tensors replaced by normal copies (autograd can save those).

    Returns:
        ``batch`` itself if it holds no inference tensor, else a copy of its structure with
        the inference tensors cloned.
    """
    if not any(t.is_inference() for t in tensors_of(batch)):
        return batch
    with torch.inference_mode(False):
        return map_tensors(lambda t: t.clone() if t.is_inference() else t, batch)


def _check_loader(data: Any) -> None:
    """Reject a loader that drops different samples per pass; warn if it drops samples.

    Raises:
        ValueError: if ``data`` is a ``DataLoader`` with ``drop_last=True`` and a sampler that
            is not sequential, which drops other samples on every pass, or with a
            ``DistributedSampler`` that pads the data set.
    """
    if isinstance(data, DataLoader) and isinstance(data.sampler, DistributedSampler):
        _check_distributed_sampler(data.sampler)
    if not isinstance(data, DataLoader) or not data.drop_last or data.batch_size is None:
        return
    try:
        dropped = len(data.sampler) % data.batch_size  # type: ignore[arg-type]
    except TypeError:  # an iterable-style dataset's sampler has no length
        return
    if dropped == 0:
        return
    if not isinstance(data.sampler, SequentialSampler):
        msg = (
            f"data is a DataLoader with drop_last=True and a {type(data.sampler).__name__}: "
            f"it drops a different {dropped} samples on every pass, so every product would "
            "see another data set. Pass drop_last=False (shuffling is then harmless)"
        )
        raise ValueError(msg)
    warnings.warn(
        f"data is a DataLoader with drop_last=True: its last {dropped} samples are never "
        "yielded, so the curvature is that of the samples it yields",
        UserWarning,
        stacklevel=4,
    )


def _check_distributed_sampler(sampler: DistributedSampler) -> None:
    """Reject padding (repeated samples would count twice); warn if samples are dropped.

    Raises:
        ValueError: if the sampler pads the data set by repeating samples.
    """
    size = len(sampler.dataset)  # type: ignore[arg-type]
    if sampler.total_size > size:
        repeated = sampler.total_size - size
        msg = (
            f"data is a DataLoader with a DistributedSampler that pads the {size} samples "
            f"to {sampler.total_size} by repeating {repeated}, so the curvature would weight "
            "them twice. Shard without padding: DataLoader(hesskit.distributed.shard(dataset, "
            "group), batch_size=...) (hesskit weights shards of unequal size exactly)"
        )
        raise ValueError(msg)
    if sampler.total_size < size:
        warnings.warn(
            f"data is a DataLoader with DistributedSampler(drop_last=True): "
            f"{size - sampler.total_size} of the {size} samples are on no rank, so the "
            "curvature is that of the others; hesskit.distributed.shard(dataset, group) "
            "keeps every sample",
            UserWarning,
            stacklevel=5,
        )


def _as_reiterable(data: Any) -> Iterable[Batch]:
    if _is_one_batch(data):
        return [tuple(data)]
    if not isinstance(data, Iterable) or isinstance(data, torch.Tensor):
        msg = (
            "data must be an (inputs, targets) pair of tensors or an iterable of such "
            f"batches (a list, a DataLoader), got {type(data).__name__}"
        )
        raise TypeError(msg)
    if isinstance(data, Iterator):
        return list(data)
    return data


def _is_one_batch(data: Any) -> bool:
    """Whether ``data`` is one ``(inputs, targets)`` pair rather than a list of batches.

    A list is one batch only as ``[x, y]`` of two tensors (as a ``DataLoader`` yields);
    a tuple also as ``((x, z), y)`` or ``({"x": x}, y)``, for models of several inputs.

    Returns:
        True if ``data`` is a single batch, False if it is a collection of batches.
    """
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        return False
    inputs, targets = data
    if isinstance(data, list):
        return isinstance(inputs, torch.Tensor) and isinstance(targets, torch.Tensor)
    if isinstance(inputs, Mapping):
        return bool(tensors_of(inputs))
    return isinstance(targets, torch.Tensor) and bool(tensors_of(inputs))


def _check_pair(batch: Any, index: int) -> Batch:
    if not isinstance(batch, Sequence) or len(batch) != 2:
        msg = (
            f"data batch {index} must be an (inputs, targets) pair, got "
            f"{type(batch).__name__}; one batch of a model with several inputs is the tuple "
            "((x, z), y), a list of batches is [((x, z), y), ...]"
        )
        raise TypeError(msg)
    inputs, targets = batch
    if not tensors_of(inputs):
        msg = (
            f"data batch {index} has inputs of type {type(inputs).__name__}, not tensors "
            "(a tensor, a tuple of tensors or a dict of tensors)"
        )
        raise TypeError(msg)
    return inputs, targets


def _check_sample_counts(inputs: Any, targets: Any, index: int) -> int:
    """The batch's number of samples (its first input's leading size), checked on the targets.

    Every target tensor must have that leading size. Other inputs may have any shape (edge
    lists, masks, scalars).

    Returns:
        The leading size of the first input tensor.

    Raises:
        ValueError: if the first input tensor is 0-d, or a target tensor is 0-d or has
            another leading size.
    """
    first = tensors_of(inputs)[0]
    if first.ndim == 0:
        msg = (
            f"data batch {index} has a 0-d first input tensor; the first input must have "
            "one row per sample (its leading size is the batch size)"
        )
        raise ValueError(msg)
    size = int(first.shape[0])
    shapes = [tuple(t.shape) for t in tensors_of(targets)]
    if any(len(shape) == 0 or shape[0] != size for shape in shapes):
        msg = (
            f"data batch {index} has {size} samples in its (first) inputs, of shape "
            f"{tuple(first.shape)}, but targets of shape {', '.join(map(str, shapes))}: "
            "the targets must have one row per sample (different numbers of samples)"
        )
        raise ValueError(msg)
    return size
