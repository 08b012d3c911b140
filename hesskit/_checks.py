"""Input validation: one helper per rule, each raising an error that names the argument.

Every public function validates its user-facing arguments here, so that bad input fails
early with a message that says what was given, what was expected and how to fix it,
instead of an opaque shape error from deep inside torch.
"""

from __future__ import annotations

import math
from typing import Any, Literal, overload

import torch

_WHICH = ("LA", "SA", "LM")


def check_int_in_range(name: str, value: Any, *, low: int, high: int | None = None) -> int:
    """Return ``value`` if it is an int with ``low <= value`` (and ``value <= high``).

    Raises:
        TypeError: if ``value`` is not an int (a bool is refused).
        ValueError: if ``value < low``, or ``value > high`` when ``high`` is given.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        msg = f"{name} must be an int, got {type(value).__name__} {value!r}"
        raise TypeError(msg)
    if value < low or (high is not None and value > high):
        upper = "" if high is None else f" and <= {high}"
        msg = f"{name} must be >= {low}{upper}, got {value}"
        raise ValueError(msg)
    return value


@overload
def check_positive_float(name: str, value: Any, *, allow_none: Literal[False] = ...) -> float: ...
@overload
def check_positive_float(name: str, value: Any, *, allow_none: bool) -> float | None: ...
def check_positive_float(name: str, value: Any, *, allow_none: bool = False) -> float | None:
    """Return ``value`` as a float if it is a finite number > 0 (or None when allowed).

    Raises:
        TypeError: if ``value`` is not an int or a float (a bool is refused).
        ValueError: if ``value`` is not finite or is not > 0.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        msg = f"{name} must be a positive number, got {type(value).__name__} {value!r}"
        raise TypeError(msg)
    if not math.isfinite(value) or value <= 0:
        msg = f"{name} must be a finite number > 0, got {value!r}"
        raise ValueError(msg)
    return float(value)


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` if it is a bool (not a truthy stand-in such as 1 or "yes").

    Raises:
        TypeError: if ``value`` is not a bool.
    """
    if not isinstance(value, bool):
        msg = f"{name} must be True or False, got {type(value).__name__} {value!r}"
        raise TypeError(msg)
    return value


def check_which(which: Any) -> str:
    """Return ``which`` if it names a part of the spectrum: 'LA', 'SA' or 'LM'.

    Raises:
        ValueError: if ``which`` is not one of 'LA', 'SA', 'LM'.
    """
    if which not in _WHICH:
        msg = (
            f"which must be one of {_WHICH} (largest algebraic, smallest algebraic, "
            f"largest magnitude), got {which!r}"
        )
        raise ValueError(msg)
    return which


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``.

    Raises:
        ValueError: if ``value`` is not one of ``choices``.
    """
    if value not in choices:
        msg = f"{name} must be one of {choices}, got {value!r}"
        raise ValueError(msg)
    return value


def check_square_matrix(name: str, tensor: torch.Tensor) -> torch.Tensor:
    """Return ``tensor`` if it is a 2-D square floating-point tensor.

    Raises:
        ValueError: if ``tensor`` is not 2-D or not square.
        TypeError: if ``tensor`` is not floating point.
    """
    if tensor.ndim != 2 or tensor.shape[0] != tensor.shape[1]:
        msg = f"{name} must be a square 2-D tensor (n, n), got shape {tuple(tensor.shape)}"
        raise ValueError(msg)
    if not tensor.is_floating_point():
        msg = f"{name} must be a floating-point tensor, got dtype {tensor.dtype}"
        raise TypeError(msg)
    return tensor


def check_block(
    name: str, block: torch.Tensor, *, n: int, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """Return ``block`` if it is an (n, k) tensor on the operator's dtype and device.

    Raises:
        TypeError: if ``block`` is not a tensor, or its dtype is not ``dtype``.
        ValueError: if ``block`` is not 2-D with ``n`` rows, or is not on ``device``.
    """
    if not isinstance(block, torch.Tensor):
        msg = f"{name} must be a torch.Tensor, got {type(block).__name__}"
        raise TypeError(msg)
    if block.ndim != 2 or block.shape[0] != n:
        msg = f"{name} must have shape ({n}, k) to match the operator, got {tuple(block.shape)}"
        raise ValueError(msg)
    check_same_dtype_device(name, block, dtype=dtype, device=device)
    return block


def check_same_dtype_device(
    name: str, tensor: torch.Tensor, *, dtype: torch.dtype | None, device: torch.device
) -> None:
    """Raise if ``tensor`` is not on ``device`` (and, unless ``dtype`` is None, of ``dtype``).

    Raises:
        ValueError: if ``tensor`` is not on ``device``.
        TypeError: if ``dtype`` is given and ``tensor`` has another dtype.
    """
    if tensor.device != device:
        msg = (
            f"{name} is on device {tensor.device} but the operator/model is on {device}; "
            f"move it with .to({str(device)!r})"
        )
        raise ValueError(msg)
    if dtype is not None and tensor.dtype != dtype:
        msg = (
            f"{name} has dtype {tensor.dtype} but the operator/model has dtype {dtype}; "
            f"convert it with .to({dtype})"
        )
        raise TypeError(msg)


def check_k(k: Any, n: int) -> int:
    """Return ``k`` if 1 <= k < n (Lanczos needs room beyond the wanted eigenpairs).

    Raises:
        TypeError: if ``k`` is not an int.
        ValueError: if ``k < 1`` or ``k >= n``.
    """
    k = check_int_in_range("k", k, low=1)
    if k >= n:
        msg = (
            f"k must be < n = {n} (the operator's dimension), got k = {k}; "
            "for the whole spectrum use torch.linalg.eigvalsh(hesskit.dense(op))"
        )
        raise ValueError(msg)
    return k


def make_generator(
    generator: torch.Generator | int | None, device: torch.device
) -> torch.Generator:
    """Return a ``torch.Generator`` on ``device`` from a generator, a seed, or None (seed 0).

    The library never touches the global RNG: None means a fresh generator with seed 0, so
    that a call without a seed is still reproducible.

    Raises:
        ValueError: if ``generator`` is a generator on another device type than ``device``.
        TypeError: if ``generator`` is neither a generator, an int seed nor None.
    """
    if isinstance(generator, torch.Generator):
        if generator.device.type != device.type:
            msg = (
                f"generator is on device {generator.device} but the operator is on {device}; "
                f"create it with torch.Generator(device={str(device)!r})"
            )
            raise ValueError(msg)
        return generator
    if generator is None:
        seed = 0
    elif isinstance(generator, int) and not isinstance(generator, bool):
        seed = generator
    else:
        msg = f"generator must be a torch.Generator, an int seed or None, got {generator!r}"
        raise TypeError(msg)
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return gen


def check_start_vector(
    name: str, vector: Any, *, n: int, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """Return ``vector`` if it is a finite, nonzero ``(n,)`` tensor of ``dtype`` on ``device``.

    Raises:
        TypeError: if ``vector`` is not a tensor, or its dtype is not ``dtype``.
        ValueError: if its shape is not ``(n,)``, it is not on ``device``, or it holds NaN,
            inf or only zeros.
    """
    if not isinstance(vector, torch.Tensor):
        msg = f"{name} must be a torch.Tensor of shape ({n},), got {type(vector).__name__}"
        raise TypeError(msg)
    if tuple(vector.shape) != (n,):
        msg = f"{name} must have shape ({n},) to match the operator, got {tuple(vector.shape)}"
        raise ValueError(msg)
    check_same_dtype_device(name, vector, dtype=dtype, device=device)
    if not bool(torch.isfinite(vector).all()) or not bool(vector.any()):
        msg = f"{name} must be finite and nonzero (it is normalised to a unit start vector)"
        raise ValueError(msg)
    return vector


@overload
def check_finite_float(name: str, value: Any, *, allow_none: Literal[False] = ...) -> float: ...
@overload
def check_finite_float(name: str, value: Any, *, allow_none: bool) -> float | None: ...
def check_finite_float(name: str, value: Any, *, allow_none: bool = False) -> float | None:
    """Return ``value`` as a float if it is a finite number (or None when allowed).

    Raises:
        TypeError: if ``value`` is not an int or a float (a bool is refused).
        ValueError: if ``value`` is NaN or infinite.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        msg = f"{name} must be a finite number, got {type(value).__name__} {value!r}"
        raise TypeError(msg)
    if not math.isfinite(value):
        msg = f"{name} must be finite, got {value!r}"
        raise ValueError(msg)
    return float(value)


def check_module(name: str, value: Any) -> torch.nn.Module:
    """Return ``value`` if it is a ``torch.nn.Module``.

    Raises:
        TypeError: if ``value`` is not a ``torch.nn.Module``.
    """
    if not isinstance(value, torch.nn.Module):
        msg = f"{name} must be a torch.nn.Module, got {type(value).__name__}"
        raise TypeError(msg)
    return value


def check_callable(name: str, value: Any, *, usage: str) -> Any:
    """Return ``value`` if it is callable; ``usage`` says how it will be called.

    Raises:
        TypeError: if ``value`` is not callable.
    """
    if not callable(value):
        msg = f"{name} must be callable as {usage}, got {value!r}"
        raise TypeError(msg)
    return value


def check_tensor_pair(name: str, data: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``data`` as ``(X, Y)`` if it is a pair of tensors with equal leading sizes.

    Raises:
        TypeError: if ``data`` is not a tuple or list of two tensors.
        ValueError: if either tensor is 0-d, their leading sizes differ, or they hold no
            sample.
    """
    if (
        not isinstance(data, (tuple, list))
        or len(data) != 2
        or not all(isinstance(part, torch.Tensor) for part in data)
    ):
        msg = f"{name} must be an (inputs, targets) pair of tensors, got {type(data).__name__}"
        raise TypeError(msg)
    inputs, targets = data
    if inputs.ndim == 0 or targets.ndim == 0 or inputs.shape[0] != targets.shape[0]:
        msg = (
            f"{name} must hold inputs and targets with the same number of samples (leading "
            f"size), got shapes {tuple(inputs.shape)} and {tuple(targets.shape)}"
        )
        raise ValueError(msg)
    if inputs.shape[0] == 0:
        msg = f"{name} is empty: it holds no sample"
        raise ValueError(msg)
    return inputs, targets


def check_flat_vector(
    name: str, vector: Any, *, n: int, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """Return ``vector`` if it is a finite ``(n,)`` tensor of ``dtype`` on ``device``.

    Raises:
        TypeError: if ``vector`` is not a tensor, or its dtype is not ``dtype``.
        ValueError: if its shape is not ``(n,)``, it is not on ``device``, or it holds NaN or
            inf.
    """
    if not isinstance(vector, torch.Tensor):
        msg = f"{name} must be a torch.Tensor of shape ({n},), got {type(vector).__name__}"
        raise TypeError(msg)
    if tuple(vector.shape) != (n,):
        msg = f"{name} must have shape ({n},), one flat vector, got {tuple(vector.shape)}"
        raise ValueError(msg)
    check_same_dtype_device(name, vector, dtype=dtype, device=device)
    if not bool(torch.isfinite(vector).all()):
        msg = f"{name} must be finite, but it holds NaN or inf"
        raise ValueError(msg)
    return vector


def check_last_dim(name: str, value: Any, *, n: int) -> torch.Tensor:
    """Return ``value`` if it is a floating tensor of shape ``(..., n)``.

    No value-dependent check, so it is safe inside ``torch.func`` transforms.

    Raises:
        TypeError: if ``value`` is not a tensor, or is not floating point.
        ValueError: if ``value`` is 0-d or its last dimension is not ``n``.
    """
    if not isinstance(value, torch.Tensor):
        msg = f"{name} must be a torch.Tensor of shape (..., {n}), got {type(value).__name__}"
        raise TypeError(msg)
    if value.ndim == 0 or value.shape[-1] != n:
        msg = f"{name} must have shape ({n},) or (..., {n}), got {tuple(value.shape)}"
        raise ValueError(msg)
    if not value.is_floating_point():
        msg = f"{name} must be floating point, got dtype {value.dtype}"
        raise TypeError(msg)
    return value


def check_scalar_result(name: str, value: Any, *, advice: str) -> torch.Tensor:
    """Return ``value`` if it is a 0-d tensor; else raise saying what ``name`` returned.

    Raises:
        ValueError: if ``value`` is not a 0-d tensor.
    """
    if not isinstance(value, torch.Tensor) or value.ndim != 0:
        got = f"shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else type(value)
        msg = f"{name} must return a scalar (0-d) tensor, got {got}; {advice}"
        raise ValueError(msg)
    return value
