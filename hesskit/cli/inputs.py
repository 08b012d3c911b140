"""What the command line reads: MODEL and DATA references, checkpoints, the loss, options.

Every failure is a :class:`UsageError` that names the argument at fault; the command line
prints it as one line and exits with status 2, so a mistyped reference never ends in a
traceback.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from hesskit.data import map_tensors
from hesskit.problems import mean_squared_error

DEFAULT_DATASET_BATCH = 256
"""Batch size of the DataLoader built around a ``Dataset`` when ``--batch-size`` is not given."""


class UsageError(Exception):
    """Bad input: printed as ``ARGUMENT: message`` on one line, exit status 2."""

    def __init__(self, argument: str, message: str):
        super().__init__(f"{argument}: {message}")
        self.argument = argument


def resolve(reference: str, argument: str) -> Callable[..., Any]:
    """The function that ``path/to/file.py:function`` or ``package.module:function`` names.

    A file is imported with its folder first on ``sys.path``, as ``python file.py`` would,
    so it can import the modules beside it, but under a private name
    (:func:`_private_name`), so a file named like a module already imported (``copy.py``,
    ``random.py``) does not replace that module for everyone else.

    Returns:
        The callable the reference names.

    Raises:
        UsageError: naming ``argument`` if the reference is malformed, the file or module
            does not import, or the function is missing or not callable.
    """
    target, colon, name = reference.rpartition(":")
    if not colon or not target or not name:
        msg = f"{reference!r} is not path/to/file.py:function nor package.module:function"
        raise UsageError(argument, msg)
    if target.endswith(".py") or "/" in target or "\\" in target:
        module = _import_file(Path(target), argument)
    else:
        module = _guarded(lambda: importlib.import_module(target), argument, f"import {target}")
    function = getattr(module, name, None)
    if not callable(function):
        found = "has no" if function is None else "has a non-callable"
        raise UsageError(argument, f"{target} {found} attribute {name!r}")
    return function


def _import_file(path: Path, argument: str) -> Any:
    if not path.is_file():
        raise UsageError(argument, f"no file {str(path)!r}")
    path = path.resolve()
    name = _private_name(path)
    if name in sys.modules:
        return sys.modules[name]  # MODEL, DATA and --loss in one file: run it once
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageError(argument, f"{str(path)!r} cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    if sys.path[:1] != [str(path.parent)]:
        sys.path.insert(0, str(path.parent))
    sys.modules[name] = module  # so that pickling and dataclasses find it
    loader = spec.loader
    _guarded(lambda: loader.exec_module(module), argument, f"import {path.name}")
    return module


def _private_name(path: Path) -> str:
    """``hesskit_user_<stem>_<hash of the path>``: a module name no other module has.

    Returns:
        ``hesskit_user_<stem>_<hash of the path>``: a module name no other module has.
    """
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    stem = "".join(c if c.isalnum() else "_" for c in path.stem)
    return f"hesskit_user_{stem}_{digest}"


def _guarded(call: Callable[[], Any], argument: str, what: str) -> Any:
    """``call()``, with any exception from the user's code turned into one line.

    Returns:
        What ``call()`` returns.

    Raises:
        UsageError: naming ``argument`` if ``call()`` raises anything, with the exception's
            type, message and the line of the user's code it came from.
    """
    try:
        return call()
    except Exception as error:
        where = traceback.extract_tb(error.__traceback__)[-1]
        msg = f"{what} raised {type(error).__name__}: {error} ({where.filename}:{where.lineno})"
        raise UsageError(argument, " ".join(msg.split())) from error


def build_model(function: Callable[..., Any], reference: str) -> nn.Module:
    """Call MODEL's function; raise naming MODEL unless it returns an ``nn.Module``.

    Returns:
        The module ``function()`` returns.

    Raises:
        UsageError: naming MODEL if ``function()`` raises or does not return an
            ``nn.Module``.
    """
    model = _guarded(function, "MODEL", f"{reference}()")
    if not isinstance(model, nn.Module):
        msg = f"{reference}() returned {type(model).__name__}, not a torch.nn.Module"
        raise UsageError("MODEL", msg)
    return model


def load_checkpoint(model: nn.Module, path: str) -> None:
    """Load the state dict in ``path`` (itself, or its ``state_dict`` or ``model`` entry).

    Read with ``weights_only=True``: a checkpoint is data, never code to run.

    Raises:
        UsageError: naming ``--checkpoint`` if the file is missing or unreadable, holds no
            state dict, or its keys or shapes do not match the model's.
    """
    if not Path(path).is_file():
        raise UsageError("--checkpoint", f"no file {path!r}")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        msg = f"{path!r} is not a checkpoint torch.load can read ({type(error).__name__}: {first})"
        raise UsageError("--checkpoint", msg) from error
    state = _state_dict(saved)
    if state is None:
        msg = (
            f"{path!r} holds neither a state dict nor a dict with a 'state_dict' or 'model' "
            "entry holding one"
        )
        raise UsageError("--checkpoint", msg)
    _check_matches(model, state, path)
    model.load_state_dict(state)


def _state_dict(saved: Any) -> Mapping[str, torch.Tensor] | None:
    if _is_state_dict(saved):
        return saved
    if isinstance(saved, Mapping):
        for key in ("state_dict", "model"):
            if _is_state_dict(saved.get(key)):
                return saved[key]
    return None


def _is_state_dict(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and bool(value)
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())
    )


def _check_matches(model: nn.Module, state: Mapping[str, torch.Tensor], path: str) -> None:
    expected = model.state_dict()
    problems = []
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    if missing:
        problems.append(f"missing {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
    if unexpected:
        extra = ", ".join(unexpected[:3]) + (" ..." if len(unexpected) > 3 else "")
        problems.append(f"unexpected {extra}")
    for key, tensor in state.items():
        if key in expected and tensor.shape != expected[key].shape:
            shapes = f"{tuple(tensor.shape)} in the file, {tuple(expected[key].shape)} in MODEL"
            problems.append(f"{key} has shape {shapes}")
    if problems:
        msg = f"{path!r} does not match MODEL: {'; '.join(problems[:4])}"
        raise UsageError("--checkpoint", msg)


def load_data(
    function: Callable[..., Any],
    reference: str,
    *,
    batch_size: int | None,
    dtype: torch.dtype,
    device: torch.device,
) -> Any:
    """DATA's result as data an :class:`~hesskit.Objective` reads, on ``dtype`` and ``device``.

    An ``(X, Y)`` pair is one batch, or batches of ``--batch-size``; a list of batches is
    taken as it is; a ``Dataset`` is read by a ``DataLoader`` (in order, batches of
    ``--batch-size`` or :data:`DEFAULT_DATASET_BATCH`); a ``DataLoader`` as it is. Floating
    tensors are cast to the model's dtype and every tensor moved to its device.

    Returns:
        A list of converted ``(inputs, targets)`` batches, or a :class:`ConvertedLoader` for a
        ``Dataset`` or a ``DataLoader``.

    Raises:
        UsageError: naming ``--data`` for a result of another kind, ``--batch-size`` for
            data that is batched already.
    """
    data = _guarded(function, "--data", f"{reference}()")
    if _is_pair(data):
        inputs, targets = data
        if batch_size is None:
            return [_converted((inputs, targets), dtype, device)]
        pieces = zip(inputs.split(batch_size), targets.split(batch_size), strict=True)
        return [_converted(batch, dtype, device) for batch in pieces]
    if isinstance(data, DataLoader) or (isinstance(data, (list, tuple)) and data):
        if batch_size is not None:
            msg = f"{reference}() returns batches already ({type(data).__name__}); drop it"
            raise UsageError("--batch-size", msg)
        if isinstance(data, (list, tuple)):
            return [_converted(batch, dtype, device) for batch in data]
        return ConvertedLoader(data, dtype, device)
    if isinstance(data, TorchDataset) and hasattr(data, "__len__"):
        loader = DataLoader(data, batch_size=batch_size or DEFAULT_DATASET_BATCH)
        return ConvertedLoader(loader, dtype, device)
    msg = (
        f"{reference}() returned {type(data).__name__}; expected an (X, Y) pair of tensors, "
        "a list of (inputs, targets) batches, a torch Dataset or a DataLoader"
    )
    raise UsageError("--data", msg)


def _is_pair(data: Any) -> bool:
    return (
        isinstance(data, (tuple, list))
        and len(data) == 2
        and all(isinstance(part, torch.Tensor) for part in data)
    )


def _converted(batch: Any, dtype: torch.dtype, device: torch.device) -> Any:
    def convert(tensor: torch.Tensor) -> torch.Tensor:
        kind = dtype if tensor.is_floating_point() else tensor.dtype
        return tensor.to(device=device, dtype=kind)

    return map_tensors(convert, batch)


class ConvertedLoader:
    """A ``DataLoader`` whose batches come cast to a dtype and moved to a device."""

    def __init__(self, loader: DataLoader, dtype: torch.dtype, device: torch.device):
        self.loader, self.dtype, self.device = loader, dtype, device

    def __iter__(self) -> Iterator[Any]:
        """Every batch of the loader, converted.

        Returns:
            A generator of the loader's batches, floating tensors cast to ``dtype`` and every
            tensor on ``device``.
        """
        return (_converted(batch, self.dtype, self.device) for batch in self.loader)

    def __len__(self) -> int:
        """The loader's number of batches.

        Returns:
            ``len(loader)``.
        """
        return len(self.loader)


def one_hot_mse(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The squared loss, with integer class labels read as one-hot targets.

    The setting of the edge-of-stability studies (Cohen et al. 2021, arXiv:2103.00065):
    mean over samples and outputs of ``(outputs - onehot(targets)) ** 2``.

    Returns:
        The mean squared error, a 0-d tensor.
    """
    if not targets.is_floating_point() and outputs.ndim == targets.ndim + 1:
        targets = nn.functional.one_hot(targets, outputs.shape[-1]).to(outputs.dtype)
    return mean_squared_error(outputs, targets)


LOSSES: Mapping[str, Callable[[Any, Any], torch.Tensor]] = {
    "cross_entropy": nn.functional.cross_entropy,
    "mse": one_hot_mse,
}


def resolve_loss(name: str) -> Callable[[Any, Any], torch.Tensor]:
    """``cross_entropy``, ``mse`` or the function a ``MODULE:FN`` reference names.

    Returns:
        The loss function: ``F.cross_entropy``, :func:`one_hot_mse`, or the resolved
        reference.

    Raises:
        UsageError: naming ``--loss`` if ``name`` is neither a known loss nor a ``MODULE:FN``
            reference that resolves (see :func:`resolve`).
    """
    if name in LOSSES:
        return LOSSES[name]
    if ":" not in name:
        raise UsageError("--loss", f"{name!r} is not cross_entropy, mse nor MODULE:FN")
    return resolve(name, "--loss")


def resolve_device(name: str) -> torch.device:
    """``cpu``, ``cuda`` or ``cuda:N``, checked against the machine.

    Returns:
        The ``torch.device``.

    Raises:
        UsageError: naming ``--device`` if ``name`` is not a CPU or CUDA device, or names a
            CUDA device this machine does not have.
    """
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise UsageError("--device", f"{name!r} is not cpu, cuda or cuda:N") from error
    if device.type not in ("cpu", "cuda"):
        raise UsageError("--device", f"{name!r} is not cpu, cuda or cuda:N")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError("--device", f"{name!r}: CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            count = torch.cuda.device_count()
            raise UsageError("--device", f"{name!r}: this machine has {count} CUDA device(s)")
    return device


def resolve_params(model: nn.Module, names: list[str] | None) -> list[str | nn.Module] | None:
    """The ``--params`` names as parameter names or sub-modules of the model.

    Returns:
        The names and sub-modules to pass as ``params=``, in order; None when ``names`` is
        empty (every parameter).

    Raises:
        UsageError: naming ``--params`` if a name is neither a parameter nor a sub-module.
    """
    if not names:
        return None
    parameters = dict(model.named_parameters())
    modules = dict(model.named_modules())
    chosen: list[str | nn.Module] = []
    for name in names:
        if name in parameters:
            chosen.append(name)
        elif name in modules and name:
            chosen.append(modules[name])
        else:
            known = ", ".join(list(parameters)[:6])
            msg = f"{name!r} is neither a parameter nor a sub-module of MODEL (parameters: {known})"
            raise UsageError("--params", msg)
    return chosen
