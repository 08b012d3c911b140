r"""The spherical p-spin glass: a random landscape whose critical values are known.

.. math::

    H(w) = N^{-(p-1)/2} \sum_{i_1, \dots, i_p} J_{i_1 \dots i_p} w_{i_1} \cdots w_{i_p},
    \qquad |w|^2 = N, \qquad J_{i_1 \dots i_p} \sim \mathcal{N}(0, 1) \text{ i.i.d.}

For a fixed ``w`` on the sphere, ``H(w)`` is Gaussian with mean 0 and variance
``N^{-(p-1)} sum_I prod w_{i_k}^2 = N^{-(p-1)} |w|^{2p} = N``. As ``N -> infinity`` the
local minima concentrate in a band between the ground state ``-E_0(p) N`` and the
threshold ``-E_inf(p) N = -2 sqrt((p-1)/p) N`` (Auffinger, Ben Arous, Černý 2013,
arXiv:1003.1129), which is where gradient descent from random starts ends (Sagun, Güney,
Ben Arous, LeCun 2014, arXiv:1412.6615). Reference values live in
:mod:`hesskit.problems.reference`.

Computation: the gradient is ``grad H(w)_a = N^{-(p-1)/2} sum K_{a i2..ip} w_{i2}..w_{ip}``
with ``K`` the sum over positions ``m`` of ``J`` with its ``m``-th index moved first, built
once; the energy follows by Euler's identity ``H = w . grad H / p``. Either costs one pass
over ``K`` (one matrix product on its contiguous layout; ``torch.einsum`` on ``J`` needed
``p`` passes and permuted ``J``, up to 20 times slower on a CPU at ``N = 300``), and a
batch of points ``(R, N)`` shares that pass.

Memory: only ``K`` is kept, ``(N,) * p`` entries, ``8 N^p`` bytes in float64: 8 MB for
``p = 3, N = 100``, 216 MB for ``N = 300``, 1 GB for ``N = 500``; 800 MB for
``p = 4, N = 100``. Building it briefly needs about three times that.
"""

from __future__ import annotations

import math

import torch

from hesskit import _checks


class SphericalSpinGlass:
    """A seeded pure p-spin spherical glass on the sphere of radius ``sqrt(num_spins)``.

    Every method takes a point ``w`` of shape ``(N,)`` or a batch ``(..., N)`` and works on
    each row; ``energy`` is a plain differentiable function, so
    ``hesskit.hessian(glass.energy, w)`` is its Euclidean Hessian at ``w``.

    Args:
        num_spins: the dimension ``N`` (at least 2).
        p: the order of the interaction (at least 2; 3 is the case of Sagun et al. 2014).
        seed: the seed of the couplings ``J`` (drawn in float64 on the CPU, then cast, so a
            seed gives the same landscape in every dtype and on every device).
        dtype: the couplings' dtype.
        device: the couplings' device.

    Raises:
        ValueError: if ``num_spins`` or ``p`` is too small.

    Example:
        >>> import hesskit
        >>> glass = SphericalSpinGlass(10, p=3, seed=0)
        >>> w = glass.random_point(0)
        >>> hesskit.dense(hesskit.hessian(glass.energy, w)).shape
        torch.Size([10, 10])
    """

    def __init__(
        self,
        num_spins: int,
        p: int = 3,
        *,
        seed: int = 0,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str = "cpu",
    ) -> None:
        self.num_spins = _checks.check_int_in_range("num_spins", num_spins, low=2)
        self.p = _checks.check_int_in_range("p", p, low=2)
        self.seed = _checks.check_int_in_range("seed", seed, low=0)
        couplings = self._draw_couplings()
        # start=couplings (the position-0 term), not 0: the sum is then a Tensor, not an int
        field = sum((couplings.movedim(position, 0) for position in range(1, self.p)), couplings)
        self._field = field.contiguous().to(dtype=dtype, device=device)
        self.scale = self.num_spins ** (-(self.p - 1) / 2)

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the landscape's tensors and points."""
        return self._field.dtype

    @property
    def device(self) -> torch.device:
        """The device of the landscape's tensors and points."""
        return self._field.device

    @property
    def couplings(self) -> torch.Tensor:
        """The couplings ``J``, shape ``(N,) * p``, redrawn from the seed (float64, CPU).

        Only ``K`` (see the module docstring) is kept in memory; this rebuilds ``J``.
        """
        return self._draw_couplings()

    @property
    def threshold_energy(self) -> float:
        """The threshold energy per spin ``-2 sqrt((p-1)/p)`` (Auffinger et al. 2013)."""
        return -2.0 * math.sqrt((self.p - 1) / self.p)

    def energy(self, w: torch.Tensor) -> torch.Tensor:
        """``H(w)``, a scalar for ``w`` of shape ``(N,)``, one per row for ``(..., N)``.

        Defined for any ``w`` (homogeneous of degree ``p``), not only on the sphere.

        Args:
            w: the point(s).

        Returns:
            The energy, of shape ``w.shape[:-1]``.

        Example:
            >>> glass = SphericalSpinGlass(5, p=3)
            >>> w = glass.random_point(1)
            >>> bool(torch.isclose(glass.energy(2 * w), 8 * glass.energy(w)))
            True
        """
        rows = self._rows(w)
        energy = (rows * self._gradient_rows(rows)).sum(-1) / self.p
        return energy.reshape(w.shape[:-1])

    def energy_per_spin(self, w: torch.Tensor) -> torch.Tensor:
        """``H(w) / N``, the quantity whose band narrows as ``N`` grows (Sagun et al. 2014).

        Args:
            w: the point(s).

        Returns:
            The energy per spin, of shape ``w.shape[:-1]``.

        Example:
            >>> glass = SphericalSpinGlass(4, p=3)
            >>> w = glass.random_point(0)
            >>> bool(torch.isclose(glass.energy_per_spin(w), glass.energy(w) / 4))
            True
        """
        return self.energy(w) / self.num_spins

    def euclidean_gradient(self, w: torch.Tensor) -> torch.Tensor:
        """The gradient of ``H`` in ``R^N``: ``N^{-(p-1)/2}`` times ``K`` contracted with ``w``.

        Args:
            w: the point(s).

        Returns:
            A tensor shaped like ``w``; by Euler's identity ``w . grad H(w) = p H(w)``.

        Example:
            >>> glass = SphericalSpinGlass(4, p=2)
            >>> w = torch.ones(4, dtype=torch.float64)
            >>> bool(torch.isclose(w @ glass.euclidean_gradient(w), 2 * glass.energy(w)))
            True
        """
        return self._gradient_rows(self._rows(w)).reshape(w.shape)

    def riemannian_gradient(self, w: torch.Tensor) -> torch.Tensor:
        """The gradient along the sphere: the Euclidean one minus its component along ``w``.

        Args:
            w: the point(s), nonzero.

        Returns:
            ``g - (w.g / |w|^2) w`` for ``g = grad H(w)``, orthogonal to ``w``.

        Example:
            >>> glass = SphericalSpinGlass(6, p=3)
            >>> w = glass.random_point(0)
            >>> abs(float(w @ glass.riemannian_gradient(w))) < 1e-12
            True
        """
        gradient = self.euclidean_gradient(w)
        radial = (w * gradient).sum(-1, keepdim=True) / (w * w).sum(-1, keepdim=True)
        return gradient - radial * w

    def project(self, w: torch.Tensor) -> torch.Tensor:
        """Rescale ``w`` (each row) onto the sphere ``|w|^2 = N``.

        Args:
            w: the point(s), nonzero.

        Returns:
            ``sqrt(N) w / |w|``.

        Raises:
            ValueError: if a row of ``w`` is zero.

        Example:
            >>> glass = SphericalSpinGlass(4)
            >>> glass.project(torch.ones(4, dtype=torch.float64))
            tensor([1., 1., 1., 1.], dtype=torch.float64)
        """
        w = self._check_point(w)
        norm = w.norm(dim=-1, keepdim=True)
        if not bool((norm > 0).all()):
            msg = "w must be nonzero to be projected onto the sphere |w|^2 = N"
            raise ValueError(msg)
        return w * (math.sqrt(self.num_spins) / norm)

    def random_point(
        self, generator: torch.Generator | int | None = None, *, num_points: int | None = None
    ) -> torch.Tensor:
        """A point drawn uniformly on the sphere (a normalised standard normal vector).

        Args:
            generator: a ``torch.Generator`` on the glass's device, an int seed, or None
                (seed 0); the global random state is never used.
            num_points: None for one point ``(N,)``; an int for a batch ``(num_points, N)``.

        Returns:
            The point(s), in the glass's dtype and on its device.

        Example:
            >>> SphericalSpinGlass(5).random_point(3).norm() ** 2
            tensor(5.0000, dtype=torch.float64)
        """
        gen = _checks.make_generator(generator, self.device)
        shape: tuple[int, ...] = (self.num_spins,)
        if num_points is not None:
            shape = (_checks.check_int_in_range("num_points", num_points, low=1), *shape)
        draw = torch.randn(shape, generator=gen, dtype=self.dtype, device=self.device)
        return self.project(draw)

    def __repr__(self) -> str:
        """The glass as text: its size, order and seed, which determine it.

        Returns:
            ``SphericalSpinGlass(num_spins=..., p=..., seed=...)``.
        """
        return f"SphericalSpinGlass(num_spins={self.num_spins}, p={self.p}, seed={self.seed})"

    def _check_point(self, w: torch.Tensor) -> torch.Tensor:
        w = _checks.check_last_dim("w", w, n=self.num_spins)
        _checks.check_same_dtype_device("w", w, dtype=self.dtype, device=self.device)
        return w

    def _rows(self, w: torch.Tensor) -> torch.Tensor:
        return self._check_point(w).reshape(-1, self.num_spins)

    def _gradient_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """The gradient at each row of ``rows`` ``(B, N)``: ``K`` with p - 1 indices contracted.

        Only the first matrix product reads ``K`` (on its contiguous layout); the others
        act on tensors ``N`` times smaller each.

        Returns:
            The ``(B, N)`` Euclidean gradients, one row per point.
        """
        batch, n = rows.shape
        partial = rows @ self._field.reshape(-1, n).T
        for _ in range(self.p - 2):
            partial = torch.bmm(partial.reshape(batch, -1, n), rows.unsqueeze(-1)).squeeze(-1)
        return self.scale * partial.reshape(batch, n)

    def _draw_couplings(self) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.seed)
        return torch.randn((self.num_spins,) * self.p, generator=gen, dtype=torch.float64)
