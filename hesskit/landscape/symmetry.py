"""Parameter-space symmetries of networks: copies that compute the same function.

Permuting the hidden units of a layer (the rows of its weight and bias, and the matching
columns of the next layer's weight) leaves an MLP's function unchanged but moves it to a
different point of parameter space. The straight segment between a network and such a
copy generally crosses a region of higher loss, which makes the pair a negative control
for "no barrier" claims (Frankle et al. 2020, arXiv:1912.05671; Entezari et al. 2022,
arXiv:2110.06296, on permutation symmetry and linear mode connectivity).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn


def permute_hidden_units(
    model: nn.Sequential, layer_index: int, permutation: Sequence[int] | torch.Tensor
) -> nn.Sequential:
    """A copy of an MLP with the output units of one linear layer permuted.

    Unit ``i`` of the copy is unit ``permutation[i]`` of ``model``: the rows of linear
    layer ``layer_index``'s weight and bias are permuted, and so are the columns of the
    next linear layer's weight. The modules between the two layers must have no
    parameters or buffers and act unit-wise (activations), so the function is unchanged.

    Args:
        model: an ``nn.Sequential`` of ``nn.Linear`` layers and parameter-free modules.
        layer_index: which linear layer's outputs to permute, counting linear layers
            from 0; not the last one (its outputs are the network's).
        permutation: a permutation of ``range(out_features)`` of that layer.

    Returns:
        The permuted copy; ``model`` is unchanged.

    Raises:
        TypeError: if ``model`` is not an ``nn.Sequential`` or ``layer_index`` not an int.
        ValueError: if a non-linear module has parameters or buffers, ``layer_index`` is
            out of range, or ``permutation`` is not a permutation of the units.

    Example:
        >>> from hesskit.problems import mlp
        >>> net = mlp([2, 3, 1], seed=0)
        >>> copy_ = permute_hidden_units(net, 0, [2, 0, 1])
        >>> x = torch.randn(4, 2, dtype=torch.float64, generator=torch.Generator())
        >>> torch.allclose(net(x), copy_(x)), torch.equal(net[0].weight, copy_[0].weight)
        (True, False)
    """
    linears = _linear_layers(model)
    if isinstance(layer_index, bool) or not isinstance(layer_index, int):
        msg = f"layer_index must be an int, got {type(layer_index).__name__}"
        raise TypeError(msg)
    if not 0 <= layer_index < len(linears) - 1:
        msg = (
            f"layer_index must be in [0, {len(linears) - 2}] (a linear layer followed by "
            f"another; the model has {len(linears)} linear layers), got {layer_index}"
        )
        raise ValueError(msg)
    units = linears[layer_index].out_features
    order = _check_permutation(permutation, units)
    permuted = copy.deepcopy(model)
    first, second = _linear_layers(permuted)[layer_index : layer_index + 2]
    with torch.no_grad():
        first.weight.copy_(first.weight[order.to(first.weight.device)])
        if first.bias is not None:
            first.bias.copy_(first.bias[order.to(first.bias.device)])
        second.weight.copy_(second.weight[:, order.to(second.weight.device)])
    return permuted


def _linear_layers(model: nn.Module) -> list[nn.Linear]:
    """The ``nn.Linear`` children, in order, checking that no other child holds state.

    Returns:
        The ``nn.Linear`` children of ``model``, in order.

    Raises:
        TypeError: if ``model`` is not an ``nn.Sequential``.
        ValueError: if a child that is not ``nn.Linear`` has parameters or buffers.
    """
    if not isinstance(model, nn.Sequential):
        msg = f"model must be an nn.Sequential MLP, got {type(model).__name__}"
        raise TypeError(msg)
    linears = []
    for position, child in enumerate(model):
        if isinstance(child, nn.Linear):
            linears.append(child)
        elif any(True for _ in child.parameters()) or any(True for _ in child.buffers()):
            msg = (
                f"model[{position}] ({type(child).__name__}) has parameters or buffers; "
                "permute_hidden_units supports linear layers with parameter-free, unit-wise "
                "modules (activations) between them"
            )
            raise ValueError(msg)
    return linears


def _check_permutation(permutation: Sequence[int] | torch.Tensor, units: int) -> torch.Tensor:
    order = torch.as_tensor(permutation)
    if order.dtype.is_floating_point or order.dtype == torch.bool or order.ndim != 1:
        msg = f"permutation must be a 1-D sequence of ints, got {permutation!r}"
        raise ValueError(msg)
    if not torch.equal(order.sort().values.cpu(), torch.arange(units)):
        msg = f"permutation must be a permutation of range({units}), got {order.tolist()}"
        raise ValueError(msg)
    return order.long()
