"""CurvatureMonitor against the dense Hessian along a real training run."""

from __future__ import annotations

import functools
import json

import pytest
import torch
from torch import nn

from hesskit import eigsh, track
from hesskit.track import CurvatureMonitor, CurvatureRecord
from tests.cases import dense_loss_hessian


def _problem(dropout: bool = False):
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(60, 5, generator=gen, dtype=torch.float64)
    Y = torch.randint(0, 3, (60,), generator=gen)
    torch.manual_seed(0)
    layers = [nn.Linear(5, 6), nn.Tanh(), *([nn.Dropout(0.5)] if dropout else [])]
    model = nn.Sequential(*layers, nn.Linear(6, 3)).double()  # 57 parameters
    return model, (X, Y)


def _dense_hessian(model: nn.Module, data) -> torch.Tensor:
    """The float64 Hessian of the mean cross-entropy (torch.func.hessian, tests.cases)."""
    return dense_loss_hessian(model, nn.functional.cross_entropy, *data)


def _train(monitor, model, data, *, steps: int, lr: float = 0.5, dense: bool = True):
    """Full-batch GD, the monitor called before every step; the dense truth per record."""
    truths = {}
    for step in range(steps + 1):
        if monitor(step) is not None and dense:
            with torch.no_grad():
                model.eval()
                truths[step] = _dense_hessian(model, data)
                model.train()
        loss = nn.functional.cross_entropy(model(data[0]), data[1])
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for parameter in model.parameters():
                parameter -= lr * parameter.grad
    return truths


def test_records_match_the_dense_hessian_at_every_measured_step(tmp_path):
    model, data = _problem()
    path = tmp_path / "curvature.jsonl"
    monitor = CurvatureMonitor(
        model, nn.functional.cross_entropy, data, every=4, top=2, trace=True,
        density=True, path=path, tol=1e-10, trace_matvecs=45, num_probes=2, num_steps=57,
    )  # fmt: skip
    truths = _train(monitor, model, data, steps=20)
    assert [r.step for r in monitor.records] == [0, 4, 8, 12, 16, 20] == list(truths)
    for record in monitor.records:
        exact = torch.linalg.eigvalsh(truths[record.step])
        scale = float(exact.abs().max())
        top = torch.tensor(record.eigenvalues, dtype=torch.float64)
        assert torch.allclose(top, exact.flip(0)[:2], rtol=0, atol=1e-9 * scale)
        assert record.lambda_max == record.eigenvalues[0]
        assert abs(record.trace - float(exact.sum())) <= 5 * record.trace_stderr + 1e-9
        # full-depth SLQ (57 steps on n = 57) is exact: every weighted node is an eigenvalue
        nodes = torch.tensor(record.density_nodes, dtype=torch.float64)
        weights = torch.tensor(record.density_weights, dtype=torch.float64)
        distance = (nodes[weights > 1e-12][:, None] - exact[None, :]).abs().min(dim=1).values
        assert float(distance.max()) <= 1e-7 * scale
        assert torch.allclose(weights.sum(dim=1), torch.ones(2, dtype=torch.float64))
        assert record.density_matvecs == 2 * 57 and record.trace_matvecs == 45
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [CurvatureRecord(**line) for line in lines] == monitor.records


def test_warm_starts_cost_fewer_products_than_cold_and_agree_with_them():
    counts, values = {}, {}
    for warm in (True, False):
        model, data = _problem()
        monitor = CurvatureMonitor(
            model, nn.functional.cross_entropy, data, every=2, warm_start=warm
        )
        _train(monitor, model, data, steps=40, lr=0.2, dense=False)
        assert [r.warm for r in monitor.records] == [False] + [warm] * 20
        counts[warm] = sum(r.num_matvecs for r in monitor.records[1:])
        values[warm] = torch.tensor(monitor.lambda_max)
    assert counts[True] < 0.8 * counts[False], counts  # measured: 107 against 167
    assert torch.allclose(values[True], values[False], rtol=1e-4)


def test_the_same_seed_gives_the_same_records():
    runs = []
    for _ in range(2):
        model, data = _problem()
        monitor = CurvatureMonitor(model, nn.functional.cross_entropy, data, every=5, trace=True)
        _train(monitor, model, data, steps=10, dense=False)
        runs.append([(r.eigenvalues, r.trace, r.num_matvecs) for r in monitor.records])
    assert runs[0] == runs[1]


def test_a_model_in_train_mode_is_measured_in_eval_mode_and_given_back_as_it_was():
    model, data = _problem(dropout=True)
    model.train()
    monitor = CurvatureMonitor(model, nn.functional.cross_entropy, data, tol=1e-10)
    record = monitor(0)
    assert all(module.training for module in model.modules())
    model.eval()
    exact = torch.linalg.eigvalsh(_dense_hessian(model, data))
    assert record.lambda_max == pytest.approx(float(exact[-1]), rel=1e-9)
    assert monitor(1) is not None and monitor.records[-1].step == 1  # every=1


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"every": 0}, ValueError, "every must be >= 1"),
        ({"top": 1.5}, TypeError, "top must be an int"),
        ({"trace": "yes"}, TypeError, "trace must be True or False"),
        ({"tol": -1.0}, ValueError, "tol must be a finite number > 0"),
        ({"trace_matvecs": 2}, ValueError, "trace_matvecs must be >= 3"),
    ],
)
def test_bad_options_name_the_argument(options, error, match):
    model, data = _problem()
    with pytest.raises(error, match=match):
        CurvatureMonitor(model, nn.functional.cross_entropy, data, **options)


def test_a_solve_that_runs_out_of_budget_is_recorded_as_not_converged(monkeypatch):
    model, data = _problem()
    monitor = CurvatureMonitor(model, nn.functional.cross_entropy, data, warm_start=False)
    assert monitor.measure(0).converged
    monkeypatch.setattr(track, "eigsh", functools.partial(eigsh, max_matvecs=3))
    starved = monitor.measure(1)  # from a random vector, 3 products
    assert not starved.converged and starved.num_matvecs == 3


def test_a_negative_step_is_rejected():
    model, data = _problem()
    monitor = CurvatureMonitor(model, nn.functional.cross_entropy, data)
    with pytest.raises(ValueError, match="step must be >= 0"):
        monitor(-1)
