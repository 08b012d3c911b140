"""A data set as a re-iterable sequence of ``(inputs, targets)`` batches.

Operators average over the whole data set, so they iterate over it once per product.
Accepted forms: one ``(X, Y)`` pair of tensors, or any re-iterable of such pairs (a list,
a ``torch.utils.data.DataLoader``). A one-shot iterator (a generator) is materialised
into a list, since it could be read only once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from hesskit import _checks

Batch = tuple[Any, Any]


@dataclass
class Dataset:
    """Batches of a data set with their sample counts.

    Attributes:
        source: the re-iterable the batches come from.
        batch_sizes: the number of samples in each batch, in iteration order.
    """

    source: Iterable[Batch]
    batch_sizes: tuple[int, ...]

    @property
    def num_samples(self) -> int:
        """Total number of samples."""
        return sum(self.batch_sizes)

    def weighted_batches(self) -> Iterator[tuple[int, float, Any, Any]]:
        """Yield ``(index, n_b / N, inputs, targets)`` so batch means average to the mean."""
        total = self.num_samples
        for index, (inputs, targets) in enumerate(self.source):
            yield index, batch_size(inputs) / total, inputs, targets


def batch_size(inputs: Any) -> int:
    """Number of samples in a batch: the leading size of its (first) input tensor."""
    first = inputs[0] if isinstance(inputs, (tuple, list)) else inputs
    return int(first.shape[0])


def as_dataset(data: Any, *, dtype: torch.dtype, device: torch.device) -> Dataset:
    """Validate ``data`` against the model's dtype and device and count its samples.

    Raises:
        TypeError: if ``data`` is not a pair or an iterable of pairs, or a floating tensor
            has another dtype than the model.
        ValueError: if ``data`` is empty, or a tensor is on another device than the model.
    """
    source = _as_reiterable(data)
    sizes = []
    for index, batch in enumerate(source):
        inputs, targets = _check_pair(batch, index)
        for tensor in _tensors_of(inputs) + _tensors_of(targets):
            kind = dtype if tensor.is_floating_point() else None
            name = f"data batch {index}"
            _checks.check_same_dtype_device(name, tensor, dtype=kind, device=device)
        sizes.append(batch_size(inputs))
    if not sizes or sum(sizes) == 0:
        msg = "data is empty: it yielded no batch with at least one sample"
        raise ValueError(msg)
    return Dataset(source, tuple(sizes))


def _as_reiterable(data: Any) -> Iterable[Batch]:
    if _is_pair_of_tensors(data):
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


def _is_pair_of_tensors(data: Any) -> bool:
    return (
        isinstance(data, Sequence)
        and len(data) == 2
        and all(isinstance(part, torch.Tensor) for part in data)
    )


def _check_pair(batch: Any, index: int) -> Batch:
    if not isinstance(batch, Sequence) or len(batch) != 2:
        msg = f"data batch {index} must be an (inputs, targets) pair, got {type(batch).__name__}"
        raise TypeError(msg)
    inputs, targets = batch
    if not _tensors_of(inputs):
        msg = f"data batch {index} has inputs of type {type(inputs).__name__}, not tensors"
        raise TypeError(msg)
    return inputs, targets


def _tensors_of(part: Any) -> list[torch.Tensor]:
    if isinstance(part, torch.Tensor):
        return [part]
    if isinstance(part, (tuple, list)):
        return [t for t in part if isinstance(t, torch.Tensor)]
    return []
