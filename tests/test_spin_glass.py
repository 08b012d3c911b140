"""The spherical p-spin glass: exact identities, Gaussian statistics, reference values."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import optimize, stats

import hesskit
from hesskit.problems import SphericalSpinGlass, reference

LETTERS = "abcdefgh"


def energy_by_definition(glass: SphericalSpinGlass, w: torch.Tensor) -> torch.Tensor:
    """``N^{-(p-1)/2} sum J w...w`` written out with einsum on the couplings."""
    index = LETTERS[: glass.p]
    equation = index + "".join(f",{c}" for c in index) + "->"
    scale = glass.num_spins ** (-(glass.p - 1) / 2)
    return scale * torch.einsum(equation, glass.couplings, *[w] * glass.p)


@pytest.mark.parametrize("p", [2, 3, 4])
def test_energy_matches_the_definition(p):
    glass = SphericalSpinGlass(7, p, seed=3)
    for w in glass.random_point(0, num_points=3):
        torch.testing.assert_close(glass.energy(w), energy_by_definition(glass, w))


@pytest.mark.parametrize("p", [2, 3, 4])
def test_energy_is_homogeneous_of_degree_p(p):
    glass = SphericalSpinGlass(6, p, seed=1)
    w = glass.random_point(2)
    for c in (-2.0, 0.5, 3.0):
        torch.testing.assert_close(glass.energy(c * w), c**p * glass.energy(w))


@pytest.mark.parametrize("p", [2, 3, 4])
def test_euclidean_gradient_equals_autograd_and_euler_identity(p):
    glass = SphericalSpinGlass(6, p, seed=2)
    w = glass.random_point(1).requires_grad_()
    (autograd,) = torch.autograd.grad(glass.energy(w), w)
    w = w.detach()
    torch.testing.assert_close(glass.euclidean_gradient(w), autograd)
    torch.testing.assert_close(w @ autograd, p * glass.energy(w))  # Euler: w.grad H = p H


def test_riemannian_gradient_is_the_tangent_projection():
    glass = SphericalSpinGlass(8, 3, seed=0)
    w = glass.random_point(0)
    riemannian = glass.riemannian_gradient(w)
    assert abs(float(w @ riemannian)) < 1e-12 * float(riemannian.norm()) * math.sqrt(8)
    projector = torch.eye(8, dtype=w.dtype) - torch.outer(w, w) / 8
    torch.testing.assert_close(riemannian, projector @ glass.euclidean_gradient(w))


def test_batched_points_match_single_points():
    glass = SphericalSpinGlass(5, 3, seed=4)
    points = glass.random_point(1, num_points=4).reshape(2, 2, 5)
    flat = points.reshape(4, 5)
    energies = torch.stack([glass.energy(w) for w in flat]).reshape(2, 2)
    gradients = torch.stack([glass.riemannian_gradient(w) for w in flat]).reshape(2, 2, 5)
    torch.testing.assert_close(glass.energy(points), energies)
    torch.testing.assert_close(glass.energy_per_spin(points), energies / 5)
    torch.testing.assert_close(glass.riemannian_gradient(points), gradients)


@pytest.mark.parametrize("p", [3, 4])
def test_hesskit_hessian_of_the_energy_equals_torch_func(p):
    glass = SphericalSpinGlass(6, p, seed=5)
    w = glass.random_point(3)
    dense = hesskit.dense(hesskit.hessian(glass.energy, w))
    torch.testing.assert_close(dense, torch.func.hessian(glass.energy)(w))


def test_energy_is_gaussian_with_variance_n_over_the_couplings():
    """For fixed w on the sphere, H(w) = N^{-(p-1)/2} sum_I J_I w_I is a sum of independent
    centred Gaussians with variance N^{-(p-1)} sum_I w_I^2 = N^{-(p-1)} |w|^{2p} = N, so
    H/sqrt(N) is standard normal over the couplings' seeds. 400 seeds; both checks have
    false-alarm probability 1e-6."""
    n, runs = 6, 400
    w = SphericalSpinGlass(n, 3).random_point(7)
    z = torch.stack([SphericalSpinGlass(n, 3, seed=s).energy(w) for s in range(runs)])
    z = (z / math.sqrt(n)).numpy()
    bound = stats.norm.ppf(1 - 0.5e-6) / math.sqrt(runs)
    assert abs(z.mean()) < bound
    chi2 = (z**2).sum()  # sum of squares of `runs` standard normals
    assert stats.chi2.ppf(0.5e-6, runs) < chi2 < stats.chi2.ppf(1 - 0.5e-6, runs)


def test_mean_energy_at_random_points_is_zero():
    """Over random couplings and random points the energy per spin is centred with
    variance 1/N (E[H^2] = N): the mean of 300 draws lies within 5 standard errors."""
    n = 5
    draws = torch.stack(
        [
            SphericalSpinGlass(n, 3, seed=s).energy_per_spin(
                SphericalSpinGlass(n, 3).random_point(1000 + s)
            )
            for s in range(300)
        ]
    )
    assert abs(float(draws.mean())) < 5 * math.sqrt(1 / n) / math.sqrt(300)
    assert 0.5 / n < float(draws.var()) < 2 / n


@pytest.mark.parametrize(("p", "expected"), [(2, -math.sqrt(2)), (3, -1.63299), (4, -math.sqrt(3))])
def test_threshold_energy(p, expected):
    assert SphericalSpinGlass(3, p).threshold_energy == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("p", [3, 4])
def test_reference_values_have_provenance_and_match(p):
    threshold, ground = reference.THRESHOLD_ENERGY[p], reference.GROUND_STATE_ENERGY[p]
    for entry in (threshold, ground):
        assert isinstance(entry, reference.Reference)
        assert "arXiv" in entry.source and entry.note
    assert threshold.value == pytest.approx(SphericalSpinGlass(3, p).threshold_energy, abs=5e-4)
    assert ground.value < threshold.value


def local_minima_complexity(u: float, p: int) -> float:
    """Theta_{0,p}(u) of Auffinger, Ben Arous, Cerny (2013) for u < -E_inf."""
    e_inf = 2 * math.sqrt((p - 1) / p)
    root = math.sqrt(u * u - e_inf**2)
    i1 = -u / e_inf**2 * root - math.log(-u + root) + math.log(e_inf)
    return 0.5 * math.log(p - 1) - (p - 2) / (4 * (p - 1)) * u * u - i1


@pytest.mark.parametrize("p", [3, 4])
def test_ground_state_is_the_zero_of_the_complexity(p):
    """The provenance note's recipe: -E_0 is the zero of Theta_{0,p} below -E_inf."""
    e_inf = 2 * math.sqrt((p - 1) / p)
    root = optimize.brentq(local_minima_complexity, -3.0, -e_inf - 1e-12, args=(p,))
    assert reference.GROUND_STATE_ENERGY[p].value == pytest.approx(root, abs=5e-4)


def test_couplings_seed_dtype_and_repr():
    a, b, c = SphericalSpinGlass(4, seed=1), SphericalSpinGlass(4, seed=1), SphericalSpinGlass(4)
    assert torch.equal(a.couplings, b.couplings) and not torch.equal(a.couplings, c.couplings)
    assert a.couplings.shape == (4, 4, 4)
    single = SphericalSpinGlass(4, seed=1, dtype=torch.float32)
    w = a.random_point(0)
    torch.testing.assert_close(single.energy(w.float()), a.energy(w).float())
    assert repr(a) == "SphericalSpinGlass(num_spins=4, p=3, seed=1)"


def test_project_and_random_point():
    glass = SphericalSpinGlass(9)
    w = glass.project(torch.arange(1.0, 10.0, dtype=torch.float64))
    assert float(w @ w) == pytest.approx(9.0, rel=1e-14)
    points = glass.random_point(torch.Generator().manual_seed(2), num_points=3)
    torch.testing.assert_close((points**2).sum(1), torch.full((3,), 9.0, dtype=torch.float64))
    assert torch.equal(glass.random_point(5), glass.random_point(5))
    assert not torch.equal(glass.random_point(5), glass.random_point(6))
    assert torch.equal(glass.random_point(), glass.random_point(0))


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_spins must be >= 2"):
        SphericalSpinGlass(1)
    with pytest.raises(ValueError, match="p must be >= 2"):
        SphericalSpinGlass(4, p=1)
    with pytest.raises(TypeError, match="p must be an int"):
        SphericalSpinGlass(4, p=3.0)
    glass = SphericalSpinGlass(4)
    with pytest.raises(ValueError, match=r"w must have shape \(4,\)"):
        glass.energy(torch.ones(5, dtype=torch.float64))
    with pytest.raises(TypeError, match="w must be a torch.Tensor"):
        glass.euclidean_gradient([1.0, 0.0, 0.0, 0.0])
    with pytest.raises(TypeError, match="w must be floating point"):
        glass.energy(torch.ones(4, dtype=torch.int64))
    with pytest.raises(TypeError, match="w has dtype torch.float32"):
        glass.energy(torch.ones(4))
    with pytest.raises(ValueError, match="w must be nonzero"):
        glass.project(torch.zeros(4, dtype=torch.float64))
    with pytest.raises(ValueError, match="num_points must be >= 1"):
        glass.random_point(0, num_points=0)
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        glass.random_point("seed")
