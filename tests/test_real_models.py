"""Real models out of the box (issue 21): attention, tied weights, module names, targets.

Every operator is checked against a dense float64 truth: the Hessian of the loss of a flat
parameter vector (``torch.autograd.functional.hessian``, see ``_truth``), run under torch's
math attention kernel, the only one with the derivatives the truth itself needs.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import functional_call
from torch.nn.attention import SDPBackend, sdpa_kernel

import hesskit
from hesskit.operators.hessian import METHODS
from hesskit.params import select_parameters
from tests.test_operators_ggn import dense_ggn

F = nn.functional
TOL = 1e-10  # float64, a few hundred parameters: round-off is ~1e-15 relative to |H| ~ 1
VOCAB, WIDTH, LENGTH, SAMPLES = 5, 4, 6, 4


class CausalTransformer(nn.Module):
    """A stock causal ``nn.TransformerEncoder`` language model (212 parameters)."""

    def __init__(self, *, tied: bool = False) -> None:
        super().__init__()
        self.emb = nn.Embedding(VOCAB, WIDTH)
        layer = nn.TransformerEncoderLayer(
            WIDTH, 2, dim_feedforward=8, dropout=0.0, batch_first=True
        )
        self.enc = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.head = nn.Linear(WIDTH, VOCAB, bias=False)
        if tied:
            self.head.weight = self.emb.weight  # GPT-2's tied output layer
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(LENGTH))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.enc(self.emb(tokens), mask=self.mask, is_causal=True))


class MultiheadAttentionModel(nn.Module):
    """``nn.MultiheadAttention`` called as its eval-mode fast path accepts it."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(VOCAB, WIDTH)
        self.attn = nn.MultiheadAttention(WIDTH, 2, batch_first=True)
        self.head = nn.Linear(WIDTH, VOCAB)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.emb(tokens)
        causal = nn.Transformer.generate_square_subsequent_mask(LENGTH, dtype=x.dtype)
        return self.head(self.attn(x, x, x, need_weights=False, attn_mask=causal)[0])


class ScaledDotProductModel(nn.Module):
    """``F.scaled_dot_product_attention`` with ``is_causal=True``."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(VOCAB, WIDTH)
        self.qkv = nn.Linear(WIDTH, 3 * WIDTH)
        self.head = nn.Linear(WIDTH, VOCAB)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(self.emb(tokens)).chunk(3, dim=-1)
        return self.head(F.scaled_dot_product_attention(q, k, v, is_causal=True))


def token_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the tokens of ``(B, T, V)`` outputs (any trailing shape)."""
    return F.cross_entropy(outputs.reshape(-1, VOCAB), targets.reshape(-1))


def _problem(model_class, **options):
    torch.manual_seed(0)
    model = model_class(**options).double().eval()
    tokens = torch.randint(0, VOCAB, (SAMPLES, LENGTH))
    return model, tokens, torch.randint(0, VOCAB, (SAMPLES, LENGTH))


def _truth(model, X, Y, names=None):
    """Dense float64 Hessian of the flat loss by reverse over reverse.

    Not ``torch.func.hessian``: in torch 2.13 (CPU) its forward-over-reverse is wrong on
    LayerNorm weights (0.17 off on Linear-LayerNorm-Linear; central differences of the
    gradient agree with reverse over reverse to 1e-11, see the test below).
    """
    named = dict(model.named_parameters())
    names = list(named) if names is None else names
    fixed = {k: v.detach() for k, v in named.items() if k not in names}
    shapes = [named[n].shape for n in names]

    def loss(flat):
        parts = torch.split(flat, [s.numel() for s in shapes])
        chosen = {n: p.reshape(s) for n, p, s in zip(names, parts, shapes, strict=True)}
        return token_loss(functional_call(model, {**fixed, **chosen}, (X,)), Y)

    theta = torch.cat([named[n].detach().reshape(-1) for n in names])
    with sdpa_kernel(SDPBackend.MATH):
        return torch.autograd.functional.hessian(loss, theta)


def test_the_truth_agrees_with_central_differences_of_the_gradient():
    model, X, Y = _problem(CausalTransformer)
    objective = hesskit.Objective(model, token_loss, (X, Y))
    theta, step = objective.parameters(), 1e-5
    truth = _truth(model, X, Y)
    for index in (0, 100, 178, 186, 200):  # embedding, FFN, both LayerNorms, head
        shift = torch.zeros_like(theta)
        shift[index] = step
        column = (objective.gradient(theta + shift) - objective.gradient(theta - shift)) / (
            2 * step
        )
        # truncation ~ step^2 |third derivative|, cancellation ~ eps |g| / step: ~1e-10
        torch.testing.assert_close(column, truth[:, index], atol=1e-8, rtol=0)


ATTENTION = [CausalTransformer, MultiheadAttentionModel, ScaledDotProductModel]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("model_class", ATTENTION)
def test_attention_hessian_equals_dense_truth(model_class, method):
    model, X, Y = _problem(model_class)
    fastpath = torch.backends.mha.get_fastpath_enabled()
    H = hesskit.hessian(model, token_loss, [(X[:3], Y[:3]), (X[3:], Y[3:])], method=method)
    result = hesskit.dense(H)
    torch.testing.assert_close(result, _truth(model, X, Y), atol=TOL, rtol=0)
    assert torch.backends.mha.get_fastpath_enabled() == fastpath  # the setting is restored


@pytest.mark.parametrize("model_class", ATTENTION)
def test_attention_ggn_equals_dense_truth(model_class):
    model, X, Y = _problem(model_class)
    with sdpa_kernel(SDPBackend.MATH):
        expected = dense_ggn(model, token_loss, X, Y)
    G = hesskit.dense(hesskit.ggn(model, token_loss, (X, Y)))
    torch.testing.assert_close(G, expected, atol=TOL, rtol=0)


def test_attention_gradient_covariance_equals_dense_truth():
    model, X, Y = _problem(CausalTransformer)
    rows = []
    for x, y in zip(X, Y, strict=True):
        model.zero_grad()
        with sdpa_kernel(SDPBackend.MATH):
            token_loss(model(x[None]), y[None]).backward()
        rows.append(torch.cat([p.grad.reshape(-1) for p in model.parameters()]))
    gradients = torch.stack(rows)
    C = hesskit.dense(hesskit.gradient_covariance(model, token_loss, (X, Y)))
    torch.testing.assert_close(C, gradients.T @ gradients / len(X), atol=TOL, rtol=0)


@pytest.mark.parametrize("method", METHODS)
def test_tied_embedding_is_one_parameter_and_its_hessian_the_dense_one(method):
    model, X, Y = _problem(CausalTransformer, tied=True)
    H = hesskit.hessian(model, token_loss, (X, Y), method=method)
    assert H.shape[0] == sum(p.numel() for p in model.parameters()) == 192
    torch.testing.assert_close(hesskit.dense(H), _truth(model, X, Y), atol=TOL, rtol=0)


@pytest.mark.parametrize("name", ["emb.weight", "head.weight", "head", "emb"])
def test_either_name_of_a_tied_weight_selects_it_once(name):
    model, X, Y = _problem(CausalTransformer, tied=True)
    H = hesskit.hessian(model, token_loss, (X, Y), params=name)
    assert H.objective.layout.names == ("emb.weight",)
    expected = _truth(model, X, Y, names=["emb.weight"])
    torch.testing.assert_close(hesskit.dense(H), expected, atol=TOL, rtol=0)


def test_a_submodule_name_selects_its_parameters():
    model, X, Y = _problem(CausalTransformer)
    H = hesskit.hessian(model, token_loss, (X, Y), params="enc.layers.0.linear2")
    names = ["enc.layers.0.linear2.weight", "enc.layers.0.linear2.bias"]
    assert H.objective.layout.names == tuple(names)
    torch.testing.assert_close(hesskit.dense(H), _truth(model, X, Y, names), atol=TOL, rtol=0)


def test_an_unknown_name_lists_a_few_names_and_the_count():
    model = CausalTransformer()
    count = len(list(model.named_parameters()))
    with pytest.raises(ValueError, match="neither a parameter nor a sub-module") as caught:
        select_parameters(model, "linear")
    assert f"({count} in all)" in str(caught.value)
    assert "enc.layers.0.norm2.bias" not in str(caught.value)  # not every name


@pytest.mark.parametrize("dtype", [torch.int32, torch.float64])
def test_class_indices_of_another_dtype_are_named(dtype):
    model, X, Y = _problem(CausalTransformer)
    with pytest.raises(TypeError, match=rf"targets' dtype {dtype}.*Y = Y.long\(\)"):
        hesskit.hessian(model, token_loss, (X, Y.to(dtype)))


def test_lstm_forward_over_reverse_falls_back_to_double_backward():
    # a float32 nn.LSTM on the CPU runs mkldnn_rnn_layer: no forward-mode derivative
    torch.manual_seed(0)
    lstm = nn.LSTM(2, 3, batch_first=True).eval()
    X, Y = torch.randn(4, 5, 2), torch.randn(4, 5, 3)

    def loss_fn(outputs, targets):
        return (outputs[0] - targets).pow(2).mean()

    H = hesskit.hessian(lstm, loss_fn, (X, Y), method="forward_over_reverse")
    with pytest.warns(RuntimeWarning, match="method='double_backward'"):
        result = hesskit.dense(H)
    assert H.method == "double_backward"
    expected = hesskit.dense(hesskit.hessian(lstm, loss_fn, (X, Y), method="double_backward"))
    torch.testing.assert_close(result, expected, atol=0, rtol=0)  # the same computation
