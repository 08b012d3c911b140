"""The subspace statistics and seed streams the claims share, against direct computation."""

from __future__ import annotations

import pytest
import torch

from claims import seeds, subspaces
from tests.matrices import spectral_matrix

F64 = torch.float64


def test_overlap_and_captured_on_known_subspaces():
    eye = torch.eye(6, dtype=F64)
    a, b = eye[:, :2], eye[:, 1:3]
    assert subspaces.overlap(a, a) == pytest.approx(1.0)
    assert subspaces.overlap(a, b) == pytest.approx(0.5)
    assert subspaces.captured(a, torch.tensor([3.0, 4.0, 0, 0, 0, 0], dtype=F64)) == 1.0
    assert subspaces.captured(b, torch.tensor([3.0, 4.0, 0, 0, 0, 0], dtype=F64)) == 0.64


def test_random_subspace_is_orthonormal_seeded_and_overlaps_about_dim_over_n():
    like = torch.zeros(1, dtype=F64)
    basis = subspaces.random_subspace(2000, 5, seed=3, like=like)
    torch.testing.assert_close(basis.T @ basis, torch.eye(5, dtype=F64))
    assert torch.equal(basis, subspaces.random_subspace(2000, 5, seed=3, like=like))
    fixed = torch.eye(2000, dtype=F64)[:, :5]
    assert 0.0 < subspaces.overlap(fixed, basis) < 10 * 5 / 2000


def test_top_eigenpairs_returns_converged_pairs_and_raises_otherwise():
    spectrum = torch.cat([torch.tensor([5.0, 4.0, 3.0]), torch.linspace(0, 1, 197)]).double()
    matrix = spectral_matrix(spectrum)
    top = subspaces.top_eigenpairs(matrix, 3, seed=0)
    torch.testing.assert_close(top.eigenvalues, spectrum[:3], atol=1e-8, rtol=0)
    with pytest.raises(RuntimeError, match="Lanczos did not converge"):
        subspaces.top_eigenpairs(matrix, 3, seed=0, max_matvecs=5)


def test_streams_differ_by_role_and_seed_and_are_stable():
    assert seeds.stream(0, 1) == seeds.stream(0, 1)
    assert len({seeds.stream(s, r) for s in range(5) for r in range(5)}) == 25
