"""The result of stochastic Lanczos quadrature: per-probe Gauss quadrature rules.

References:
    S. Ubaru, J. Chen, Y. Saad (2017), "Fast estimation of tr(f(A)) via stochastic Lanczos
    quadrature", SIAM J. Matrix Anal. Appl. 38(4).
    L. Lin, Y. Saad, C. Yang (2016), "Approximating spectral densities of large matrices",
    SIAM Review 58(1).
    B. Ghorbani, S. Krishnan, Y. Xiao (2019), arXiv:1901.10159.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from hesskit import _checks

_SIGMA_FRACTION = 0.01


@dataclass(frozen=True)
class SpectralDensity:
    """Gauss quadrature rules approximating the spectral measure ``(1/n) sum_j delta(lambda_j)``.

    Each probe ``v`` (a unit vector) gives a rule whose nodes are Ritz values and whose
    weights sum to one; ``sum_i w_i f(x_i)`` approximates ``v^T f(A) v``, whose expectation
    over probes is ``tr f(A) / n`` (Ubaru et al. 2017).

    Attributes:
        nodes: Ritz values, shape ``(num_probes, num_steps)``, ascending per probe.
        weights: quadrature weights, same shape; each row sums to one.
        num_matvecs: operator-vector products spent.
        n: the operator's dimension.
    """

    nodes: torch.Tensor
    weights: torch.Tensor
    num_matvecs: int
    n: int

    def density(self, grid: torch.Tensor, *, sigma: float | None = None) -> torch.Tensor:
        """Gaussian-smoothed spectral density on ``grid``, averaged over probes.

        ``phi(t) = mean_probes sum_i w_i N(t; x_i, sigma^2)`` (Lin, Saad, Yang 2016, eq. 3.3);
        it integrates to one over a grid that extends a few ``sigma`` beyond the nodes.

        Args:
            grid: 1-D tensor of evaluation points, on the nodes' device.
            sigma: kernel width (> 0). Default: ``0.01 * (max node - min node)`` (or 0.01
                times the largest ``|node|`` when all nodes coincide, or 0.01 if all are 0).

        Returns:
            The density at each point of ``grid``, a tensor of its shape in the nodes' dtype.

        Raises:
            TypeError: if ``grid`` is not a 1-D floating-point tensor, or ``sigma`` is not a
                number.
            ValueError: if ``grid`` is not on the nodes' device, or ``sigma`` is not finite and
                > 0.

        Example:
            >>> import torch
            >>> from hesskit.density import spectral_density
            >>> result = spectral_density(torch.diag(torch.arange(10.0)), generator=0)
            >>> grid = result.grid()
            >>> round(float(torch.trapezoid(result.density(grid), grid)), 3)
            1.0
        """
        return _smooth(self.nodes, self.weights, _check_grid(grid, self.nodes), sigma)

    def log_density(
        self, grid: torch.Tensor, *, sigma: float | None = None, eps: float = 1e-8
    ) -> torch.Tensor:
        """Gaussian-smoothed density of ``t = log10(max(|lambda|, eps * max_i |x_i|))``.

        This is :meth:`density` for the quadrature measure pushed forward to ``t``: each
        node ``x_i`` becomes ``log10`` of its magnitude, clamped below at ``eps`` times the
        largest ``|node|`` so that (near-)zero eigenvalues land at a finite point. On this
        axis the bulk near zero and the outliers several orders of magnitude above it are
        both resolved (the view of Ghorbani et al. 2019). Signs are discarded. The default
        ``sigma`` is 0.01 times the range of the transformed nodes.

        Args:
            grid: 1-D tensor of points on the ``log10`` axis (see :meth:`grid` with
                ``log=True``).
            sigma: kernel width on the ``log10`` axis (> 0), or None for the default.
            eps: relative floor of ``|lambda|`` (> 0).

        Returns:
            The density at each point of ``grid`` (a density in ``t``, per decade), a tensor of
            its shape in the nodes' dtype.

        Raises:
            TypeError: if ``grid`` is not a 1-D floating-point tensor, or ``sigma`` or ``eps`` is
                not a number.
            ValueError: if ``grid`` is not on the nodes' device, or ``sigma`` or ``eps`` is not
                finite and > 0.

        Example:
            >>> import torch
            >>> from hesskit.density import spectral_density
            >>> a = torch.diag(torch.tensor([1e-3, 1e-3, 1.0, 1e3]))
            >>> result = spectral_density(a, generator=0)
            >>> grid = result.grid(log=True)
            >>> round(float(torch.trapezoid(result.log_density(grid), grid)), 3)
            1.0
        """
        logs = _log_nodes(self.nodes, eps)
        return _smooth(logs, self.weights, _check_grid(grid, logs), sigma)

    def grid(
        self, num_points: int = 1000, margin: float = 0.1, *, log: bool = False, eps: float = 1e-8
    ) -> torch.Tensor:
        """A uniform grid over the nodes, extended by ``margin`` times their range each side.

        With the default ``margin=0.1`` the grid reaches ten default ``sigma`` beyond the
        extreme nodes, so the smoothed density integrates to one on it. With ``log=True``
        the grid covers the ``log10`` axis of :meth:`log_density` (same ``eps``).

        Returns:
            A ``(num_points,)`` tensor of increasing points, in the nodes' dtype and device.

        Raises:
            TypeError: if ``num_points`` is not an int, or ``margin`` or ``eps`` is not a number.
            ValueError: if ``num_points < 2``, or ``margin`` or ``eps`` is not finite and > 0.

        Example:
            >>> import torch
            >>> from hesskit.density import spectral_density
            >>> a = torch.diag(torch.arange(3.0, dtype=torch.float64))
            >>> [round(x, 6) for x in spectral_density(a, generator=0).grid(5).tolist()]
            [-0.2, 0.4, 1.0, 1.6, 2.2]
        """
        num_points = _checks.check_int_in_range("num_points", num_points, low=2)
        margin = _checks.check_positive_float("margin", margin)
        points = _log_nodes(self.nodes, eps) if log else self.nodes
        low, high = float(points.min()), float(points.max())
        pad = margin * _spread(points)
        return torch.linspace(
            low - pad, high + pad, num_points, dtype=points.dtype, device=points.device
        )

    def trace_estimate(self) -> torch.Tensor:
        """The SLQ estimate of ``tr A``: ``n * mean_probes sum_i w_i x_i`` (0-d tensor).

        Equal to Hutchinson's estimate with the same Rademacher probes.

        Returns:
            The estimate of the trace, a 0-d tensor in the nodes' dtype.

        Example:
            >>> import torch
            >>> from hesskit.density import spectral_density
            >>> a = torch.diag(torch.arange(1.0, 5.0))
            >>> round(float(spectral_density(a, generator=0).trace_estimate()), 4)
            10.0
        """
        return self.quadrature(lambda x: x)

    def quadrature(self, f: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """The SLQ estimate of ``tr f(A)``: ``n * mean_probes sum_i w_i f(x_i)`` (0-d tensor).

        Args:
            f: elementwise function of a tensor of nodes, returning a tensor of that shape.

        Returns:
            The estimate of ``tr f(A)``, a 0-d tensor.

        Example:
            >>> import torch
            >>> from hesskit.density import spectral_density
            >>> a = torch.diag(torch.arange(1.0, 5.0, dtype=torch.float64))
            >>> round(float(spectral_density(a, generator=0).quadrature(torch.log)), 6)
            3.178054
        """
        return self.n * (self.weights * f(self.nodes)).sum(dim=1).mean()


def _spread(points: torch.Tensor) -> float:
    """The range of ``points``; if zero, their largest magnitude; if that is zero, 1.

    Returns:
        A positive float: the scale of ``points``.
    """
    spread = float(points.max() - points.min())
    return spread or float(points.abs().max()) or 1.0


def _log_nodes(nodes: torch.Tensor, eps: float) -> torch.Tensor:
    """``log10(max(|x|, eps * max|x|))``; all zeros map to 0.

    Returns:
        A tensor of the shape of ``nodes``.
    """
    eps = _checks.check_positive_float("eps", eps)
    magnitude = nodes.abs()
    floor = eps * float(magnitude.max()) or 1.0
    return torch.log10(magnitude.clamp_min(floor))


def _check_grid(grid: Any, nodes: torch.Tensor) -> torch.Tensor:
    """Return ``grid`` in the nodes' dtype if it is a 1-D float tensor on their device.

    Raises:
        TypeError: if ``grid`` is not a 1-D floating-point tensor.
        ValueError: if ``grid`` is not on the nodes' device.
    """
    if not isinstance(grid, torch.Tensor) or grid.ndim != 1 or not grid.is_floating_point():
        msg = f"grid must be a 1-D floating-point torch.Tensor, got {grid!r:.80}"
        raise TypeError(msg)
    _checks.check_same_dtype_device("grid", grid, dtype=None, device=nodes.device)
    return grid.to(nodes.dtype)


def _smooth(
    points: torch.Tensor, weights: torch.Tensor, grid: torch.Tensor, sigma: float | None
) -> torch.Tensor:
    """``mean_probes sum_i w_i N(grid; points_i, sigma^2)`` as a (len(grid),) tensor.

    Returns:
        The smoothed density on ``grid``, a ``(len(grid),)`` tensor; ``sigma`` None means
        0.01 times the spread of ``points``.
    """
    sigma = _checks.check_positive_float("sigma", sigma, allow_none=True)
    if sigma is None:
        sigma = _SIGMA_FRACTION * _spread(points)
    z = (grid[:, None] - points.reshape(1, -1)) / sigma
    kernel = torch.exp(-0.5 * z**2) / (sigma * math.sqrt(2 * math.pi))
    return kernel @ weights.reshape(-1) / points.shape[0]
