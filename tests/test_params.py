"""Parameter selection and flat layouts."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import hesskit
from hesskit.params import flatten_parameters, layout_of, select_parameters


def net():
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))


@given(
    st.lists(st.lists(st.integers(1, 4), min_size=0, max_size=3), min_size=1, max_size=4),
    st.integers(0, 3),
)
def test_flatten_unflatten_round_trip(shapes, batch):
    tensors = {f"p{i}": torch.randn(tuple(s)) for i, s in enumerate(shapes)}
    layout = layout_of(tensors)
    flat = layout.flatten(tensors)
    assert flat.shape == (layout.numel,)
    back = layout.unflatten(flat)
    assert all(torch.equal(back[k], tensors[k]) for k in tensors)
    batched = torch.randn(batch, layout.numel)
    assert torch.equal(layout.flatten(layout.unflatten(batched)), batched)


def test_selection_by_names_and_modules_keeps_order_without_duplicates():
    model = net()
    chosen = select_parameters(model, ["2.bias", model[0], "0.weight"])
    assert list(chosen) == ["2.bias", "0.weight", "0.bias"]


def test_flatten_parameters_is_a_detached_copy():
    model = net()
    flat = flatten_parameters(model)
    flat.zero_()
    assert model[0].weight.abs().sum() > 0
    assert not flat.requires_grad


def test_no_trainable_parameters():
    model = net().requires_grad_(False)
    with pytest.raises(ValueError, match="model has no trainable parameters"):
        hesskit.hessian(model, nn.functional.l1_loss, (torch.ones(2, 3), torch.ones(2, 2)))


def test_unknown_name():
    with pytest.raises(
        ValueError, match="'3.weight', which is neither a parameter nor a sub-module"
    ):
        select_parameters(net(), ["3.weight"])


def test_foreign_module():
    with pytest.raises(ValueError, match="module Linear with no parameters in model"):
        select_parameters(net(), [nn.Linear(1, 1)])


def test_wrong_type():
    with pytest.raises(TypeError, match="params must hold parameter names or modules"):
        select_parameters(net(), [3])


def test_empty_selection():
    with pytest.raises(ValueError, match="params selects no parameters"):
        select_parameters(net(), [])


def test_mixed_dtypes_are_rejected():
    model = net()
    model[2].double()
    with pytest.raises(TypeError, match="parameter '2.weight' has dtype torch.float64"):
        hesskit.hessian(model, nn.functional.l1_loss, (torch.ones(2, 3), torch.ones(2, 2)))
