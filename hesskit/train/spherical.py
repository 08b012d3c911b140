r"""Gradient descent on the sphere for the spherical spin glass (Sagun et al. 2014).

Each step moves along the Riemannian gradient and retracts onto the sphere,

.. math::

    w \leftarrow \sqrt{N} \, \frac{w - \eta \, \mathrm{grad}\, H(w)}
    {| w - \eta \, \mathrm{grad}\, H(w) |},

the projected gradient descent that Sagun, Güney, Ben Arous and LeCun (2014,
arXiv:1412.6615) run from random starts to find that the final energies concentrate in
a narrow band near the threshold ``-2 sqrt((p-1)/p)``. Many independent runs go as one
batch ``(R, N)`` sharing each pass over the couplings; each run stops (its row is
frozen) once its Riemannian gradient norm per ``sqrt(N)`` is below ``tol``.

No stochastic variant is offered: SGD subsamples a sum over data, which the glass does
not have, and hesskit does not invent a noise model for it. For the comparison of GD and
SGD in Sagun et al. (2014) use :func:`hesskit.train.sgd` and
:func:`hesskit.train.gradient_descent` on :func:`hesskit.problems.teacher_student`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from hesskit import _checks
from hesskit.problems.spin_glass import SphericalSpinGlass


@dataclass(frozen=True, eq=False)
class SpinGlassRun:
    """The outcome of (a batch of) spherical gradient descent runs.

    For a start ``w0`` of shape ``(N,)`` the per-run fields are 0-d tensors; for a batch
    ``(R, N)`` they have a leading dimension ``R``.

    Attributes:
        point: the final point(s), on the sphere.
        energies: the energy per spin ``H/N`` before each step, shape ``(T + 1,)`` or
            ``(T + 1, R)``; a converged run's entries stay constant after it stops.
        num_steps: the number of updates each run made.
        converged: whether each run's gradient norm per ``sqrt(N)`` fell below ``tol``.
        gradient_norm: each run's final ``|grad H| / sqrt(N)`` along the sphere.
    """

    point: torch.Tensor
    energies: torch.Tensor
    num_steps: torch.Tensor
    converged: torch.Tensor
    gradient_norm: torch.Tensor

    @property
    def final_energy(self) -> torch.Tensor:
        """The energy per spin at the final point(s)."""
        return self.energies[-1]


def spherical_gradient_descent(
    glass: SphericalSpinGlass,
    w0: torch.Tensor,
    *,
    lr: float,
    max_steps: int,
    tol: float = 1e-6,
) -> SpinGlassRun:
    """Projected gradient descent on the sphere ``|w|^2 = N`` from ``w0`` (or a batch of starts).

    The energy comes free with the gradient through Euler's identity ``w . grad H = p H``.

    Args:
        glass: the landscape.
        w0: the start ``(N,)`` or a batch of starts ``(R, N)``, projected onto the sphere.
        lr: the step size ``eta``. Stable below 2 / (largest curvature along the sphere):
            near the band the Riemannian Hessian's eigenvalues fill about
            ``[0, 4 sqrt(p (p - 1))]`` (a semicircle of radius ``2 sqrt(p (p - 1))``
            shifted by ``-p H/N``), so ``lr < 0.2`` for ``p = 3``; 0.1 works well.
        max_steps: the most updates per run.
        tol: a run stops once ``|grad H(w)| / sqrt(N)`` along the sphere is below this.

    Returns:
        A :class:`SpinGlassRun`.

    Raises:
        TypeError: if ``glass`` is not a :class:`SphericalSpinGlass` or ``w0`` is malformed.
        ValueError: if ``w0`` has the wrong shape or a zero row, or a number is out of range.

    Example:
        >>> glass = SphericalSpinGlass(20, p=3, seed=0)
        >>> run = spherical_gradient_descent(glass, glass.random_point(0), lr=0.05,
        ...                                  max_steps=3000)
        >>> bool(run.converged), -1.8 < float(run.final_energy) < -1.3
        (True, True)
    """
    if not isinstance(glass, SphericalSpinGlass):
        msg = f"glass must be a SphericalSpinGlass, got {type(glass).__name__}"
        raise TypeError(msg)
    if isinstance(w0, torch.Tensor) and w0.ndim > 2:
        msg = f"w0 must have shape (N,) or (R, N), got {tuple(w0.shape)}"
        raise ValueError(msg)
    lr = _checks.check_positive_float("lr", lr)
    max_steps = _checks.check_int_in_range("max_steps", max_steps, low=0)
    tol = _checks.check_positive_float("tol", tol)
    w = glass.project(w0).detach()
    active = torch.ones(w.shape[:-1], dtype=torch.bool, device=w.device)
    num_steps = torch.zeros(w.shape[:-1], dtype=torch.int64, device=w.device)
    energies = []
    for step in range(max_steps + 1):
        energy, gradient, norm = _energy_and_gradient(glass, w)
        energies.append(energy)
        active &= norm >= tol
        if step == max_steps or not bool(active.any()):
            break
        moved = glass.project(w - lr * gradient)
        w = torch.where(active.unsqueeze(-1), moved, w)
        num_steps += active
    return SpinGlassRun(w, torch.stack(energies), num_steps, ~active, norm)


def _energy_and_gradient(glass: SphericalSpinGlass, w: torch.Tensor):
    """Energy per spin, Riemannian gradient and its norm per sqrt(N), from one gradient.

    Returns:
        ``(energy, gradient, norm)``: the energy per spin, the Riemannian gradient (the
        Euclidean one projected on the sphere's tangent space) and its norm over
        ``sqrt(N)``, for each point of ``w``.
    """
    euclidean = glass.euclidean_gradient(w)
    radial = (w * euclidean).sum(-1)
    energy = radial / (glass.p * glass.num_spins)
    gradient = euclidean - (radial / glass.num_spins).unsqueeze(-1) * w
    return energy, gradient, gradient.norm(dim=-1) / math.sqrt(glass.num_spins)
