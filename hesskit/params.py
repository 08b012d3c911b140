"""Flat parameter vectors and named tensors.

Curvature operators act on one flat vector of length n = the number of selected
parameters, while a model is evaluated on named tensors through
``torch.func.functional_call``. This module converts between the two views and selects
which parameters an operator differentiates (all trainable ones, a list of names, or the
parameters of given sub-modules), without ever mutating the user's model.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

_SHOWN = 5  # how many known names an error about an unknown name lists


@dataclass(frozen=True)
class ParameterLayout:
    """Names, shapes and offsets of the selected parameters inside one flat vector."""

    names: tuple[str, ...]
    shapes: tuple[torch.Size, ...]

    @property
    def sizes(self) -> tuple[int, ...]:
        """Number of entries of each named tensor."""
        return tuple(int(torch.Size(s).numel()) for s in self.shapes)

    @property
    def numel(self) -> int:
        """Length of the flat vector."""
        return sum(self.sizes)

    def flatten(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        """Concatenate named tensors into a flat vector; a leading batch dim is kept.

        Returns:
            A ``(..., n)`` tensor: the tensors flattened and concatenated in the layout's order.
        """
        parts = [tensors[name] for name in self.names]
        lead = parts[0].shape[: parts[0].ndim - len(self.shapes[0])]
        flat = [p.reshape((*lead, size)) for p, size in zip(parts, self.sizes, strict=True)]
        return torch.cat(flat, dim=-1)

    def unflatten(self, vector: torch.Tensor) -> dict[str, torch.Tensor]:
        """Split a flat vector (or a (..., n) batch of them) into named tensors.

        Returns:
            The named tensors, each of shape ``(..., *shape)``: views of ``vector``.
        """
        lead = vector.shape[:-1]
        chunks = torch.split(vector, list(self.sizes), dim=-1)
        return {
            name: chunk.reshape((*lead, *shape))
            for name, chunk, shape in zip(self.names, chunks, self.shapes, strict=True)
        }


def select_parameters(
    model: nn.Module, params: Iterable[str | nn.Module] | str | nn.Module | None
) -> dict[str, torch.Tensor]:
    """Return the named parameters an operator differentiates, detached from autograd.

    A tensor shared by several names (tied weights, such as GPT-2's output layer and
    embedding) is selected once, under its first name in ``model.named_parameters()``,
    whichever of its names ``params`` gives.

    Args:
        model: the network.
        params: None for every parameter with ``requires_grad``; otherwise parameter names
            (as in ``model.named_parameters(remove_duplicate=False)``), sub-module names
            (as in ``model.named_modules()``, e.g. ``"linear"``) and/or sub-modules of
            ``model``, whose parameters are selected.

    Returns:
        The selected parameters by name, detached, each tensor once, in the order named.

    Raises:
        TypeError: if ``params`` holds something that is neither a name nor a module.
        ValueError: if a name or module is not part of ``model``, or nothing is selected.
    """
    named = dict(model.named_parameters())
    if params is None:
        chosen = [name for name, p in named.items() if p.requires_grad]
        if not chosen:
            msg = (
                "model has no trainable parameters (none with requires_grad=True); "
                "pass params=[...] to choose which to differentiate"
            )
            raise ValueError(msg)
    else:
        chosen = _resolve_selection(model, named, params)
    return {name: named[name].detach() for name in chosen}


def _resolve_selection(
    model: nn.Module,
    named: dict[str, nn.Parameter],
    params: Iterable[str | nn.Module] | str | nn.Module,
) -> list[str]:
    """Turn names and sub-modules into an ordered, duplicate-free list of parameter names.

    Returns:
        The selected parameters' first names, in the order they are first named.

    Raises:
        ValueError: if a name is neither a parameter nor a sub-module of the model, a module
            holds no parameter of the model, or nothing is selected.
        TypeError: if an item is neither a name nor a module.
    """
    items = [params] if isinstance(params, (str, nn.Module)) else list(params)
    by_identity = {id(p): name for name, p in named.items()}
    aliases = {
        alias: by_identity[id(p)] for alias, p in model.named_parameters(remove_duplicate=False)
    }
    modules = {name: module for name, module in model.named_modules() if name}
    chosen: list[str] = []
    for item in items:
        if isinstance(item, str) and item in aliases:
            new = [aliases[item]]
        elif isinstance(item, str) and item in modules:
            new = _module_parameters(modules[item], by_identity, what=f"module {item!r}")
        elif isinstance(item, str):
            raise ValueError(_unknown_name(item, list(aliases), list(modules)))
        elif isinstance(item, nn.Module):
            new = _module_parameters(item, by_identity, what=f"a module {type(item).__name__}")
        else:
            msg = f"params must hold parameter names or modules, got {type(item).__name__}"
            raise TypeError(msg)
        chosen.extend(name for name in new if name not in chosen)
    if not chosen:
        msg = "params selects no parameters; pass at least one name or module"
        raise ValueError(msg)
    return chosen


def _module_parameters(module: nn.Module, by_identity: dict[int, str], *, what: str) -> list[str]:
    """The first names of the model's parameters that ``module`` holds.

    Returns:
        The names, in ``module.parameters()`` order.

    Raises:
        ValueError: if ``module`` holds no parameter of the model.
    """
    new = [by_identity[id(p)] for p in module.parameters() if id(p) in by_identity]
    if not new:
        msg = f"params holds {what} with no parameters in model"
        raise ValueError(msg)
    return new


def _unknown_name(item: str, parameters: list[str], modules: list[str]) -> str:
    """The error message for a name that is neither a parameter nor a module of the model.

    Returns:
        The message, with a few of the known names and how many there are.
    """

    def some(names: list[str]) -> str:
        shown = ", ".join(names[:_SHOWN])
        return f"{shown}, ... ({len(names)} in all)" if len(names) > _SHOWN else shown

    return (
        f"params names {item!r}, which is neither a parameter nor a sub-module of the model; "
        f"parameters: {some(parameters)}; modules: {some(modules) or 'none'} (see "
        "model.named_parameters() and model.named_modules())"
    )


def layout_of(tensors: dict[str, torch.Tensor]) -> ParameterLayout:
    """The flat layout of a dict of named tensors, in its order.

    Returns:
        The :class:`ParameterLayout` of the tensors' names and shapes.
    """
    return ParameterLayout(tuple(tensors), tuple(t.shape for t in tensors.values()))


def flatten_parameters(
    model: nn.Module, params: Iterable[str | nn.Module] | str | nn.Module | None = None
) -> torch.Tensor:
    """The selected parameters of ``model`` as one detached flat vector (a copy).

    Returns:
        A ``(n,)`` tensor: a copy of the selected parameters, flattened.
    """
    selected = select_parameters(model, params)
    return layout_of(selected).flatten(selected).clone()
