"""The asv suite in benchmarks/: params agree with param_names, imports stay cheap, and the
helpers that gate timings on accuracy compute what they claim."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import benchmarks

ROOT = Path(__file__).resolve().parents[1]
MODULES = [
    importlib.import_module(f"benchmarks.{info.name}")
    for info in pkgutil.iter_modules(benchmarks.__path__)
    if info.name.startswith("bench_")
]
CLASSES = [
    obj
    for module in MODULES
    for _, obj in inspect.getmembers(module, inspect.isclass)
    if obj.__module__ == module.__name__ and not obj.__name__.startswith("_")
]


def test_suite_has_one_module_per_area() -> None:
    names = {module.__name__.rsplit(".", 1)[1] for module in MODULES}
    assert names == {"bench_operators", "bench_eigen", "bench_density", "bench_trace"}


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_params_and_param_names_agree(cls) -> None:
    params = cls.params if isinstance(cls.params, tuple) else (cls.params,)
    assert len(params) == len(cls.param_names), (cls.params, cls.param_names)
    for values in params:
        assert isinstance(values, list) and values, values
        assert len(set(map(repr, values))) == len(values), f"duplicate values in {values}"
        assert all(isinstance(v, (int, str)) for v in values), values
    benchmarks_of = [n for n in vars(cls) if n.startswith(("time_", "track_", "peakmem_"))]
    assert benchmarks_of, f"{cls.__name__} has no benchmark"
    arity = len(params) + (1 if hasattr(cls, "setup_cache") else 0)
    for name in ["setup", *benchmarks_of]:
        signature = inspect.signature(getattr(cls, name))
        assert len(signature.parameters) == arity + 1, (name, signature)


def test_importing_the_suite_imports_neither_torch_nor_hesskit() -> None:
    names = ", ".join(module.__name__ for module in MODULES)
    code = (
        f"import sys, {names}; print(sorted(m for m in ('torch', 'hesskit') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_gpu_params_are_the_same_on_every_machine() -> None:
    from benchmarks import _workloads

    assert _workloads.DEVICES == ("cpu", "cuda")
    assert _workloads.SIZES == ("1e3", "1e4", "1e5", "1e6", "1e7")


def test_wasserstein_helper_on_known_measures() -> None:
    from benchmarks.bench_density import wasserstein_over_range

    spectrum = torch.tensor([0.0, 1.0, 2.0, 3.0], dtype=torch.float64)
    same = wasserstein_over_range(spectrum, torch.ones(4), spectrum)
    assert same == pytest.approx(0.0, abs=1e-15)
    # every atom moved right by 0.3: W1 = 0.3, range = 3
    shifted = wasserstein_over_range(spectrum + 0.3, torch.full((4,), 2.0), spectrum)
    assert shifted == pytest.approx(0.1, rel=1e-12)
    # all mass at the mean 1.5: W1 = mean |x - 1.5| = 1.0
    point = wasserstein_over_range(torch.tensor([1.5]), torch.tensor([1.0]), spectrum)
    assert point == pytest.approx(1.0 / 3.0, rel=1e-12)


def test_eigenvalue_error_helpers() -> None:
    from benchmarks._workloads import scaled_error

    reference = torch.tensor([4.0, 2.0, 1.0], dtype=torch.float64)
    values = torch.tensor([1.001, 4.0, 2.0])  # any order: sorted descending first
    assert scaled_error(values, reference) == pytest.approx(0.25e-3, rel=1e-3)
    assert scaled_error(values[:2], reference) == float("inf")


def test_probe_is_the_same_vectors_in_every_dtype() -> None:
    from benchmarks._workloads import probe

    single, double = probe(50, 3), probe(50, 3, dtype=torch.float64)
    assert single.dtype == torch.float32 and double.shape == (50, 3)
    torch.testing.assert_close(single.double(), double, rtol=1e-7, atol=0)
    assert torch.equal(probe(50, 3), single)


def test_vector_error_helper() -> None:
    from benchmarks._workloads import vector_error

    reference = torch.tensor([3.0, 4.0], dtype=torch.float64)
    assert vector_error(torch.tensor([[3.0], [4.5]]), reference) == pytest.approx(0.1)
    assert vector_error(torch.ones(3), reference) == float("inf")


def _peer_products() -> list[str]:
    from benchmarks import _peers

    return sorted(_peers.PRODUCTS)


ADAPTERS = ["torch_func_hvp", "double_backward_hvp", *_peer_products()]


# PyHessian calls backward(create_graph=True), which torch warns about.
@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True:UserWarning")
@pytest.mark.parametrize("adapter", ADAPTERS)
def test_product_adapters_compute_the_hessian_product(adapter: str) -> None:
    """Every baseline's and peer's product equals hesskit's on a small tanh MLP (peers that
    are not installed are skipped, as in the suite)."""
    from benchmarks import _packages, _peers

    make = _peers.PRODUCTS.get(adapter) or getattr(_peers, adapter)
    if adapter in _packages.PACKAGES:
        pytest.importorskip(_packages.PACKAGES[adapter])
    import hesskit

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3))
    X, Y = torch.randn(20, 5), torch.randint(0, 3, (20,))
    loss = torch.nn.functional.cross_entropy
    vector = torch.randn(sum(p.numel() for p in model.parameters()))
    expected = hesskit.hessian(model, loss, (X, Y)) @ vector
    torch.testing.assert_close(make(model, X, Y)(vector), expected, rtol=1e-5, atol=1e-6)


def _results_file(tmp_path: Path, results: dict) -> Path:
    """A results file in asv's format (api version 2), as ``asv run`` writes it."""
    import json

    data = {
        "commit_hash": "0" * 40,
        "env_name": "existing-py",
        "date": 0,
        "params": {"machine": "test"},
        "python": "3.11",
        "requirements": {},
        "env_vars": {},
        "result_columns": ["result", "params", "version"],
        "results": results,
        "durations": {},
        "version": 2,
    }
    path = tmp_path / "test" / "00000000-existing-py.json"
    path.parent.mkdir()
    path.write_text(json.dumps(data))
    return path


def test_summary_reads_asv_results_and_judges_each_target(tmp_path: Path) -> None:
    from benchmarks.summary import Run, solver_table, targets

    top = "bench_eigen.TopEigenvalues."
    solvers = ["'hesskit.eigsh[auto]'", "'peer:a'", "'peer:b'", "'baseline:cached-graph+scipy'"]
    params = [["'W1'"], solvers]
    path = _results_file(
        tmp_path,
        {
            top + "time_top10": [[0.05, 0.2, None, 0.04], params, "v"],
            top + "track_products": [[43, 49, 20, 49], params, "v"],
            top + "track_error_over_lambda1": [[4e-7, 1e-6, 0.09, 5e-7], params, "v"],
        },
    )
    run = Run.load(path)
    assert run.get(top + "time_top10", "W1", "peer:a") == 0.2
    assert run.get(top + "time_top10", "W1", "peer:b") is None  # skipped: missed accuracy
    rows = "\n".join(targets(run))
    assert "| top-10 speed-up over the fastest peer, W1 (`peer:a`) | >= 2 | 4.00 | yes |" in rows
    assert "| top-10 speed-up over the fastest peer, W2 (`None`) | >= 2 | n/a | n/a |" in rows
    baseline = "`baseline:cached-graph+scipy`"
    assert f"| top-10 speed-up over {baseline}, W1 | >= 1 | 0.80 | **no** |" in rows
    assert f"| top-10 products / {baseline}'s, W1 | <= 1 | 0.88 | yes |" in rows
    lines = solver_table(run, "bench_eigen.TopEigenvalues", ("W1", "W2", "W3"))
    assert "| `peer:b` | (misses accuracy) / 20 / 9.0e-02 | skipped | skipped |" in lines


def test_summary_marks_a_missed_target() -> None:
    from benchmarks.summary import Run, targets

    name = "bench_operators.ProductScaling.track_gradients_per_product"
    run = Run(
        {name: {("1e5", 256, "cached_graph", "cpu"): 1.4, ("1e3", 256, "cached_graph", "cpu"): 9.0}}
    )
    rows = "\n".join(targets(run))
    assert (
        "| product / gradient, `cached_graph`, n >= 1e5 (CPU, worst) | <= 1 | 1.40 | **no** |"
        in rows
    )


def test_figure_relates_each_solver_to_the_baseline_and_drops_gated_times(tmp_path: Path) -> None:
    from benchmarks.figure import draw, relative_times
    from benchmarks.summary import TOP10_TIME, Run

    run = Run(
        {
            TOP10_TIME: {
                ("W1", "hesskit.eigsh[auto]"): 0.025,
                ("W1", "baseline:cached-graph+scipy"): 0.05,
                ("W1", "peer:torch.func+scipy"): 0.2,
                ("W2", "peer:torch.func+scipy"): 0.6,  # no baseline time on W2: left out
                ("W1", "peer:eigenthings-lanczos-m50"): None,
            }
        }
    )
    ratios = relative_times(run)
    assert ratios == {
        "hesskit.eigsh[auto]": {"W1": 0.5},
        "peer:torch.func+scipy": {"W1": 4.0},
    }
    out = tmp_path / "top10.png"
    draw(ratios, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_gpu_table_runs_on_the_cpu_at_a_small_size(capsys) -> None:
    """The GPU check's table script, as a smoke test on the CPU (no ResNet)."""
    from benchmarks import gpu_table

    gpu_table.main(
        ["--device", "cpu", "--sizes", "1e3", "--samples", "64", "--repeat", "1", "--no-resnet"]
    )
    printed = capsys.readouterr().out
    assert "| top-10 eigsh vs `baseline:cached-graph+scipy`, n = 1e3, 64 samples |" in printed
    assert "| SLQ 8 x 90, reorthogonalize='none', n = 1e3 |" in printed
