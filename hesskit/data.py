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
order-independent fingerprint (the float64 sum of the absolute values of every tensor,
one reduction per tensor, compared to round-off once per pass). A source that is
consumed, drops different samples on every pass (a shuffled ``DataLoader`` with
``drop_last=True``) or augments at random raises instead of giving a different matrix
on every product.

A shuffled ``DataLoader`` without ``drop_last`` is fine (a mean does not depend on the
order), but it draws from torch's global random generator on every product; give it its
own, ``DataLoader(..., shuffle=True, generator=torch.Generator().manual_seed(0))``, to keep
the caller's random stream untouched.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, SequentialSampler

from hesskit import _checks

Batch = tuple[Any, Any]

# Relative tolerance of the fingerprint (float64 sums, whose order changes with shuffling).
_FINGERPRINT_RTOL = 1e-9


@dataclass
class Dataset:
    """Batches of a data set with their sample counts, re-read and re-checked on every pass.

    Attributes:
        source: the re-iterable the batches come from.
        batch_sizes: the number of samples in each batch, in iteration order.
        signatures: for a list or tuple, each batch's tensors as (identity, version);
            None for another source.
        fingerprint: for another source, the float64 sum of ``|t|`` over every tensor of
            the first pass; None for a list or tuple.
    """

    source: Iterable[Batch]
    batch_sizes: tuple[int, ...]
    signatures: tuple[tuple[tuple[int, int], ...], ...] | None
    fingerprint: float | None

    @property
    def num_samples(self) -> int:
        """Total number of samples."""
        return sum(self.batch_sizes)

    def weighted_batches(self) -> Iterator[tuple[int, float, Any, Any]]:
        """Yield ``(index, n_b / N, inputs, targets)`` so batch means average to the mean.

        Raises:
            ValueError: at the end of a pass that differs from the first in its number of
                batches, a batch's size or its samples.
        """
        total = self.num_samples
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
            and not _same_fingerprint(float(fingerprint), reference)
        ):
            _raise_changed("it yielded other samples than on the first pass")


def _raise_changed(what: str) -> None:
    msg = (
        f"data changed between passes: {what}. Every product reads the data again, so it "
        "must yield the same samples on every pass: pass a list of batches or a DataLoader "
        "without drop_last and without random augmentation, not a one-shot iterable"
    )
    raise ValueError(msg)


def _same_fingerprint(value: float, reference: float) -> bool:
    if not math.isfinite(reference):  # NaN or inf in the data: the finiteness checks report it
        return not math.isfinite(value)
    return abs(value - reference) <= _FINGERPRINT_RTOL * max(abs(reference), 1e-300)


def _signature(inputs: Any, targets: Any) -> tuple[tuple[int, int], ...]:
    """The batch's tensors as (identity, version counter): the same objects, unmodified.

    Inference tensors keep no version counter; only their identity is compared.
    """
    tensors = tensors_of((inputs, targets))
    return tuple((id(t), -1 if t.is_inference() else t._version) for t in tensors)


def _fingerprint(inputs: Any, targets: Any) -> torch.Tensor:
    """The float64 sum of ``|t|`` over the batch's tensors: order-independent, one kernel each."""
    parts = [t.abs().sum(dtype=torch.float64) for t in tensors_of((inputs, targets))]
    return torch.stack(parts).sum()


def batch_size(inputs: Any) -> int:
    """Number of samples in a batch: the leading size of its (first) input tensor."""
    return int(tensors_of(inputs)[0].shape[0])


def tensors_of(part: Any) -> list[torch.Tensor]:
    """Every tensor in a tensor, or a nest of tuples, lists and dicts of them, in order."""
    if isinstance(part, torch.Tensor):
        return [part]
    if isinstance(part, Mapping):
        return [t for value in part.values() for t in tensors_of(value)]
    if isinstance(part, (tuple, list)):
        return [t for value in part for t in tensors_of(value)]
    return []


def map_tensors(fn: Callable[[torch.Tensor], torch.Tensor], part: Any) -> Any:
    """``part`` with ``fn`` applied to every tensor, keeping its tuples, lists and dicts."""
    if isinstance(part, torch.Tensor):
        return fn(part)
    if isinstance(part, Mapping):
        return {key: map_tensors(fn, value) for key, value in part.items()}
    if isinstance(part, (tuple, list)):
        return type(part)(map_tensors(fn, value) for value in part)
    return part


def as_dataset(data: Any, *, dtype: torch.dtype, device: torch.device) -> tuple[Dataset, Batch]:
    """Validate ``data`` against the model's dtype and device; count and fingerprint it.

    Returns:
        The :class:`Dataset` and its first batch (for one-off checks of the loss).

    Raises:
        TypeError: if ``data`` is not a pair or an iterable of pairs, or a floating tensor
            has another dtype than the model.
        ValueError: if ``data`` is empty, a tensor is on another device than the model, a
            batch's tensors disagree on the number of samples, or ``data`` is a shuffled
            ``DataLoader`` that drops a different incomplete batch on every pass.
    """
    _check_loader(data)
    source = _as_reiterable(data)
    in_memory = isinstance(source, (list, tuple))
    sizes: list[int] = []
    signatures = []
    fingerprint = 0.0
    first: Batch | None = None
    for index, batch in enumerate(source):
        inputs, targets = _check_pair(batch, index)
        for tensor in tensors_of((inputs, targets)):
            kind = dtype if tensor.is_floating_point() else None
            name = f"data batch {index}"
            _checks.check_same_dtype_device(name, tensor, dtype=kind, device=device)
        sizes.append(_check_leading_sizes(inputs, targets, index))
        if in_memory:
            signatures.append(_signature(inputs, targets))
        else:
            fingerprint += float(_fingerprint(inputs, targets))
        first = (inputs, targets) if first is None else first
    if first is None or sum(sizes) == 0:
        msg = "data is empty: it yielded no batch with at least one sample"
        raise ValueError(msg)
    if in_memory:
        return Dataset(source, tuple(sizes), tuple(signatures), None), first
    return Dataset(source, tuple(sizes), None, fingerprint), first


def _check_loader(data: Any) -> None:
    """Reject a loader that drops different samples per pass; warn if it drops samples."""
    if not isinstance(data, DataLoader) or not data.drop_last or data.batch_size is None:
        return
    try:
        dropped = len(data.dataset) % data.batch_size  # type: ignore[arg-type]
    except TypeError:  # an iterable-style dataset has no length
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


def _check_leading_sizes(inputs: Any, targets: Any, index: int) -> int:
    """The batch's number of samples; raise if its tensors disagree on it."""
    shapes = [tuple(t.shape) for t in tensors_of((inputs, targets))]
    if any(len(shape) == 0 for shape in shapes) or len({s[0] for s in shapes}) != 1:
        msg = (
            f"data batch {index} holds tensors with different numbers of samples (leading "
            f"sizes): shapes {', '.join(map(str, shapes))}; inputs and targets must have "
            "one row per sample"
        )
        raise ValueError(msg)
    return shapes[0][0]
