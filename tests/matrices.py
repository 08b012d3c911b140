"""Synthetic operators with prescribed spectra, the ground truth of the algorithm tests."""

from __future__ import annotations

import torch

from hesskit.operators.base import LinearOperator


def spectral_matrix(eigenvalues: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """``Q diag(eigenvalues) Q^T`` with ``Q`` from the QR of a seeded Gaussian matrix."""
    n = eigenvalues.numel()
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=eigenvalues.dtype))
    matrix = (q * eigenvalues) @ q.T
    return (matrix + matrix.T) / 2


class CountingOperator(LinearOperator):
    """A dense operator that records the width of every block it is applied to."""

    def __init__(self, matrix: torch.Tensor) -> None:
        super().__init__(tuple(matrix.shape), dtype=matrix.dtype, device=matrix.device)
        self.matrix = matrix
        self.widths: list[int] = []

    @property
    def columns(self) -> int:
        """Operator-vector products applied so far."""
        return sum(self.widths)

    def _matmat(self, block: torch.Tensor) -> torch.Tensor:
        self.widths.append(block.shape[1])
        return self.matrix @ block
