"""progress= on eigsh, spectral_density and trace: the callback sees every product."""

import pytest
import torch

import hesskit
from hesskit.progress import ProgressBar


def _matrix(n: int = 40) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    return (q * torch.linspace(-1.0, 5.0, n, dtype=torch.float64)) @ q.T


def _record():
    calls = []
    return calls, lambda done, total: calls.append((done, total))


def _numbers(result) -> torch.Tensor:
    """What a solver computed: eigenvalues, quadrature nodes or a trace estimate."""
    for name in ("eigenvalues", "nodes", "estimate"):
        if hasattr(result, name):
            return getattr(result, name)
    raise AssertionError(result)


@pytest.mark.parametrize(
    "solve",
    [
        lambda a, **kw: hesskit.eigsh(a, 3, generator=0, **kw),
        lambda a, **kw: hesskit.eigsh(a, 3, generator=0, exact_residuals=True, **kw),
        lambda a, **kw: hesskit.eigsh(a, 3, generator=0, block_size=2, **kw),
        lambda a, **kw: hesskit.spectral_density(a, num_probes=3, num_steps=7, **kw),
        lambda a, **kw: hesskit.spectral_density(
            a, num_probes=3, num_steps=7, probes_per_group=2, reorthogonalize="none", **kw
        ),
        lambda a, **kw: hesskit.trace(a, 12, **kw),
        lambda a, **kw: hesskit.trace(a, 12, method="hutch++", **kw),
    ],
    ids=["eigsh", "eigsh-exact", "eigsh-block", "slq", "slq-groups-3term", "hutchinson", "hutch++"],
)
def test_callback_counts_every_product_and_changes_nothing(solve):
    calls, callback = _record()
    a = _matrix()
    counted = hesskit.operators.DenseOperator(a)
    products = []
    original = counted._matmat
    counted._matmat = lambda block: products.append(block.shape[1]) or original(block)
    plain = solve(a)
    reported = solve(counted, progress=callback)
    done = [d for d, _ in calls]
    assert done == sorted(done) and len(set(done)) == len(done)  # strictly increasing
    assert done[-1] == sum(products) == reported.num_matvecs
    assert all(d <= total for d, total in calls)
    assert torch.equal(_numbers(plain), _numbers(reported))


def test_progress_true_draws_a_bar_that_ends_at_the_work_done(capsys):
    bar = ProgressBar("eigsh", disable=False)
    for done in (1, 2, 3):
        bar(done, 100)
    bar.close()
    err = capsys.readouterr().err
    assert "eigsh" in err and "3/3" in err and "products" in err
    hesskit.eigsh(_matrix(), 2, progress=True)  # stderr is not a terminal: tqdm stays silent


@pytest.mark.parametrize("bad", [1, "yes", 0.5])
def test_progress_of_a_wrong_type_names_the_argument(bad):
    a = _matrix()
    for solve in (
        lambda: hesskit.eigsh(a, 2, progress=bad),
        lambda: hesskit.spectral_density(a, num_steps=3, progress=bad),
        lambda: hesskit.trace(a, 4, progress=bad),
    ):
        with pytest.raises(TypeError, match="progress must be None, True/False or a callable"):
            solve()
