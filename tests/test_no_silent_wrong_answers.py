"""Inputs researchers actually pass that once gave a wrong answer without a word.

The first sections are the cases of issue 11: each test there failed on the code before
the objective layer (it returned a wrong number, raised torch's error from deep inside a
product, or did not raise at all), except two kinds kept as coverage: the shuffled loader
without ``drop_last`` (right then, documented now) and inference mode for the product
methods that already worked in it. The section "correct setups stay accepted" pins
setups that a first version of the checks rejected although their curvature is well
defined (a review found them); "changing data, other contexts" closes the holes the same
review found in the checks themselves.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import hesskit
from hesskit.params import flatten_parameters
from tests.cases import CASES, dense_loss_hessian

F = nn.functional
F64 = torch.float64


def _problem():
    """The 3-class tanh MLP of the test cases on its 24 samples, in float64."""
    return CASES["mlp-tanh"].build(F64)


def _vector(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, dtype=F64, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- data read on every product


class _OneShot:
    """An iterable (not an iterator) that can be read once, like a stream."""

    def __init__(self, batches):
        self._batches = iter(batches)

    def __iter__(self):
        return self._batches


class _RandomSubset:
    """An iterable that yields a different random half of the batches on every pass."""

    def __init__(self, batches):
        self.batches, self.gen = batches, torch.Generator().manual_seed(0)

    def __iter__(self):
        keep = torch.randperm(len(self.batches), generator=self.gen)[: len(self.batches) // 2]
        return iter([self.batches[i] for i in sorted(keep.tolist())])


def test_consumed_iterable_raises_naming_the_data():
    model, X, Y = _problem()
    H = hesskit.hessian(model, F.cross_entropy, _OneShot([(X[:12], Y[:12]), (X[12:], Y[12:])]))
    with pytest.raises(ValueError, match=r"data changed between passes: it yielded 0 batches"):
        H @ _vector(H.shape[0])


def test_iterable_yielding_other_samples_each_pass_raises():
    model, X, Y = _problem()
    batches = [(X[i : i + 4], Y[i : i + 4]) for i in range(0, 24, 4)]
    H = hesskit.hessian(model, F.cross_entropy, _RandomSubset(batches), method="double_backward")
    with pytest.raises(ValueError, match="data changed between passes: it yielded other samples"):
        for _ in range(5):  # some pass draws other batches than the first
            H @ _vector(H.shape[0])


def test_shuffled_loader_dropping_the_last_batch_is_rejected():
    model, X, Y = _problem()
    loader = DataLoader(TensorDataset(X, Y), batch_size=5, shuffle=True, drop_last=True)
    with pytest.raises(ValueError, match="drop_last=True and a RandomSampler"):
        hesskit.hessian(model, F.cross_entropy, loader)


def test_sequential_loader_dropping_the_last_batch_warns_and_uses_what_it_yields():
    model, X, Y = _problem()
    loader = DataLoader(TensorDataset(X, Y), batch_size=5, drop_last=True)
    with pytest.warns(UserWarning, match="drop_last=True: its last 4 samples are never yielded"):
        H = hesskit.hessian(model, F.cross_entropy, loader)
    truth = dense_loss_hessian(model, F.cross_entropy, X[:20], Y[:20])
    torch.testing.assert_close(hesskit.dense(H), truth)


def test_shuffled_loader_without_drop_last_gives_the_same_matrix_and_its_own_generator_spares_the_global_one():  # noqa: E501
    model, X, Y = _problem()
    own = torch.Generator().manual_seed(0)
    loader = DataLoader(TensorDataset(X, Y), batch_size=5, shuffle=True, generator=own)
    H = hesskit.hessian(model, F.cross_entropy, loader)
    state = torch.random.get_rng_state()
    torch.testing.assert_close(hesskit.dense(H), dense_loss_hessian(model, F.cross_entropy, X, Y))
    assert torch.equal(torch.random.get_rng_state(), state)


# ---------------------------------------------------------------- inputs, targets and the loss


def test_inputs_and_targets_of_different_sizes_raise_at_construction():
    model, X, Y = _problem()
    with pytest.raises(ValueError, match="targets must have one row per sample"):
        hesskit.hessian(model, F.cross_entropy, (X, Y[:20]))


def test_targets_that_broadcast_against_the_outputs_raise():
    model = nn.Linear(3, 1).double()
    X = torch.randn(16, 3, dtype=F64, generator=torch.Generator().manual_seed(0))
    match = r"loss_fn broadcasts the targets .* \(outputs \(16, 1\), targets \(16,\)\)"
    with pytest.raises(ValueError, match=match):
        hesskit.hessian(model, F.mse_loss, (X, X.sum(1)))


@pytest.mark.parametrize(
    ("reduction", "match"),
    [
        (
            "none",
            r"loss_fn must return a scalar \(0-d\) tensor, got shape \(24,\); the mean over",
        ),
        ("sum", r"looks like the sum over the batch \(reduction='sum'\?\)"),
    ],
)
def test_loss_that_is_not_a_batch_mean_raises(reduction, match):
    model, X, Y = _problem()

    def loss(outputs, targets):
        return F.cross_entropy(outputs, targets, reduction=reduction)

    with pytest.raises(ValueError, match=match):
        hesskit.hessian(model, loss, (X, Y))


def test_single_pair_for_a_two_input_model_is_one_batch():
    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(2, 3), nn.Linear(4, 3)

        def forward(self, x, z):
            return torch.tanh(self.a(x) + self.b(z))

    torch.manual_seed(0)
    model = TwoInputs().double()
    gen = torch.Generator().manual_seed(1)
    x, z = torch.randn(10, 2, generator=gen, dtype=F64), torch.randn(10, 4, generator=gen)
    z, y = z.double(), torch.randint(0, 3, (10,), generator=gen)
    one_pair = hesskit.dense(hesskit.hessian(model, F.cross_entropy, ((x, z), y)))
    as_list = hesskit.dense(hesskit.hessian(model, F.cross_entropy, [((x, z), y)]))
    torch.testing.assert_close(one_pair, as_list)
    with_dict = hesskit.hessian(model, F.cross_entropy, ({"x": x, "z": z}, y))
    torch.testing.assert_close(hesskit.dense(with_dict), one_pair)


# ---------------------------------------------------------------- the model's mode and buffers


def test_train_mode_after_construction_raises_and_leaves_the_buffers_alone():
    model, X, Y = CASES["mlp-batchnorm"].build(F64)
    H = hesskit.hessian(model, F.cross_entropy, (X, Y), method="double_backward")
    running_mean = model[1].running_mean.clone()
    model.train()
    with pytest.raises(ValueError, match="model is in train mode with batch-dependent layers"):
        H @ _vector(H.shape[0])
    assert torch.equal(model[1].running_mean, running_mean)


class _CountingForward(nn.Module):
    """A layer whose forward writes a buffer (as some caching layers do)."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 2)
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x):
        self.calls += 1
        return self.linear(x)


def test_a_product_never_writes_the_models_buffers():
    model = _CountingForward().double().eval()
    X = torch.randn(8, 3, dtype=F64, generator=torch.Generator().manual_seed(0))
    H = hesskit.hessian(model, F.cross_entropy, (X, torch.zeros(8, dtype=torch.long)))
    H @ _vector(H.shape[0])
    assert float(model.calls) == 0.0


def test_batchnorm_without_running_statistics_is_rejected():
    model = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4, track_running_stats=False)).eval()
    X, Y = torch.randn(8, 5), torch.zeros(8, dtype=torch.long)
    with pytest.raises(ValueError, match="track_running_stats=False"):
        hesskit.hessian(model, F.cross_entropy, (X, Y))


# ---------------------------------------------------------------- autograd modes, non-finite values


@pytest.mark.parametrize(
    "build",
    [
        lambda m, d: hesskit.hessian(m, F.cross_entropy, d),
        lambda m, d: hesskit.hessian(m, F.cross_entropy, d, method="double_backward"),
        lambda m, d: hesskit.hessian(m, F.cross_entropy, d, method="forward_over_reverse"),
        lambda m, d: hesskit.ggn(m, F.cross_entropy, d),
        lambda m, d: hesskit.gradient_covariance(m, F.cross_entropy, d, centered=True),
    ],
    ids=["auto", "double_backward", "forward_over_reverse", "ggn", "covariance"],
)
def test_products_work_under_inference_mode(build):
    model, X, Y = _problem()
    op = build(model, (X, Y))
    v = _vector(op.shape[0])
    expected = op @ v
    with torch.inference_mode():
        inside = op @ v
        top = hesskit.eigsh(op, 2, generator=0)
    torch.testing.assert_close(inside, expected)
    assert top.converged


def test_an_operator_built_under_inference_mode_works():
    model, X, Y = _problem()
    with torch.inference_mode():
        H = hesskit.hessian(model, F.cross_entropy, (X.clone(), Y.clone()))
        product = H @ _vector(H.shape[0])
    truth = dense_loss_hessian(model, F.cross_entropy, X, Y)
    torch.testing.assert_close(product, truth @ _vector(H.shape[0]))


def test_a_non_finite_product_raises_again_on_retry_and_in_eigsh():
    model, X, Y = _problem()
    X = X.clone()
    X[3, 0] = float("nan")
    H = hesskit.hessian(model, F.cross_entropy, (X, Y))  # one batch: the cached graph
    v = _vector(H.shape[0])
    for _ in range(2):
        with pytest.raises(ValueError, match="not finite on data batch 0"):
            H @ v
    with pytest.raises(ValueError, match="not finite on data batch 0"):
        hesskit.eigsh(H, 2, generator=0)


def test_function_hessian_of_a_non_scalar_function_raises():
    with pytest.raises(
        ValueError, match=r"f must return a scalar \(0-d\) tensor, got shape \(3,\)"
    ):
        hesskit.hessian(lambda x: x**2, torch.ones(3, dtype=F64))


def test_interpolation_on_data_with_nan_raises():
    model, X, Y = _problem()
    X = X.clone()
    X[0, 0] = float("nan")
    theta = flatten_parameters(model)
    with pytest.raises(ValueError, match="loss is not finite on data batch 0"):
        hesskit.landscape.interpolate(model, F.cross_entropy, (X, Y), theta, theta + 0.1)


def test_eigsh_rejects_a_non_symmetric_dense_matrix():
    A = torch.triu(torch.ones(6, 6, dtype=F64))
    with pytest.raises(ValueError, match=r"op must be symmetric .* max\|A - A\^T\|"):
        hesskit.eigsh(A, 2, generator=0)


# ---------------------------------------------------------------- correct setups stay accepted


def test_a_loss_that_reshapes_the_outputs_itself_is_accepted():
    model = nn.Linear(3, 1).double()
    X = torch.randn(16, 3, dtype=F64, generator=torch.Generator().manual_seed(0))
    y = X.sum(1)

    def squeezed(outputs, targets):
        return F.mse_loss(outputs.squeeze(1), targets)

    H = hesskit.hessian(model, squeezed, (X, y))
    torch.testing.assert_close(hesskit.dense(H), dense_loss_hessian(model, squeezed, X, y))


@pytest.mark.parametrize("layer", [nn.Dropout(0.2), nn.BatchNorm1d(6)], ids=["dropout", "bn"])
def test_trainers_train_models_in_train_mode(layer):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 6), layer, nn.Tanh(), nn.Linear(6, 3)).double()
    _, X, Y = _problem()
    run = hesskit.train.sgd(model, F.cross_entropy, (X, Y), lr=0.1, batch_size=8, max_steps=6)
    assert run.num_steps == 6 and run.model.training


def test_inputs_without_one_row_per_sample_reach_the_model():
    class Graph(nn.Module):  # node features and an edge list, as graph networks take them
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(4, 3)

        def forward(self, x, edges, scale):
            messages = torch.zeros_like(x).index_add(0, edges[1], x[edges[0]])
            return self.linear(x + messages) * scale

    torch.manual_seed(0)
    model = Graph().double()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(10, 4, generator=gen, dtype=F64)
    edges = torch.randint(0, 10, (2, 30), generator=gen)
    y = torch.randint(0, 3, (10,), generator=gen)
    scale = torch.tensor(2.0, dtype=F64)
    H = hesskit.hessian(model, F.cross_entropy, [((x, edges, scale), y)])
    assert torch.isfinite(hesskit.dense(H)).all()


def test_namedtuple_inputs_keep_their_type():
    import collections

    Inputs = collections.namedtuple("Inputs", ["x", "z"])

    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(2, 3), nn.Linear(4, 3)

        def forward(self, x, z):  # a namedtuple is a tuple: positional arguments
            return self.a(x) + self.b(z)

    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    inputs = Inputs(torch.randn(8, 2, generator=gen), torch.randn(8, 4, generator=gen))
    y = torch.randint(0, 3, (8,), generator=gen)
    H = hesskit.hessian(TwoInputs(), F.cross_entropy, [(inputs, y)])
    C = hesskit.gradient_covariance(TwoInputs(), F.cross_entropy, [(inputs, y)])
    assert H.shape == C.shape == (24, 24)
    assert torch.isfinite(hesskit.dense(C)).all()


def test_low_precision_mean_losses_pass_the_batch_mean_check():
    for seed in range(3):
        model, X, Y = CASES["mlp-tanh"].build(torch.bfloat16, seed=seed)
        hesskit.Objective(model, F.cross_entropy, (X, Y))


def test_a_class_weighted_loss_is_accepted_on_one_batch_and_rejected_on_several():
    model, X, Y = _problem()
    weights = torch.tensor([1.0, 3.0, 0.5], dtype=F64)

    def weighted(outputs, targets):
        return F.cross_entropy(outputs, targets, weight=weights)

    H = hesskit.hessian(model, weighted, (X, Y))
    torch.testing.assert_close(hesskit.dense(H), dense_loss_hessian(model, weighted, X, Y))
    with pytest.raises(ValueError, match="class weights or ignore_index"):
        hesskit.hessian(model, weighted, [(X[:12], Y[:12]), (X[12:], Y[12:])])


def test_a_summed_loss_is_caught_when_the_first_batch_has_one_sample():
    model, X, Y = _problem()

    def summed(outputs, targets):
        return F.cross_entropy(outputs, targets, reduction="sum")

    with pytest.raises(ValueError, match="the sum over the batch"):
        hesskit.hessian(model, summed, [(X[:1], Y[:1]), (X[1:], Y[1:])])


# ---------------------------------------------------------------- changing data, other contexts


class _Flipped(torch.utils.data.Dataset):
    """Samples reversed at random on every read, as a random-flip augmentation does."""

    def __init__(self, X, Y):
        self.X, self.Y, self.gen = X, Y, torch.Generator().manual_seed(0)

    def __len__(self):
        return len(self.X)

    def __getitem__(self, index):
        flip = bool(torch.rand((), generator=self.gen) < 0.5)
        return (self.X[index].flip(0) if flip else self.X[index]), self.Y[index]


def test_random_augmentation_that_permutes_within_a_sample_raises():
    model, X, Y = _problem()
    loader = DataLoader(_Flipped(X, Y), batch_size=8)
    H = hesskit.hessian(model, F.cross_entropy, loader)
    with pytest.raises(ValueError, match="it yielded other samples than on the first pass"):
        H @ _vector(H.shape[0])


def test_a_loader_whose_sampler_yields_whole_batches_is_accepted():
    model, X, Y = _problem()
    sampler = torch.utils.data.SubsetRandomSampler(range(20), generator=torch.Generator())
    loader = DataLoader(TensorDataset(X, Y), batch_size=5, sampler=sampler, drop_last=True)
    H = hesskit.hessian(model, F.cross_entropy, loader)
    truth = dense_loss_hessian(model, F.cross_entropy, X[:20], Y[:20])
    torch.testing.assert_close(hesskit.dense(H), truth)


def test_boolean_tensors_in_a_loader_batch():
    class Masked(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(5, 3)

        def forward(self, x, mask):
            return self.linear(x * mask)

    torch.manual_seed(0)
    model = Masked().double()
    _, X, Y = _problem()
    mask = X > 0
    loader = DataLoader(TensorDataset(X, mask, Y), batch_size=8, collate_fn=_two_inputs)
    H = hesskit.hessian(model, F.cross_entropy, loader)
    H @ _vector(H.shape[0])


def _two_inputs(samples):
    x, mask, y = (torch.stack(parts) for parts in zip(*samples, strict=True))
    return (x, mask), y


def test_a_centred_covariance_first_used_under_inference_mode():
    model, X, Y = _problem()
    C = hesskit.gradient_covariance(model, F.cross_entropy, (X, Y), centered=True)
    v = _vector(C.shape[0])
    with torch.inference_mode():
        inside = C @ v
    torch.testing.assert_close(inside, C @ v)


def test_a_first_cached_product_interrupted_midway_leaves_nothing_cached(monkeypatch):
    model, X, Y = _problem()
    batches = [(X[:12], Y[:12]), (X[12:], Y[12:])]
    H = hesskit.hessian(model, F.cross_entropy, batches, method="cached_graph")
    v = _vector(H.shape[0])
    grad, graphs_built = torch.autograd.grad, []

    def interrupted_on_the_second_graph(*args, **kwargs):
        if kwargs.get("create_graph"):
            graphs_built.append(1)
            if len(graphs_built) == 2:
                raise KeyboardInterrupt  # as Ctrl-C, or a CUDA out-of-memory error
        return grad(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", interrupted_on_the_second_graph)
    with pytest.raises(KeyboardInterrupt):
        H @ v
    monkeypatch.undo()
    torch.testing.assert_close(H @ v, dense_loss_hessian(model, F.cross_entropy, X, Y) @ v)


def test_an_operator_built_with_an_unindexed_device_string_matches_tensors():
    A = hesskit.as_operator(torch.eye(3, dtype=F64))
    op = hesskit.IdentityOperator(3, dtype=F64, device="cpu:0")
    assert op.device == torch.device("cpu")
    torch.testing.assert_close(hesskit.dense(A + op), 2 * torch.eye(3, dtype=F64))


def test_a_dense_matrix_with_nan_is_named():
    with pytest.raises(ValueError, match="op holds NaN or inf"):
        hesskit.eigsh(torch.full((4, 4), float("nan"), dtype=F64), 1)
